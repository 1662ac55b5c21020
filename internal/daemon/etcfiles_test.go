package daemon

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteInPlaceKeepsTheFile: a rewrite, longer or shorter, leaves
// exactly the new content in the same inode (a bind mount of it into a
// running container sees it), and a missing file is created.
func TestWriteInPlaceKeepsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	inode := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	var first uint64
	for i, content := range []string{"127.0.0.1\tlocalhost\n", "127.0.0.1\tlocalhost\n10.88.0.2\tweb\n", "short\n", ""} {
		if err := writeInPlace(path, content); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("after write %d: %q (%v), want %q", i, got, err, content)
		}
		if i == 0 {
			first = inode()
		} else if inode() != first {
			t.Errorf("write %d replaced the file (inode %d, was %d)", i, inode(), first)
		}
	}
	if err := writeInPlace(filepath.Join(t.TempDir(), "no", "dir"), "x"); err == nil {
		t.Error("writing under a missing directory succeeded")
	}
}
