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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/fdutil"
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
//
// A spawn with Log (a container's "runc run", no terminal) gets pipes as
// its stdout and stderr, made here, and once it exited 0 the reaper
// copies them into the container's log (jsonlog.go) until every writer
// (the container) is gone: the log outlives the daemon as the container
// does. What a failed runc wrote to them is dropped (runc.log has its
// error). "logwait" answers once the copy into Log.Path has ended. The
// hello answer lists what the reaper can do (Caps): a daemon started
// with an older reaper still running writes logs as that one did.
//
// The read ends are held twice, so that neither process's death breaks
// a container's output (its next write would get SIGPIPE, which kills
// most programs): the spawn's exit answer carries copies of them to the
// daemon, which "held" also hands out (one answer per copy, then an
// empty one: a restarted daemon takes them back). A daemon whose reaper
// died gives them to the next one with "adopt" (Log and the two files),
// which copies them from then on; meanwhile the container blocks on its
// full pipe rather than dying.
//
// "keep" leaves descriptors with the reaper under keys (a stopping
// daemon's DNS resolver sockets, by sandbox; a message carries keys with
// PerKey descriptors each) and "kept" hands them all to the next daemon,
// in answers of the same shape (keepBatches), then an empty one, and
// lets go of them. What no daemon takes within keepFor is closed: a
// socket kept holds its container's namespace, and queries wait in it
// rather than being refused.

const reaperArg0 = "berth-reaper"

func init() {
	if len(os.Args) > 0 && os.Args[0] == reaperArg0 {
		os.Exit(reaperMain(os.Args[1:]))
	}
}

type reaperRequest struct {
	Op      string   // "hello", "spawn", "logwait", "held", "adopt", "attach", "keep" or "kept"
	Keys    []string `json:",omitempty"` // keep's: each gets PerKey of the descriptors, in order
	PerKey  int      `json:",omitempty"`
	Path    string
	Args    []string
	Env     []string
	Dir     string
	Setpgid bool
	Fds     []int      // which of stdin (0), stdout (1) and stderr (2) the message carries, in order
	Log     *reaperLog `json:",omitempty"`
	Next    bool       `json:",omitempty"` // attach's: to the next run, not one that may still be ending
}

// reaperLog is where a spawned container's output goes.
type reaperLog struct {
	Path string
	Lim  LogLimit
}

type reaperReply struct {
	Pid  int      `json:",omitempty"`
	Exit *int     `json:",omitempty"`
	Err  string   `json:",omitempty"`
	Caps []string `json:",omitempty"` // hello's: capLog
	// Joined is attach's: the client joined a run that goes on (false:
	// it waits for the next).
	Joined bool `json:",omitempty"`
	// Log is held's: the copy whose read ends come with the answer
	// (nil: the last answer).
	Log *reaperLog `json:",omitempty"`
	// Keys are kept's: whose descriptors come with the answer, PerKey
	// each, in order (none: the last answer).
	Keys   []string `json:",omitempty"`
	PerKey int      `json:",omitempty"`
}

// The reaper's capabilities: copying a container's output into its log,
// and handing it to attached clients ("attach": after an ok answer that
// says whether it joined a run, one message per chunk read, its first
// byte the stream, 1 or 2; when the run's output is over, a message of
// the one byte 0, and the connection closes: a close without it is a
// reaper that died).
const (
	capLog    = "log"
	capAttach = "attach"
	capHeld   = "held" // hands out and adopts the pipes' read ends
	capKeep   = "keep" // keeps descriptors from one daemon to the next
)

// keptFds are descriptors left under one key.
type keptFds struct {
	files []*os.File
	timer *time.Timer
}

// logCopy is one container's output being copied into its log.
type logCopy struct {
	done    chan struct{}
	gate    *logGate
	prev    *logCopy       // the copy into the same file before this one
	decided sync.WaitGroup // keep has run
	lg      reaperLog
	fan     outputFan // the attached

	mu   sync.Mutex
	outs []*os.File // the read ends, until the copy ends (held hands out copies)
}

// fds are dups of the copy's read ends, or nil once it has ended; the
// caller closes them.
func (cp *logCopy) fds() []int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var dups []int
	for _, f := range cp.outs {
		fd, err := fdutil.Dup(f)
		if err != nil {
			closeFds(dups)
			return nil
		}
		dups = append(dups, fd)
	}
	return dups
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
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
	met     bool                // a connection came: the start-up grace is over
	spawned map[int]chan int    // runc processes by PID, for their spawn's answer
	left    chan struct{}       // a connection closed, or a copy ended: time to see whether idle
	copies  map[string]*logCopy // by log path: the last copy into each
	copying int                 // copies not ended
	pending map[string][]fanSub // by log path: attached to the next copy
	kept    map[string]*keptFds // "keep"'s, by key
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
	return &reaper{dir: dir, exits: exits, l: l, spawned: map[int]chan int{}, left: make(chan struct{}, 1), copies: map[string]*logCopy{}, pending: map[string][]fanSub{}, kept: map[string]*keptFds{}}, false, nil
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

