package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWalksNeverFollowASwappedDirectory: a container that keeps swapping
// a directory of its upper directory for a symlink to a host directory
// while the daemon walks it (docker diff, docker ps -s) never has the
// daemon list or measure the host directory's files (QA round 27's
// review: with filepath.WalkDir the host file's name came out within a
// few tries).
func TestWalksNeverFollowASwappedDirectory(t *testing.T) {
	base := t.TempDir()
	host := filepath.Join(base, "hostsecret")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(host, "HOST-FILE-NAME"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(1 << 30) // sparse: a size no upper directory here has
	big.Close()
	data := filepath.Join(base, "data")
	id := strings.Repeat("a", 64)
	r := &Runtime{cfg: Config{DataDir: data}}
	upper := r.upperDir(id)
	// Many entries before the swapped one, so that its listing and its
	// opening are far apart.
	if err := os.MkdirAll(filepath.Join(upper, "aaa"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if err := os.WriteFile(filepath.Join(upper, "aaa", fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lower := filepath.Join(base, "lower")
	if err := os.MkdirAll(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		z := filepath.Join(upper, "zzz")
		for !stop.Load() {
			os.Mkdir(z, 0o755)
			time.Sleep(time.Millisecond)
			os.Remove(z)
			os.Symlink(host, z)
			time.Sleep(time.Millisecond)
			os.Remove(z)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	for i := range 100 {
		changes, err := r.Changes(id, lower)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if strings.Contains(c.Path, "HOST-FILE-NAME") {
				t.Fatalf("try %d: docker diff listed a host file: %v", i, c)
			}
		}
		if size, err := r.UpperSize(id); err != nil || size >= 1<<30 {
			t.Fatalf("try %d: the upper directory's size counted a host file: %d, %v", i, size, err)
		}
	}
}
