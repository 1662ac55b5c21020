package fdutil

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDup: the dup is another descriptor of the same open file,
// close-on-exec, and the file stays non-blocking for both.
func TestDup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		name string
		dup  func() (int, error)
	}{
		{"pipe", func() (int, error) { return Dup(w) }},
		{"listener", func() (int, error) { return Dup(l.(*net.TCPListener)) }},
	} {
		fd, err := tc.dup()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		defer unix.Close(fd)
		fdFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || fdFlags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: descriptor flags %#x, %v; want close-on-exec", tc.name, fdFlags, err)
		}
		flFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || flFlags&unix.O_NONBLOCK == 0 {
			t.Errorf("%s: file flags %#x, %v; want non-blocking", tc.name, flFlags, err)
		}
		if tc.name != "pipe" {
			continue
		}
		// The same pipe: a byte written through the dup comes out of r.
		if _, err := unix.Write(fd, []byte{7}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if n, err := r.Read(b); n != 1 || err != nil || b[0] != 7 {
			t.Errorf("read what the dup wrote: %d %v, %v", n, b, err)
		}
	}
}