// idle reports whether nothing needs the reaper: no connection is open,
// it keeps nothing for the next daemon (at most keepFor), and it has no
// child, living or dead (and the start-up grace is over). A
// connection accepted afterwards finds the socket gone, and its daemon
// starts a new reaper.
func (rp *reaper) idle(graceUntil time.Time) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.conns > 0 || rp.copying > 0 || len(rp.kept) > 0 || (!rp.met && time.Now().Before(graceUntil)) {
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
		if errors.Is(err, errDescriptorsCut) {
			writeReply(c, reaperReply{Err: err.Error()})
		}
		return
	}
	defer func() { closeFiles(files...) }() // what a request did not take over
	switch req.Op {
	case "hello":
		writeReply(c, reaperReply{Caps: []string{capLog, capAttach, capHeld, capKeep}})
		c.Read(make([]byte, 1)) // until the daemon closes it (or dies)
	case "spawn":
		rp.spawn(c, req, files)
	case "held":
		rp.mu.Lock()
		copies := make([]*logCopy, 0, len(rp.copies))
		for _, cp := range rp.copies {
			copies = append(copies, cp)
		}
		rp.mu.Unlock()
		for _, cp := range copies {
			if dups := cp.fds(); len(dups) == 2 {
				lg := cp.lg
				err := writeReplyFds(c, reaperReply{Log: &lg}, dups)
				closeFds(dups)
				if err != nil {
					return
				}
			}
		}
		writeReply(c, reaperReply{})
	case "adopt":
		if req.Log == nil || len(files) != 2 {
			writeReply(c, reaperReply{Err: "adopt needs a log and its two read ends"})
			return
		}
		outs := []*os.File{files[0], files[1]}
		files = nil // the copy's now: not closed by serve
		cp := rp.startCopy(*req.Log, outs)
		go cp.keep(*req.Log, true)
		writeReply(c, reaperReply{})
	case "keep":
		n, each := len(req.Keys), req.PerKey
		if n == 0 || each <= 0 || len(files) != n*each || slices.Contains(req.Keys, "") {
			writeReply(c, reaperReply{Err: "keep needs keys and PerKey descriptors for each"})
			return
		}
		for i, key := range req.Keys {
			rp.keep(key, files[i*each:(i+1)*each])
		}
		files = nil // kept: not closed by serve
		writeReply(c, reaperReply{})
	case "kept":
		// Dups to send (Fd would make the sockets blocking), in the
		// batches "keep" came in.
		dups := map[string][]int{}
		defer func() {
			for _, fds := range dups {
				closeFds(fds)
			}
		}()
		counts := map[string]int{}
		for key, k := range rp.takeKept() {
			var fds []int
			for _, f := range k.files {
				if fd, err := fdutil.Dup(f); err == nil {
					fds = append(fds, fd)
				}
			}
			closeFiles(k.files...)
			dups[key] = fds
			if len(fds) == len(k.files) {
				counts[key] = len(fds)
			}
		}
		batches, _ := keepBatches(counts) // Keep refused what a message cannot carry
		for _, keys := range batches {
			var batch []int
			for _, key := range keys {
				batch = append(batch, dups[key]...)
			}
			if err := writeReplyFds(c, reaperReply{Keys: keys, PerKey: len(batch) / len(keys)}, batch); err != nil {
				return
			}
		}
		writeReply(c, reaperReply{})
	case "attach":
		if req.Log == nil {
			writeReply(c, reaperReply{Err: "attach without a log"})
			return
		}
		rp.attach(c, req.Log.Path, req.Next)
	case "logwait":
		if req.Log == nil {
			writeReply(c, reaperReply{Err: "logwait without a log"})
			return
		}
		rp.mu.Lock()
		cp := rp.copies[req.Log.Path]
		rp.mu.Unlock()
		if cp != nil {
			gone := make(chan struct{})
			go func() {
				c.Read(make([]byte, 1))
				close(gone)
			}()
			select {
			case <-cp.done:
			case <-gone:
				return
			}
		}
		writeReply(c, reaperReply{})
	default:
		writeReply(c, reaperReply{Err: fmt.Sprintf("unknown request %q", req.Op)})
	}
}

