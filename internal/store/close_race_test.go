package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Close may run while Records are returning: a Record whose write got in
// before Close must not start its fdatasync on a closed journal (a send on
// the closed kick channel panics the daemon at shutdown).
func TestRecordRacingClose(t *testing.T) {
	// One P makes the window (write done, fdatasync not yet started) last
	// a whole time slice, long enough for Close to run in it.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for round := range 30 {
		s, err := OpenBolt(filepath.Join(t.TempDir(), "berth.db"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					key := fmt.Sprintf("r%d-g%d-%d", round, g, i)
					_, err := s.Record(func(tx Tx) error { return tx.Put(BucketEndpoints, key, record{Count: i}) })
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		for {
			s.j.syncMu.Lock()
			n := s.j.written
			s.j.syncMu.Unlock()
			if n >= 200 {
				break
			}
			runtime.Gosched()
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}
