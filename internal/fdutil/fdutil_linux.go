// Package fdutil holds what berth does to raw descriptors that several
// packages hand across a daemon restart (the reaper's pipes, the DNS
// resolvers' sockets, the proxy's connections).
package fdutil

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Dup returns a new close-on-exec descriptor of c's file, leaving c as it
// is. Not through os.File's Fd, nor net's File: they make the open file
// blocking, and O_NONBLOCK belongs to the open file, which every holder
// of a dup shares, so a descriptor read in Go's poller elsewhere (the
// reaper's, the next daemon's) would block its thread.
func Dup(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if cerr := rc.Control(func(raw uintptr) { fd, err = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return -1, cerr
	}
	return fd, err
}