// keep holds files under key until "kept" takes them, or keepFor has
// passed; what key held before is closed.
func (rp *reaper) keep(key string, files []*os.File) {
	k := &keptFds{files: files}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if old := rp.kept[key]; old != nil {
		old.timer.Stop()
		closeFiles(old.files...)
	}
	rp.kept[key] = k
	k.timer = time.AfterFunc(keepFor, func() {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if rp.kept[key] == k {
			delete(rp.kept, key)
			closeFiles(k.files...)
		}
	})
}

// takeKept takes everything kept, for "kept".
func (rp *reaper) takeKept() map[string]*keptFds {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	kept := rp.kept
	rp.kept = map[string]*keptFds{}
	for _, k := range kept {
		k.timer.Stop()
	}
	return kept
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
	var outs, ins []*os.File // a logged spawn's stdout and stderr pipes: read ends, write ends
	if req.Log != nil {
		for which := 1; which <= 2; which++ {
			r, w, err := os.Pipe()
			if err != nil {
				closeFiles(append(outs, ins...)...)
				writeReply(c, reaperReply{Err: err.Error()})
				return
			}
			stdio[which] = w.Fd()
			outs, ins = append(outs, r), append(ins, w)
		}
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
	closeFiles(ins...) // the child's now, if it started
	if err != nil {
		closeFiles(outs...)
		writeReply(c, reaperReply{Err: fmt.Sprintf("start %s: %v", req.Path, err)})
		return
	}
	// The child has its copies. Ours go now: a pipe's reader sees EOF only
	// once every writer is closed (the deferred closes here and in serve
	// then find them closed).
	closeFiles(files...)
	var cp *logCopy
	if req.Log != nil {
		cp = rp.startCopy(*req.Log, outs)
	}
	writeReply(c, reaperReply{Pid: pid})
	gone := make(chan struct{})
	go func() {
		c.Read(make([]byte, 1))
		close(gone)
	}()
	select {
	case code := <-done:
		if cp == nil {
			writeReply(c, reaperReply{Exit: &code})
			return
		}
		go cp.keep(*req.Log, code == 0)
		var dups []int // the daemon's copies of the read ends
		if code == 0 {
			dups = cp.fds()
		}
		writeReplyFds(c, reaperReply{Exit: &code}, dups)
		closeFds(dups)
	case <-gone:
		unix.Kill(pid, unix.SIGKILL) // not reaped yet: the PID is still this child's
		<-done
		if cp != nil {
			// runc may have started the container before it was killed:
			// its output is kept (a runc that fails on its own says why
			// in its exit code, and its words are dropped).
			go cp.keep(*req.Log, true)
		}
	}
}

// sockSub is an attached client on a connection.
type sockSub struct {
	c     *net.UnixConn
	done  chan struct{}
	once  sync.Once
	buf   []byte
	ready chan struct{} // closed once the answer is written: chunks come after it
}

func (s *sockSub) send(stream byte, p []byte) error {
	<-s.ready
	s.buf = append(append(s.buf[:0], stream), p...)
	_, err := s.c.Write(s.buf)
	return err
}

func (s *sockSub) end() { s.once.Do(func() { close(s.done) }) }

// attach hands c the output of the copy into path that runs (unless
// next), or of the next one, until it is over or c closes. A fan is
// never touched under rp.mu: a client that does not read holds its
// fan's deliveries, and nothing else.
func (rp *reaper) attach(c *net.UnixConn, path string, next bool) {
	sub := &sockSub{c: c, done: make(chan struct{}), ready: make(chan struct{})}
	var joined *logCopy
	for {
		rp.mu.Lock()
		cp := rp.copies[path]
		if next || cp == nil {
			rp.pending[path] = append(rp.pending[path], sub)
			rp.mu.Unlock()
			break
		}
		rp.mu.Unlock()
		if cp.fan.add(sub) {
			joined = cp
			break
		}
		// That run's output is over: the next run's, unless one began.
		rp.mu.Lock()
		if rp.copies[path] == cp {
			rp.pending[path] = append(rp.pending[path], sub)
			rp.mu.Unlock()
			break
		}
		rp.mu.Unlock()
	}
	werr := writeReply(c, reaperReply{Joined: joined != nil})
	close(sub.ready)
	gone := make(chan struct{})
	go func() {
		c.Read(make([]byte, 1))
		close(gone)
	}()
	if werr != nil {
		sub.end()
	}
	select {
	case <-sub.done:
		c.Write([]byte{0}) // the run's output is over
	case <-gone:
	}
	rp.mu.Lock()
	if rest := dropSub(rp.pending[path], sub); len(rest) > 0 {
		rp.pending[path] = rest
	} else {
		delete(rp.pending, path)
	}
	cur := rp.copies[path] // it may have moved there from pending
	rp.mu.Unlock()
	for _, cp := range []*logCopy{cur, joined} {
		if cp != nil {
			cp.fan.remove(sub)
		}
	}
}

// startCopy starts copying outs (the spawn's stdout and stderr) into
// lg's file, and registers it: a logwait from now on waits for it. What
// comes before runc has exited is held (keep says what becomes of it):
// the container may print before runc returns, and its lines keep their
// times and their order across the two streams.
func (rp *reaper) startCopy(lg reaperLog, outs []*os.File) *logCopy {
	rp.mu.Lock()
	prev := rp.copies[lg.Path]
	cp := &logCopy{done: make(chan struct{}), gate: newLogGate(), prev: prev, lg: lg, outs: outs}
	cp.decided.Add(1)
	for _, sub := range rp.pending[lg.Path] {
		cp.fan.add(sub)
	}
	delete(rp.pending, lg.Path)
	rp.copies[lg.Path] = cp
	rp.copying++
	rp.mu.Unlock()
	go rp.copyLog(cp, lg, outs)
	return cp
}

// copyLog copies outs into cp's gate until both end, then closes the
// log and marks the copy done.
func (rp *reaper) copyLog(cp *logCopy, lg reaperLog, outs []*os.File) {
	defer func() {
		rp.mu.Lock()
		if rp.copies[lg.Path] == cp {
			delete(rp.copies, lg.Path)
		}
		rp.copying--
		rp.mu.Unlock()
		close(cp.done)
		select {
		case rp.left <- struct{}{}:
		default:
		}
	}()
	var wg sync.WaitGroup
	for i, f := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			warn := func(err error) {
				fmt.Fprintf(os.Stderr, "%s: %v (later errors are counted at the end)\n", reaperArg0, err)
			}
			tee := func(p []byte) { cp.fan.write(byte(i+1), p) }
			if err := copyLines(f, []string{"stdout", "stderr"}[i], cp.gate, time.Now, warn, tee); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", reaperArg0, err)
			}
		}()
	}
	wg.Wait()
	cp.decided.Wait() // the fan opened (or ended) before it ends
	cp.fan.end()
	cp.mu.Lock()
	closeFiles(cp.outs...) // at EOF on both: no writer is left
	cp.outs = nil
	cp.mu.Unlock()
	cp.decided.Wait()
	if lf := cp.gate.file(); lf != nil {
		lf.close()
	}
}

