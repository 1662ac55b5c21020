package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/nstest"
)

// TestFollowWakesOnWrite: a follower is woken by what is written to the
// log (inotify on its directory), not by polling: with the fallback poll
// an hour away, every line still arrives, whether the log's directory
// was there when the follow began or came later (polled until then).
func TestFollowWakesOnWrite(t *testing.T) {
	old := followFallback
	followFallback = time.Hour
	t.Cleanup(func() { followFallback = old })
	for _, later := range []bool{false, true} {
		name := "directory there"
		if later {
			name = "directory made later"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			if later {
				path = filepath.Join(t.TempDir(), "not-yet", "c-json.log")
			}
			var out nstest.SyncBuffer
			done := make(chan struct{})
			followed := make(chan error, 1)
			go func() {
				followed <- readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: -1, Follow: true}, done)
			}()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					close(done)
				}
				<-followed
			})
			if later {
				time.Sleep(3 * followInterval) // the follower polls for the directory
				if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			lf, err := openLogFile(path, LogLimit{})
			if err != nil {
				t.Fatal(err)
			}
			defer lf.close()
			for i, line := range []string{"one", "two", "three"} {
				if i > 0 {
					time.Sleep(5 * followInterval) // each line a wake-up of its own
				}
				writeEntries(t, lf, time.Now(), "stdout:"+line)
				want := strings.Join([]string{"one", "two", "three"}[:i+1], "\n") + "\n"
				// A guard against a hang, not a timing: the fallback
				// poll is an hour away.
				deadline := time.Now().Add(10 * time.Second)
				for out.String() != want && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if got := out.String(); got != want {
					t.Fatalf("followed %q, want %q", got, want)
				}
			}
		})
	}
}
