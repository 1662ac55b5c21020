package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket receives the pty master runc sends over a unix socket
// (SCM_RIGHTS) when it creates a terminal for a detached process.
type consoleSocket struct {
	dir  string
	path string
	l    *net.UnixListener
	got  chan consoleResult
}

type consoleResult struct {
	master *os.File
	err    error
}

func newConsoleSocket() (*consoleSocket, error) {
	// Under the temp dir: socket paths are limited to 108 bytes, which a
	// bundle path with a 64-character ID can exceed.
	dir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	p := filepath.Join(dir, "sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	c := &consoleSocket{dir: dir, path: p, l: l, got: make(chan consoleResult, 1)}
	go c.accept()
	return c, nil
}

func (c *consoleSocket) accept() {
	conn, err := c.l.AcceptUnix()
	if err != nil {
		c.got <- consoleResult{err: err}
		return
	}
	defer conn.Close()
	m, err := recvFd(conn)
	c.got <- consoleResult{master: m, err: err}
}

// master returns the pty master once runc has exited successfully, by when
// it has sent it. The deadline only guards against a runc that did not.
func (c *consoleSocket) master() (*os.File, error) {
	c.l.SetDeadline(time.Now().Add(10 * time.Second))
	res := <-c.got
	if res.err != nil {
		return nil, fmt.Errorf("receive terminal from runc: %w", res.err)
	}
	return res.master, nil
}

// Close stops listening and removes the socket; a master already received
// is the caller's.
func (c *consoleSocket) Close() error {
	c.l.Close()
	return os.RemoveAll(c.dir)
}

// recvFd reads one message carrying one file descriptor, close-on-exec from
// the start so no concurrently started child inherits the master.
func recvFd(conn *net.UnixConn) (*os.File, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no file descriptor in message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("want one file descriptor, got %d (%v)", len(fds), err)
	}
	// Non-blocking, so the master goes through Go's poller and Close
	// interrupts a pending Read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// resizeTerminal sets the window size of the terminal behind master.
func resizeTerminal(master *os.File, h, w uint) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(w)})
	})
	return errors.Join(err, ierr)
}
