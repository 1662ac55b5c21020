package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The reaper is a small process of its own, one per exec-root, that starts
// runc for the daemon and so becomes the parent of every container init
// and exec'd process (it is a child subreaper: when "runc run --detach"
// exits, the init is re-parented to it). It outlives the daemon: a daemon
// killed while its containers run leaves them with a parent that still
// collects their exit codes (see exits_linux.go), and the next daemon
// finds the reaper at its socket and goes on using it. Docker keeps exit
// codes the same way, in a containerd shim per container; one shared
// reaper costs a single process however many containers run.
//
// It also reaps whatever runc leaves behind: a runc that fails half-way
// through a start orphans its bootstrap child ("runc:[1:CHILD]"), which
// used to stay a zombie under the daemon.
//
// It is this same binary started again with reaperArg0 as its argv[0]
// (the reexec pattern of moby's pkg/reexec): init catches that before main
// runs, so every binary that links this package, tests included, can be
// the reaper. It exits once no daemon is connected and it has no children.
//
// Protocol: SOCK_SEQPACKET on <dir>/reaper.sock, one JSON message each
// way at a time. A connection opens with a reaperRequest: "hello" (the
// daemon's standing connection, kept open while the daemon lives) or
// "spawn" (one process started, with its stdin, stdout and stderr passed as
// SCM_RIGHTS). A spawn is answered with the PID and then with the exit
// code once the process ends; a connection closed before that kills it.

const reaperArg0 = "berth-reaper"

func init() {
	if len(os.Args) > 0 && os.Args[0] == reaperArg0 {
		os.Exit(reaperMain(os.Args[1:]))
	}
}

type reaperRequest struct {
	Op      string // "hello" or "spawn"
	Path    string
	Args    []string
	Env     []string
	Dir     string
	Setpgid bool
	Fds     []int // which of stdin (0), stdout (1) and stderr (2) the message carries, in order
}

type reaperReply struct {
	Pid  int    `json:",omitempty"`
	Exit *int   `json:",omitempty"`
	Err  string `json:",omitempty"`
}

// maxReaperMessage bounds a request (argv and environment).
const maxReaperMessage = 256 << 10

func reaperSocket(dir string) string { return filepath.Join(dir, "reaper.sock") }

type reaper struct {
	dir   string
	exits string
	l     *net.UnixListener

	mu      sync.Mutex
	conns   int
	met     bool             // a connection came: the start-up grace is over
	spawned map[int]chan int // runc processes by PID, for their spawn's answer
	left    chan struct{}    // a connection closed: time to see whether idle
}

// reaperMain runs the reaper for the directory in args. Its readiness goes
// to fd 3 when that is a pipe: "ok", or "busy" when another reaper already
// serves the directory.
func reaperMain(args []string) int {
	ready := os.NewFile(3, "ready")
	say := func(s string) {
		if ready != nil {
			ready.WriteString(s + "\n")
			ready.Close()
			ready = nil
		}
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: "+reaperArg0+" DIR")
		return 2
	}
	// Its command name, for ps and top: it was started as /proc/self/exe,
	// whose name is "exe".
	// (init runs on the main thread, whose name is the process's.)
	if name, err := unix.BytePtrFromString(reaperArg0); err == nil {
		unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0)
		runtime.KeepAlive(name)
	}
	rp, busy, err := newReaper(args[0])
	if busy {
		say("busy")
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, reaperArg0+":", err)
		return 1
	}
	say("ok")
	rp.run()
	return 0
}

func newReaper(dir string) (rp *reaper, busy bool, err error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, false, fmt.Errorf("become child subreaper: %w", err)
	}
	exits := exitsDir(dir)
	if err := os.MkdirAll(exits, 0o700); err != nil {
		return nil, false, err
	}
	// One reaper per directory: the lock is held until the process ends.
	lock, err := os.OpenFile(filepath.Join(dir, "reaper.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("lock %q: %w", lock.Name(), err)
	}
	sock := reaperSocket(dir)
	os.Remove(sock) // a dead reaper's; the lock says no live one has it
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return nil, false, err
	}
	l.SetUnlinkOnClose(false) // removed by exit, while the lock is still held
	return &reaper{dir: dir, exits: exits, l: l, spawned: map[int]chan int{}, left: make(chan struct{}, 1)}, false, nil
}

// run serves until the reaper is idle: no connection and no child. A
// fresh reaper first waits up to a few seconds for its daemon to connect.
func (rp *reaper) run() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE) // a terminal's signals are not ours
	rp.reap()                                             // children from before Notify
	go rp.accept()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	graceUntil := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-sigs:
			rp.reap()
		case <-rp.left:
		case <-tick.C:
			rp.reap() // a SIGCHLD coalesced away is picked up here
		}
		if rp.idle(graceUntil) {
			os.Remove(reaperSocket(rp.dir))
			return
		}
	}
}

