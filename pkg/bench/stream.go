package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// readBufferSize holds any ordinary chunk; longer lines are reassembled in stream.long.
const readBufferSize = 64 << 10

// stream is the reusable state of one in-flight request. A level keeps a pool of them, so
// buffers are allocated once per concurrent request and never per token.
type stream struct {
	br   *bufio.Reader
	long []byte
	// stamps are the arrival times of the chunks that carry text, measured from the moment the
	// request was sent. time.Since reads the monotonic clock, so wall-clock steps do not leak in.
	stamps []time.Duration
	// parse is the time spent decoding lines and lines how many were decoded: the client's own
	// cost per chunk, reported so that its share of the measured latencies is known.
	parse time.Duration
	lines int
}

func newStream(osl int) *stream {
	return &stream{
		br:     bufio.NewReaderSize(nil, readBufferSize),
		stamps: make([]time.Duration, 0, osl+1),
	}
}

// streamStats is what one response stream said.
type streamStats struct {
	done             bool // "data: [DONE]" was seen
	hasUsage         bool
	promptTokens     int
	completionTokens int
	end              time.Duration // [DONE] (or the end of the body) since the request was sent
}

// read consumes an SSE response body to its end (so the connection can be reused), stamping
// every text chunk as it is read. start is when the request was sent.
func (s *stream) read(body io.Reader, start time.Time) (streamStats, error) {
	var st streamStats
	s.br.Reset(body)
	s.stamps = s.stamps[:0]
	s.parse, s.lines = 0, 0
	for {
		line, err := s.readLine()
		if len(trimSpace(line)) > 0 {
			at := time.Since(start)
			ev := ParseLine(line)
			switch ev.Kind {
			case EventDone:
				st.done = true
				st.end = at
			case EventData:
				if ev.Err != nil {
					return st, fmt.Errorf("server error in stream: %s", ev.Err)
				}
				if ev.Text {
					s.stamps = append(s.stamps, at)
				}
				if ev.HasUsage {
					st.hasUsage = true
					st.promptTokens = ev.PromptTokens
					st.completionTokens = ev.CompletionTokens
				}
			}
			s.parse += time.Since(start) - at
			s.lines++
		}
		if errors.Is(err, io.EOF) {
			if !st.done {
				st.end = time.Since(start)
			}
			break
		}
		if err != nil {
			return st, fmt.Errorf("reading the stream: %w", err)
		}
	}
	switch {
	case len(s.stamps) == 0:
		return st, errors.New("the stream ended without generated text")
	case !st.done && !st.hasUsage:
		return st, errors.New("the stream ended without [DONE] or usage: truncated")
	}
	return st, nil
}

// readLine returns the next line, reassembling one longer than the read buffer.
func (s *stream) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	s.long = append(s.long[:0], line...)
	for {
		line, err = s.br.ReadSlice('\n')
		s.long = append(s.long, line...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return s.long, err
		}
	}
}
