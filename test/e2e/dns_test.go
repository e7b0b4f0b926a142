package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serviceDNS is a test-only stand-in for the cluster DNS (CoreDNS cannot be built or pulled here): it
// answers A queries for <service>.<namespace>.svc.cluster.local with the Service's ClusterIP, AAAA with no
// address, and anything else with NXDOMAIN. The kubelet's clusterDNS points the pods at it; it listens on
// the host end of the node's veth only.
type serviceDNS struct {
	c    client.Client
	conn *net.UDPConn
}

func startServiceDNS(c client.Client, addr string) (*serviceDNS, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(addr), Port: 53})
	if err != nil {
		return nil, err
	}
	s := &serviceDNS{c: c, conn: conn}
	go s.serve()
	return s, nil
}

func (s *serviceDNS) close() { _ = s.conn.Close() }

func (s *serviceDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if reply := s.answer(buf[:n]); reply != nil {
			_, _ = s.conn.WriteToUDP(reply, from)
		}
	}
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
)

// answer builds the reply to one query (nil for what is not a query with one question).
func (s *serviceDNS) answer(q []byte) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// The question: labels up to the root, then type and class.
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l&0xc0 != 0 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(q[i+1:i+1+l])))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	question := q[12 : i+5]

	var ip net.IP
	found := false
	if len(labels) == 5 && labels[2] == "svc" && labels[3] == "cluster" && labels[4] == "local" {
		svc := &corev1.Service{}
		ctx, cancel := context.WithTimeout(context.Background(), 2e9)
		err := s.c.Get(ctx, types.NamespacedName{Namespace: labels[1], Name: labels[0]}, svc)
		cancel()
		if err == nil {
			found = true
			ip = net.ParseIP(svc.Spec.ClusterIP).To4()
		}
	}
	reply := make([]byte, 12, 12+len(question)+16)
	copy(reply, q[:2])
	reply[2] = 0x84 | q[2]&0x01 // a response, authoritative, RD copied
	reply[3] = 0x80             // recursion available
	binary.BigEndian.PutUint16(reply[4:6], 1)
	if !found {
		reply[3] |= 3 // NXDOMAIN
	}
	reply = append(reply, question...)
	if found && qtype == dnsTypeA && ip != nil {
		binary.BigEndian.PutUint16(reply[6:8], 1)
		reply = append(reply, 0xc0, 12) // the name: a pointer to the question's
		reply = binary.BigEndian.AppendUint16(reply, dnsTypeA)
		reply = binary.BigEndian.AppendUint16(reply, 1) // class IN
		reply = binary.BigEndian.AppendUint32(reply, 5) // TTL
		reply = binary.BigEndian.AppendUint16(reply, 4)
		reply = append(reply, ip...)
	}
	return reply
}
