package webhook

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFacts(t *testing.T) {
	tests := map[string]struct {
		answer     bool
		err        error
		remembered bool
	}{
		"present is remembered":   {answer: true, remembered: true},
		"absent is asked again":   {answer: false},
		"an error is asked again": {err: errors.New("apiserver down")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var f facts
			var calls int
			check := func() (bool, error) { calls++; return tc.answer, tc.err }
			for range 2 {
				got, err := f.present("k", check)
				assert.Equal(t, tc.answer, got)
				assert.Equal(t, tc.err, err)
			}
			if tc.remembered {
				assert.Equal(t, 1, calls)
				f.advance(factTTL)
				_, _ = f.present("k", check)
				assert.Equal(t, 2, calls, "asked again after factTTL")
			} else {
				assert.Equal(t, 2, calls)
			}
		})
	}

	t.Run("keys are apart", func(t *testing.T) {
		var f facts
		_, _ = f.present("a", func() (bool, error) { return true, nil })
		asked := false
		_, _ = f.present("b", func() (bool, error) { asked = true; return true, nil })
		assert.True(t, asked)
	})

	t.Run("callers asking at once share one call", func(t *testing.T) {
		var f facts
		var calls atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				ok, err := f.present("k", func() (bool, error) { calls.Add(1); <-release; return true, nil })
				assert.NoError(t, err)
				assert.True(t, ok)
			})
		}
		// Every caller is waiting on the one in-flight call (or already answered from it).
		require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond)
		close(release)
		wg.Wait()
		assert.LessOrEqual(t, calls.Load(), int32(2), "at most one call in flight and, for a straggler, one after it")
	})
}
