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

// TestAppendLines: a connect's lines go at the end of /etc/hosts, on a
// line of their own even after a last line the container left without
// its newline; a file that is not there is an error (the caller then
// writes the file whole).
func TestAppendLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	for _, tc := range []struct{ before, want string }{
		{"", "10.0.0.2\tweb\n"},
		{"127.0.0.1\tlocalhost\n", "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n"},
		{"5.5.5.5\tedited", "5.5.5.5\tedited\n10.0.0.2\tweb\n"},
	} {
		if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := appendLines(path, []string{"10.0.0.2\tweb"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != tc.want {
			t.Errorf("after %q: %q, want %q", tc.before, got, tc.want)
		}
	}
	if err := appendLines(filepath.Join(t.TempDir(), "gone"), []string{"x"}); err == nil {
		t.Error("appending to a missing file succeeded")
	}
}

// TestReadAtMost: a container's file larger than the bound is refused
// without being read whole (a sparse file of a gigabyte here).
func TestReadAtMost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("127.0.0.1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := readAtMost(path, maxEtcFile); err != nil || string(b) != "127.0.0.1\tlocalhost\n" {
		t.Errorf("a small file: %q, %v", b, err)
	}
	if err := os.Truncate(path, 1<<30); err != nil {
		t.Fatal(err)
	}
	if b, err := readAtMost(path, maxEtcFile); err == nil || len(b) > maxEtcFile+1 {
		t.Errorf("a 1 GiB file: %d bytes read, err %v; want an error after at most %d bytes", len(b), err, maxEtcFile+1)
	}
}
