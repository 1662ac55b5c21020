package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBoltReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, BucketNetworks, "n1", record{Name: "web", Count: 7})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if got, err := get(s, BucketNetworks, "n1"); err != nil || got.Name != "web" || got.Count != 7 {
		t.Fatalf("after reopen got %+v, %v", got, err)
	}
}

func TestBoltFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600: the store holds every container's config", fi.Mode().Perm())
	}
}

// A second daemon on the same data root must fail (within lockTimeout)
// with an error that says so, not hang.
func TestBoltSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "berth.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	second, err := OpenBolt(path)
	if err == nil {
		second.Close()
		t.Fatal("second OpenBolt of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if want := `data root "` + dir + `" is in use by another berth daemon`; !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to contain %q", err, want)
	}
	// Once the first closes, the file opens again.
	s.Close()
	third, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	third.Close()
}

func TestBoltOpenBadPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "berth.db")
	_, err := OpenBolt(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenBolt(%q) = %v, want an error naming the path", path, err)
	}
}
