package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
// (128+N for a process killed by signal N), which the reaper recorded; a
// restarted daemon learns it the same way. A container whose reaper died
// while this daemon ran is this daemon's child then, and Wait collects it
// itself. Only when neither could (the reaper died after the daemon that
// started it, or with it) is the code lost: Wait then returns -1 and no
// error, as it does for a process already gone without a record. For a tty
// container Wait also waits until the terminal's output is in the log.
func (r *Runtime) Wait(ctx context.Context, id string, p Process) (int, error) {
	code, err := r.waitProcess(ctx, p)
	if err != nil {
		return -1, fmt.Errorf("wait for container %q: %w", id, err)
	}
	r.killRestIfShared(id)
	if err := r.finishIO(ctx, id); err != nil {
		return code, fmt.Errorf("wait for container %q: %w", id, err)
	}
	return code, nil
}

// waitProcess waits until p exits and returns its code: the reaper's
// record of it, or, for a process that is our own child (one whose reaper
// died while this daemon, a child subreaper, ran: it came to us), what
// waitid says.
func (r *Runtime) waitProcess(ctx context.Context, p Process) (int, error) {
	fd, err := openPidfd(p)
	if errors.Is(err, errGone) {
		if e, ok := r.LastExit(p); ok {
			return e.Code, nil
		}
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	f := os.NewFile(uintptr(fd), "pidfd") // nonblocking: the runtime's poller watches it
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("pidfd: %w", err)
	}
	if err := waitReadable(ctx, f, rc); err != nil {
		return -1, err
	}
	code, ours := -1, false
	if cerr := rc.Control(func(fd uintptr) { code, ours, err = reapPidfd(int(fd)) }); cerr != nil {
		return -1, fmt.Errorf("pidfd: %w", cerr)
	}
	if err != nil || ours {
		return code, err
	}
	return r.awaitExit(ctx, p)
}

// waitReadable waits for the pidfd behind f to become readable (the
// process exited) without holding an OS thread: the goroutine parks in the
// Go runtime's poller (epoll), as a socket read does, and a cancelled ctx
// ends the wait through a read deadline in the past.
//
// Why: a blocking poll(2) per running container held one thread each and,
// to notice ctx, woke it five times a second. At 1,000 containers that was
// 1,000 threads and 5,000 wake-ups a second, each one a cross-CPU wake-up
// on a VM, landing in the middle of whatever the daemon was doing.
func waitReadable(ctx context.Context, f *os.File, rc syscall.RawConn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	fds := []unix.PollFd{{Events: unix.POLLIN}}
	var perr error
	err := rc.Read(func(fd uintptr) bool {
		fds[0].Fd = int32(fd)
		n, err := unix.Poll(fds, 0) // readable yet? (never blocks)
		for errors.Is(err, unix.EINTR) {
			n, err = unix.Poll(fds, 0)
		}
		perr = err
		return err != nil || n > 0 // false: park until the poller says readable
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("wait for pidfd: %w", err)
	case perr != nil:
		return fmt.Errorf("poll pidfd: %w", perr)
	}
	return nil
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

// reapPidfd collects the exit of the process behind fd if it is our child
// (ours); ECHILD means it is not.
func reapPidfd(fd int) (code int, ours bool, err error) {
	var info unix.Siginfo
	err = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil)
	}
	if errors.Is(err, unix.ECHILD) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, fmt.Errorf("waitid: %w", err)
	}
	return exitCode((*sigchldInfo)(unsafe.Pointer(&info))), true, nil
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

// killRestIfShared kills what is left of a container whose init exited,
// if the init was not its PID namespace's first process (--pid host or
// container:<x>): the kernel ends the rest of a PID namespace with its
// first process, not theirs, and a child holding the output would hold
// the exit for logDrainWait. containerd's shim does the same
// (shouldKillAllOnExit).
func (r *Runtime) killRestIfShared(id string) {
	b, err := os.ReadFile(filepath.Join(r.bundle(id), "config.json"))
	if err != nil {
		return
	}
	var spec struct {
		Linux struct {
			Namespaces []specs.LinuxNamespace `json:"namespaces"`
		} `json:"linux"`
	}
	if json.Unmarshal(b, &spec) != nil {
		return
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return // its own: gone with its init
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := r.runcAt(ctx, "kill", "--all", id, "KILL").CombinedOutput(); err != nil {
		r.log.Debug("kill what is left of a container sharing a PID namespace", "id", id, "err", err, "runc", strings.TrimSpace(string(out)))
	}
}