// idle reports whether nothing needs the reaper: no connection is open
// and it has no child, living or dead (and the start-up grace is over). A
// connection accepted afterwards finds the socket gone, and its daemon
// starts a new reaper.
func (rp *reaper) idle(graceUntil time.Time) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.conns > 0 || (!rp.met && time.Now().Before(graceUntil)) {
		return false
	}
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return errors.Is(err, unix.ECHILD)
}

// reap collects every child that has exited. Before reaping one it
// records its exit (a spawned runc's goes to its spawn instead): waitid
// with WNOWAIT leaves it a zombie, whose /proc entry still gives its start
// time.
func (rp *reaper) reap() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		si := (*sigchldInfo)(unsafe.Pointer(&info))
		if err != nil || si.Pid == 0 {
			return
		}
		pid, code := int(si.Pid), exitCode(si)
		rp.mu.Lock()
		spawn, isSpawn := rp.spawned[pid]
		delete(rp.spawned, pid)
		rp.mu.Unlock()
		if !isSpawn {
			rp.record(pid, code)
		}
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if isSpawn {
			spawn <- code
		}
	}
}

// record writes down the exit of pid, unless it is one of runc's own
// bootstrap stages (left by a start that failed): no one waits for those.
func (rp *reaper) record(pid, code int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: exit of pid %d (code %d) not recorded: %v\n", reaperArg0, pid, code, err)
		return
	}
	if strings.Contains(string(b), " (runc:[") {
		return
	}
	st, err := parseStat(string(b))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: exit of pid %d (code %d) not recorded: %v\n", reaperArg0, pid, code, err)
		return
	}
	if err := writeExit(rp.exits, pid, st.start, Exit{Code: code, At: time.Now()}); err != nil {
		fmt.Fprintf(os.Stderr, "%s: exit of pid %d (code %d) not recorded: %v\n", reaperArg0, pid, code, err)
	}
}

func (rp *reaper) accept() {
	for {
		c, err := rp.l.AcceptUnix()
		if err != nil {
			return
		}
		rp.mu.Lock()
		rp.conns++
		rp.met = true
		rp.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				rp.mu.Lock()
				rp.conns--
				rp.mu.Unlock()
				select {
				case rp.left <- struct{}{}:
				default:
				}
			}()
			rp.serve(c)
		}()
	}
}

// serve answers one connection's request.
func (rp *reaper) serve(c *net.UnixConn) {
	req, files, err := readRequest(c)
	if err != nil {
		return
	}
	defer closeFiles(files...)
	switch req.Op {
	case "hello":
		writeReply(c, reaperReply{})
		c.Read(make([]byte, 1)) // until the daemon closes it (or dies)
	case "spawn":
		rp.spawn(c, req, files)
	default:
		writeReply(c, reaperReply{Err: fmt.Sprintf("unknown request %q", req.Op)})
	}
}

// spawn starts the request's process with the files it carried as its
// stdio, answers its PID, and then its exit code; if the connection closes
// first (the daemon gave up on it, or died), the process is killed.
func (rp *reaper) spawn(c *net.UnixConn, req reaperRequest, files []*os.File) {
	stdio := []uintptr{0, 0, 0}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		writeReply(c, reaperReply{Err: err.Error()})
		return
	}
	defer null.Close()
	for i := range stdio {
		stdio[i] = null.Fd()
	}
	for i, which := range req.Fds {
		if which < 0 || which > 2 || i >= len(files) {
			writeReply(c, reaperReply{Err: "bad file list"})
			return
		}
		stdio[which] = files[i].Fd()
	}
	done := make(chan int, 1)
	rp.mu.Lock() // before reap can see the child exit
	pid, err := syscall.ForkExec(req.Path, req.Args, &syscall.ProcAttr{
		Dir: req.Dir, Env: req.Env, Files: stdio,
		Sys: &syscall.SysProcAttr{Setpgid: req.Setpgid},
	})
	if err == nil {
		rp.spawned[pid] = done
	}
	rp.mu.Unlock()
	if err != nil {
		writeReply(c, reaperReply{Err: fmt.Sprintf("start %s: %v", req.Path, err)})
		return
	}
	// The child has its copies. Ours go now: a pipe's reader sees EOF only
	// once every writer is closed (the deferred close in serve then finds
	// them closed).
	closeFiles(files...)
	writeReply(c, reaperReply{Pid: pid})
	gone := make(chan struct{})
	go func() {
		c.Read(make([]byte, 1))
		close(gone)
	}()
	select {
	case code := <-done:
		writeReply(c, reaperReply{Exit: &code})
	case <-gone:
		unix.Kill(pid, unix.SIGKILL) // not reaped yet: the PID is still this child's
		<-done
	}
}

func readRequest(c *net.UnixConn) (reaperRequest, []*os.File, error) {
	var req reaperRequest
	buf := make([]byte, maxReaperMessage)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return req, nil, err
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return req, nil, err
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "stdio"))
			}
		}
	}
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		closeFiles(files...)
		return req, nil, fmt.Errorf("bad request: %w", err)
	}
	return req, files, nil
}

func writeReply(c *net.UnixConn, r reaperReply) error {
	b, _ := json.Marshal(r)
	_, err := c.Write(b)
	return err
}
