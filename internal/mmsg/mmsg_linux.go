// Package mmsg moves batches of datagrams with recvmmsg and sendmmsg on a
// socket that Go's poller owns: a call that would block parks on the
// poller instead, as net.UDPConn's own reads and writes do.
package mmsg

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Recv waits until at least one datagram is queued on rc and takes up to
// len(msgs) of them; it returns how many. Each header's Namelen and Flags
// must be reset by the caller before every call.
func Recv(rc syscall.RawConn, msgs []unix.Mmsghdr) (int, error) {
	return call(rc.Read, unix.SYS_RECVMMSG, "recvmmsg", msgs)
}

// Send sends up to len(msgs) datagrams in one sendmmsg, waiting while the
// socket's buffer is full; it returns how many the kernel took (at least
// one unless err is set).
func Send(rc syscall.RawConn, msgs []unix.Mmsghdr) (int, error) {
	return call(rc.Write, unix.SYS_SENDMMSG, "sendmmsg", msgs)
}

func call(wait func(func(fd uintptr) bool) error, trap uintptr, name string, msgs []unix.Mmsghdr) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := wait(func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // park until the socket is ready
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, fmt.Errorf("%s: %w", name, errno)
	}
	return n, nil
}
