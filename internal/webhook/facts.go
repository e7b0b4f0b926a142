package webhook

import (
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// factTTL is how long a replica trusts a fact it found (the DGD CRD is installed, a GPU node is
// visible, the profiler ServiceAccount exists in a namespace) before asking the API server again.
const factTTL = 30 * time.Second

// facts remembers, for factTTL, what the warnings found present, so that an admission makes no API call
// for them in the common case (a burst of creates asked the API server the same three questions each
// time). Only presence is remembered: every warning says that something is missing, so a remembered fact
// can at worst hold back a warning for factTTL after the thing is removed, never raise a false one.
// Concurrent first questions share one call. The zero value is ready to use.
type facts struct {
	mu     sync.Mutex
	found  map[string]time.Time
	flight singleflight.Group
	skew   time.Duration // added to the clock (advance)
}

// present answers whether key holds, from memory when it was found within factTTL, else from check
// (one call for all callers asking at once). A false answer and an error are not remembered.
func (f *facts) present(key string, check func() (bool, error)) (bool, error) {
	if f.fresh(key) {
		return true, nil
	}
	v, err, _ := f.flight.Do(key, func() (any, error) {
		ok, err := check()
		if ok && err == nil {
			f.mu.Lock()
			if f.found == nil {
				f.found = map[string]time.Time{}
			}
			f.found[key] = f.clock()
			f.mu.Unlock()
		}
		return ok, err
	})
	return v.(bool), err
}

func (f *facts) fresh(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.found[key]
	return ok && f.clock().Sub(at) < factTTL
}

// clock is the time, f.mu held.
func (f *facts) clock() time.Time { return time.Now().Add(f.skew) }

// advance moves f's clock forward by d, as if d had passed (tests).
func (f *facts) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skew += d
}
