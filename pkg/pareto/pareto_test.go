package pareto

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type pt struct{ X, Y float64 }

func px(p pt) float64 { return p.X }
func py(p pt) float64 { return p.Y }

func TestFront(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []pt
		want []int
	}{
		{"empty", nil, nil},
		{"single", []pt{{1, 1}}, []int{0}},
		{"one dominates all", []pt{{1, 1}, {3, 3}, {2, 1}, {1, 2}}, []int{1}},
		{"trade-off ordered by x", []pt{{3, 1}, {1, 3}, {2, 2}, {1.5, 1.5}}, []int{1, 2, 0}},
		{"same x keeps best y", []pt{{1, 1}, {1, 2}}, []int{1}},
		{"same y keeps best x", []pt{{1, 2}, {3, 2}}, []int{1}},
		{"duplicates keep first", []pt{{2, 2}, {2, 2}, {1, 3}}, []int{2, 0}},
		{"NaN excluded", []pt{{nan, 9}, {1, 1}, {9, nan}}, []int{1}},
		{"negative infinity", []pt{{math.Inf(-1), 5}, {1, 1}}, []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FrontIndices(tt.in, px, py))
			front := Front(tt.in, px, py)
			require.Len(t, front, len(tt.want))
			for k, i := range tt.want {
				assert.Equal(t, tt.in[i], front[k])
			}
		})
	}
}

func TestDominates(t *testing.T) {
	assert.True(t, Dominates(2, 2, 1, 1))
	assert.True(t, Dominates(2, 1, 1, 1))
	assert.False(t, Dominates(1, 1, 1, 1), "equal points do not dominate")
	assert.False(t, Dominates(2, 0, 1, 1), "a trade-off does not dominate")
}

// checkFront asserts the defining properties of the front of pts.
func checkFront(t *testing.T, pts []pt) {
	t.Helper()
	idx := FrontIndices(pts, px, py)
	on := make(map[int]bool, len(idx))
	for _, i := range idx {
		on[i] = true
	}
	for _, i := range idx {
		for j, q := range pts {
			require.Falsef(t, Dominates(q.X, q.Y, pts[i].X, pts[i].Y), "front point %v is dominated by %d %v", pts[i], j, q)
		}
	}
	for j, q := range pts {
		if on[j] || math.IsNaN(q.X) || math.IsNaN(q.Y) {
			continue
		}
		covered := false
		for _, i := range idx {
			p := pts[i]
			if Dominates(p.X, p.Y, q.X, q.Y) || (p.X == q.X && p.Y == q.Y) {
				covered = true
				break
			}
		}
		require.Truef(t, covered, "point %d %v is off the front but nothing on it dominates or equals it", j, q)
	}
	for k := 1; k < len(idx); k++ {
		a, b := pts[idx[k-1]], pts[idx[k]]
		require.Less(t, a.X, b.X, "front is ordered by x ascending")
		require.Greater(t, a.Y, b.Y, "so y descends")
	}
	// Determinism: the same input gives the same indices; a permutation gives the same points.
	require.Equal(t, idx, FrontIndices(slices.Clone(pts), px, py))
	perm := slices.Clone(pts)
	rand.New(rand.NewPCG(uint64(len(pts)), 7)).Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	require.Equal(t, Front(pts, px, py), Front(perm, px, py))
}

func TestFrontProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		pts := make([]pt, n%60)
		for i := range pts {
			// A coarse grid makes ties and duplicates frequent.
			pts[i] = pt{float64(r.IntN(12)), float64(r.IntN(12))}
		}
		checkFront(t, pts)
	}
}

func FuzzFront(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var pts []pt
		for len(data) >= 4 {
			// Small integers (with sign) keep collisions likely; every 7th coordinate is NaN.
			x := float64(int8(data[0])) + float64(data[1]%4)/4
			y := float64(int8(data[2])) + float64(data[3]%4)/4
			if data[1] == 7 {
				x = math.NaN()
			}
			pts = append(pts, pt{x, y})
			data = data[4:]
		}
		checkFront(t, pts)
	})
}

func FuzzFrontFloats(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, data []byte) {
		var pts []pt
		for len(data) >= 16 {
			x := math.Float64frombits(binary.LittleEndian.Uint64(data))
			y := math.Float64frombits(binary.LittleEndian.Uint64(data[8:]))
			pts = append(pts, pt{x, y})
			data = data[16:]
		}
		checkFront(t, pts)
	})
}

// BenchmarkFront is the front of 10,000 random points (a large search's candidate count).
func BenchmarkFront(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	pts := make([]pt, 10000)
	for i := range pts {
		pts[i] = pt{r.Float64() * 200, r.Float64() * 2000}
	}
	for b.Loop() {
		Front(pts, px, py)
	}
}