// keep ends the hold of cp's gate once runc has exited: with keep its
// entries go to lg's file (after an earlier copy into it has ended),
// without they are dropped (a runc that failed wrote its error there).
func (cp *logCopy) keep(lg reaperLog, keep bool) {
	defer cp.decided.Done()
	cp.fan.open(keep) // the attached need not wait for an earlier copy's end
	// After the copy before it (a dropped one too: it stays the map's
	// entry until it ends, so that the next copy waits for them both),
	// for as long as an exit waits for its output (logDrainWait: a
	// process outside the container's PID namespace may hold a pipe).
	if cp.prev != nil {
		select {
		case <-cp.prev.done:
		case <-time.After(logDrainWait):
		}
	}
	if !keep {
		cp.gate.open(nil)
		return
	}
	sink, err := openLogSink(lg.Path, lg.Lim)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v: the container's output is dropped\n", reaperArg0, err)
		cp.gate.open(nil)
		return
	}
	cp.gate.open(sink)
}

// errDescriptorsCut is a request whose descriptors did not all come
// (the reaper out of descriptors): refused, as which is which is unknown.
var errDescriptorsCut = errors.New("the request's descriptors were cut short")

func readRequest(c *net.UnixConn) (reaperRequest, []*os.File, error) {
	var req reaperRequest
	buf := make([]byte, maxReaperMessage)
	oob := make([]byte, unix.CmsgSpace(keepBatch*4)) // the most a request carries: keep's
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
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
	if flags&unix.MSG_CTRUNC != 0 { // descriptors lost: which went where is unknown
		closeFiles(files...)
		return req, nil, errDescriptorsCut
	}
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		closeFiles(files...)
		return req, nil, fmt.Errorf("bad request: %w", err)
	}
	return req, files, nil
}

// writeReplyFds writes r with descriptors (SCM_RIGHTS); none is
// writeReply.
func writeReplyFds(c *net.UnixConn, r reaperReply, fds []int) error {
	if len(fds) == 0 {
		return writeReply(c, r)
	}
	b, _ := json.Marshal(r)
	_, _, err := c.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	return err
}

func writeReply(c *net.UnixConn, r reaperReply) error {
	b, _ := json.Marshal(r)
	_, err := c.Write(b)
	return err
}
