package runtime

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errGone says the process of a Process no longer exists (or its PID was reused).
var errGone = errors.New("process is gone")

// openPidfd returns a pidfd for p, checking after opening that the PID still
// belongs to the process started at p.PidStart; from then on the pidfd
// pins that process, whatever happens to the PID.
func openPidfd(p Process) (int, error) {
	if p.Pid <= 0 {
		return -1, errGone
	}
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return -1, errGone
	}
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", p.Pid, err)
	}
	st, err := readStat(p.Pid)
	if err != nil || st.start != p.PidStart {
		unix.Close(fd)
		return -1, errGone
	}
	return fd, nil
}

// Wait blocks until the container's init exits and returns its exit code
// (128+N for a process killed by signal N). It reaps the process when it is
// the daemon's child (the daemon is a subreaper). When it is not — a
// restarted daemon waiting on a container it re-adopted — the exit is seen
// through the pidfd but its code is not knowable, and Wait returns -1 and no
// error; so it does for a process that is already gone. For a tty container
// Wait also waits until the terminal's output is in the log.
func (r *Runtime) Wait(ctx context.Context, id string, p Process) (int, error) {
	code, err := waitProcess(ctx, p)
	if err != nil {
		return -1, fmt.Errorf("wait for container %q: %w", id, err)
	}
	if err := r.finishIO(ctx, id); err != nil {
		return code, fmt.Errorf("wait for container %q: %w", id, err)
	}
	return code, nil
}

// waitProcess waits until p exits and reaps it if it is our child.
func waitProcess(ctx context.Context, p Process) (int, error) {
	fd, err := openPidfd(p)
	if errors.Is(err, errGone) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	if err := waitReadable(ctx, fd); err != nil {
		return -1, err
	}
	return reapPidfd(fd)
}

// waitReadable waits for the pidfd to become readable (the process exited),
// waking up now and then to notice a cancelled ctx: a pidfd cannot be
// interrupted otherwise without another descriptor.
func waitReadable(ctx context.Context, fd int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Poll(fds, 200)
		if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		return nil
	}
}

// sigchldInfo is the SIGCHLD layout of siginfo_t on 64-bit Linux.
type sigchldInfo struct {
	Signo, Errno, Code int32
	_                  int32
	Pid                int32
	UID                uint32
	Status             int32
	_                  [100]byte
}

// reapPidfd collects the exit of the process behind fd. ECHILD means it is
// not our child: someone else reaps it and its exit code is lost to us.
func reapPidfd(fd int) (int, error) {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil)
	}
	if errors.Is(err, unix.ECHILD) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("waitid: %w", err)
	}
	return exitCode((*sigchldInfo)(unsafe.Pointer(&info))), nil
}

// si_code values of SIGCHLD (<asm-generic/siginfo.h>).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

func exitCode(si *sigchldInfo) int {
	switch si.Code {
	case cldExited:
		return int(si.Status)
	case cldKilled, cldDumped:
		return 128 + int(si.Status)
	}
	return -1
}
