package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readInRoot reads a regular file, reads a missing one as empty, and
// refuses at once what a container could use to hang the daemon: a FIFO
// at /etc/passwd (it would block an open for reading) or a directory.
func TestReadInRootRefusesWhatIsNotARegularFile(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc", "passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := readInRoot(root, "etc/group"); err != nil || string(b) != "root:x:0:\n" {
		t.Errorf("regular file: %q, %v", b, err)
	}
	if b, err := readInRoot(root, "etc/shadow"); err != nil || len(b) != 0 {
		t.Errorf("missing file: %q, %v", b, err)
	}
	// Not even opened (QA round 27: a device node's open reaches its
	// driver): inotify sees no open of the FIFO.
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, filepath.Join(root, "etc", "passwd"), unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := readInRoot(root, "etc/passwd"); done <- err }()
	defer func() {
		buf := make([]byte, 4096)
		if n, _ := unix.Read(in, buf); n > 0 {
			t.Errorf("readInRoot opened the FIFO (%d bytes of inotify events)", n)
		}
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("FIFO: %v, want it refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("readInRoot blocked on a FIFO")
	}
	if _, err := readInRoot(root, "etc"); err == nil {
		t.Errorf("a directory was read")
	}
}
