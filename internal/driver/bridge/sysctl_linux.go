package bridge

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// hostThread runs functions on one OS thread that stays inside the
// driver's host namespace for the driver's life. /proc/sys/net shows the
// namespace of the thread that looks a file up, so per-device sysctls of
// the host namespace can only be written from a thread inside it; keeping
// one there costs a channel round trip per write instead of a new thread.
// A nil hostThread (the driver's host is the daemon's own namespace) runs
// functions in place.
type hostThread struct {
	work chan func()
}

// startHostThread starts a goroutine locked to a thread that entered the
// namespace at path. The goroutine never unlocks: when close ends it, the
// runtime throws the thread away rather than reuse it in that namespace.
func startHostThread(path string) (*hostThread, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %q: %w", path, err)
	}
	defer f.Close()
	t := &hostThread{work: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("enter netns %q: %w", path, err)
			return
		}
		ready <- nil
		for fn := range t.work {
			fn()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return t, nil
}

// do runs fn inside the host namespace and returns its error.
func (t *hostThread) do(fn func() error) error {
	if t == nil {
		return fn()
	}
	errc := make(chan error, 1)
	t.work <- func() { errc <- fn() }
	return <-errc
}

func (t *hostThread) close() {
	if t != nil {
		close(t.work)
	}
}

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// EnableIPForwarding sets net.ipv4.ip_forward=1 in the driver's host
// namespace and nowhere else.
func (d *Driver) EnableIPForwarding() error {
	return d.hostThread.do(func() error { return ensureSysctl(ipForwardPath, "1") })
}

// disableHostIPv6 turns IPv6 off on a host-side veth before it gets a
// carrier. A bridge port needs no IPv6 of its own, and with it each port
// adds an ff00::/8 route to the host's IPv6 table, which the kernel walks
// whole (fib6_ifdown, fib6_add_rt2node) on every link event of every
// device: profiled at 1,000 ports, that was the largest part of what made
// an attach grow with the bridge. A kernel without IPv6 has no such file.
//
// The file is opened relative to the host's /proc/sys/net/ipv6/conf,
// held open (ipv6Conf): a lookup from /proc/sys walks one "net" entry per
// network namespace that ever looked there (procfs keeps one per
// namespace under the one /proc/sys and tells them apart by comparing
// each, proc_sys_compare): 12% of a join's CPU, profiled with 1,000
// containers (BenchmarkSysctlWrite).
func (d *Driver) disableHostIPv6(name string) error {
	if d.ipv6Conf < 0 {
		return nil // a kernel without IPv6
	}
	// A fresh link has it at 0: write without reading, one procfs lookup fewer.
	return d.hostThread.do(func() error {
		return writeSysctlAt(d.ipv6Conf, name+"/disable_ipv6", "1")
	})
}

// ipv6ConfPath is the directory of the per-device IPv6 sysctls.
const ipv6ConfPath = "/proc/sys/net/ipv6/conf"

// openIPv6Conf opens the host namespace's ipv6ConfPath (on the host
// thread, so that /proc/sys/net is the host's); -1 if the kernel has no
// IPv6.
func (d *Driver) openIPv6Conf() (int, error) {
	fd := -1
	err := d.hostThread.do(func() error {
		var err error
		fd, err = unix.Open(ipv6ConfPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			fd, err = -1, nil
		}
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", ipv6ConfPath, err)
	}
	return fd, nil
}

// ensureSysctl writes value to a sysctl file unless it already holds it.
func ensureSysctl(path, value string) error {
	_, err := ensureSysctlAt(unix.AT_FDCWD, path, value)
	return err
}

// ensureSysctlAt writes value to the sysctl file at path under the open
// directory dir unless it already holds it, and says whether it wrote.
func ensureSysctlAt(dir int, path, value string) (changed bool, err error) {
	cur, err := readSysctlAt(dir, path)
	if err != nil {
		return false, err
	}
	if cur == value {
		return false, nil
	}
	return true, writeSysctlAt(dir, path, value)
}

// readSysctlAt reads the sysctl file at path under the open directory
// dir, without its trailing newline.
func readSysctlAt(dir int, path string) (string, error) {
	fd, err := unix.Openat(dir, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	var buf [64]byte // every sysctl berth reads is one short number
	n, err := unix.Read(fd, buf[:])
	for err == unix.EINTR {
		n, err = unix.Read(fd, buf[:])
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, &os.PathError{Op: "read", Path: path, Err: err})
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// writeSysctlAt writes value to the sysctl file at path under the open
// directory dir (unix.AT_FDCWD: the working directory), with three bare
// system calls: it runs on every join, and an os.File around the
// descriptor added a fcntl, a finalizer and the poller's bookkeeping for
// a file written once.
func writeSysctlAt(dir int, path, value string) error {
	fd, err := unix.Openat(dir, path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	b := []byte(value + "\n") // one write: the kernel parses each write whole
	n, err := unix.Write(fd, b)
	for err == unix.EINTR {
		n, err = unix.Write(fd, b)
	}
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, &os.PathError{Op: "write", Path: path, Err: err})
	}
	return nil
}

// writeSysctl writes value to the sysctl file at path.
func writeSysctl(path, value string) error { return writeSysctlAt(unix.AT_FDCWD, path, value) }
