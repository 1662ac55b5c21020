package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaperClient is the daemon's side of the reaper (reaper_linux.go): it
// finds the reaper of its directory or starts one, holds the standing
// "hello" connection that keeps it alive, and runs processes through it.
type reaperClient struct {
	dir string
	log *slog.Logger

	mu     sync.Mutex
	hello  *net.UnixConn // nil until connected, and again once the reaper is gone
	caps   []string      // what the connected reaper can do
	closed bool

	// held are the daemon's copies of the read ends of the containers'
	// output pipes, by log path (see the reaper's "held" and "adopt"):
	// a reaper that dies does not take the pipes with it.
	hmu  sync.Mutex
	held map[string]heldLog

	// gen serialises ensure: a caller waits until the reaper it finds
	// or starts has the pipes (takeHeld, adoptHeld) before it spawns.
	gen sync.Mutex
}

// heldLog is one container's output pipes' read ends, and their log.
type heldLog struct {
	lg  reaperLog
	fds []int
}

// hold keeps fds for lg (a container's restart replaces its old ones).
func (rc *reaperClient) hold(lg reaperLog, fds []int) {
	rc.hmu.Lock()
	defer rc.hmu.Unlock()
	if rc.held == nil {
		rc.held = map[string]heldLog{}
	}
	if old, ok := rc.held[lg.Path]; ok {
		closeFds(old.fds)
	}
	rc.held[lg.Path] = heldLog{lg: lg, fds: fds}
}

// release lets go of the read ends held for the log at path (the
// container's output has all been copied).
func (rc *reaperClient) release(path string) {
	rc.hmu.Lock()
	defer rc.hmu.Unlock()
	if h, ok := rc.held[path]; ok {
		closeFds(h.fds)
		delete(rc.held, path)
	}
}

// takeHeld asks a reaper this daemon found running for copies of the
// read ends it copies (a daemon that restarted has none).
func (rc *reaperClient) takeHeld() error {
	c, err := rc.dial(reaperRequest{Op: "held"}, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		rep, fds, err := readReplyFds(c)
		if err != nil {
			closeFds(fds)
			return err
		}
		if rep.Log == nil {
			closeFds(fds)
			return nil
		}
		if len(fds) == 2 {
			rc.hold(*rep.Log, fds)
		} else {
			closeFds(fds)
		}
	}
}

// adoptHeld gives a reaper this daemon started the read ends it holds:
// the containers whose reaper died go on being logged. It sends dups,
// made under the lock: a release meanwhile closes only its own.
func (rc *reaperClient) adoptHeld() {
	rc.hmu.Lock()
	held := make([]heldLog, 0, len(rc.held))
	for _, h := range rc.held {
		var dups []int
		for _, fd := range h.fds {
			if d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
				dups = append(dups, d)
			}
		}
		if len(dups) == len(h.fds) {
			held = append(held, heldLog{lg: h.lg, fds: dups})
		} else {
			closeFds(dups)
		}
	}
	rc.hmu.Unlock()
	for _, h := range held {
		lg := h.lg
		c, err := rc.dialFds(reaperRequest{Op: "adopt", Log: &lg}, h.fds)
		closeFds(h.fds)
		if err == nil {
			var rep reaperReply
			if rep, err = readReply(c); err == nil && rep.Err != "" {
				err = errors.New(rep.Err)
			}
			c.Close()
		}
		if err != nil {
			rc.log.Warn("hand a container's output to the new reaper", "log", lg.Path, "err", err)
		}
	}
}

// exitStatus is a spawned process's non-zero exit code, worded as
// os/exec's ExitError.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// errReaperGone says the reaper went away before it started the process:
// safe to try again with a new one.
var errReaperGone = errors.New("the reaper went away")

// ensure connects to the reaper, starting one if none answers. Having
// connected, it takes copies of the pipes a reaper found running copies,
// or gives the pipes it holds to a reaper it started.
func (rc *reaperClient) ensure() error {
	rc.gen.Lock()
	defer rc.gen.Unlock()
	connected, started, err := rc.connect()
	if err != nil || !connected {
		return err
	}
	rc.mu.Lock()
	logs := slices.Contains(rc.caps, capHeld)
	rc.mu.Unlock()
	switch {
	case !logs:
	case started:
		rc.adoptHeld()
	default:
		if err := rc.takeHeld(); err != nil {
			rc.log.Warn("take copies of the containers' output pipes from the reaper", "err", err)
		}
	}
	return nil
}

// connect opens the hello connection unless it is open; connected says
// this call opened it, started that it started the reaper too.
func (rc *reaperClient) connect() (connected, started bool, err error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed {
		return false, false, errors.New("runtime is closed")
	}
	if rc.hello != nil {
		return false, false, nil
	}
	c, caps, err := rc.greet()
	// None answers, or one on its way out does: start one. A start can
	// meet a reaper that is leaving: its socket is gone, but it holds the
	// directory's lock until its process has ended ("busy"), which can
	// take a while (a -race build's exit alone took longer than three
	// tries back to back did); so the next try waits until it is gone,
	// for up to reaperLeaving.
	deadline := time.Now().Add(reaperLeaving)
	for try := 0; err != nil; try++ {
		busy, serr := rc.start()
		if serr != nil {
			return false, false, serr
		}
		started = true
		if c, caps, err = rc.greet(); err == nil || !busy || !rc.awaitLeaving(deadline) {
			break
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("connect to the reaper: %w", err)
	}
	rc.hello, rc.caps = c, caps
	go rc.watch(c)
	return true, started, nil
}

// greet opens the hello connection, and learns what the reaper can do.
func (rc *reaperClient) greet() (*net.UnixConn, []string, error) {
	c, err := rc.dial(reaperRequest{Op: "hello"}, nil)
	if err != nil {
		return nil, nil, err
	}
	rep, err := readReply(c)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, rep.Caps, nil
}

// copiesLogs says whether the reaper copies containers' output into
// their logs (a reaper of an older berth, still running for its
// containers, does not: the containers it starts write their own files).
func (rc *reaperClient) copiesLogs() (bool, error) {
	if err := rc.ensure(); err != nil {
		return false, err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Contains(rc.caps, capLog), nil
}

// waitLog returns once the reaper's copy into the log at path has ended
// (at once when there is none), or ctx ended.
func (rc *reaperClient) waitLog(ctx context.Context, path string) error {
	if ok, err := rc.copiesLogs(); err != nil || !ok {
		return nil // no reaper to ask (the runtime is closing), or one that copies nothing
	}
	c, err := rc.dial(reaperRequest{Op: "logwait", Log: &reaperLog{Path: path}}, nil)
	if err != nil {
		return nil // gone, and its copies with it
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	rep, err := readReply(c)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return nil // the reaper went away: no copy goes on
	case rep.Err != "":
		return errors.New(rep.Err)
	}
	return nil
}

// watch forgets the hello connection when the reaper closes it (it died):
// the next spawn starts a new reaper. The containers it was the parent of
// are re-parented elsewhere, and their exit codes are lost.
func (rc *reaperClient) watch(c *net.UnixConn) {
	c.Read(make([]byte, 1))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hello == c {
		rc.hello = nil
		c.Close()
		if !rc.closed {
			rc.log.Warn("the reaper went away; a new one takes the containers' output pipes", "dir", rc.dir)
			go rc.restart() // at once: the containers block on their full pipes meanwhile
		}
	}
}

// isClosed says whether the runtime closed the client.
func (rc *reaperClient) isClosed() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.closed
}

// restart starts a reaper for the pipes this daemon holds, trying again
// for a while if it cannot (the containers wait on their full pipes).
func (rc *reaperClient) restart() {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		err := rc.ensure()
		rc.mu.Lock()
		closed := rc.closed
		rc.mu.Unlock()
		if err == nil || closed {
			return
		}
		rc.log.Warn("start a new reaper", "err", err, "again in", delay)
		time.Sleep(delay)
	}
}

// start runs a new reaper, in a session of its own so that no signal for
// the daemon's terminal or process group reaches it, and waits until it
// listens, or says another one holds the directory (busy: one leaving).
func (rc *reaperClient) start() (busy bool, err error) {
	if err := os.MkdirAll(rc.dir, 0o700); err != nil {
		return false, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer pr.Close()
	logf, err := os.OpenFile(filepath.Join(rc.dir, "reaper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		pw.Close()
		return false, err
	}
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", // this binary, even if its file was replaced since
		Args: []string{reaperArg0, rc.dir}, Dir: "/",
		Stdout: logf, Stderr: logf, ExtraFiles: []*os.File{pw},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	pw.Close()
	logf.Close()
	if err != nil {
		return false, fmt.Errorf("start the reaper: %w", err)
	}
	go cmd.Wait() // it is our child until we die: reap it if it ends first
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(pr).ReadString('\n')
	switch strings.TrimSpace(line) {
	case "ok":
		return false, nil
	case "busy":
		return true, nil
	}
	return false, fmt.Errorf("the reaper did not start (%v); see %s", err, filepath.Join(rc.dir, "reaper.log"))
}

// reaperLeaving bounds how long connect waits for a reaper that is
// leaving to be gone, so that a new one can start.
const reaperLeaving = 5 * time.Second

// awaitLeaving waits until no reaper holds the directory's lock (the one
// leaving has ended), looking every 10 ms; false when deadline came
// first. It takes the lock for a moment to look: only connect, under
// rc.mu, starts reapers, so none is starting meanwhile.
func (rc *reaperClient) awaitLeaving(deadline time.Time) bool {
	f, err := os.Open(filepath.Join(rc.dir, "reaper.lock"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) // no reaper ever held it
	}
	defer f.Close()
	for {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFds is dial with raw descriptors (held pipe ends: f.Fd() would
// make them blocking for the reaper too).
func (rc *reaperClient) dialFds(req reaperRequest, fds []int) (*net.UnixConn, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: reaperSocket(rc.dir), Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(req)
	if err != nil {
		c.Close()
		return nil, err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(b, oob, nil); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dial opens a connection to the reaper and sends req with files (the
// spawn's stdio: Fd makes them blocking, as the process wants them).
func (rc *reaperClient) dial(req reaperRequest, files []*os.File) (*net.UnixConn, error) {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return rc.dialFds(req, fds)
}

// maxReply bounds a reply: a PID, an exit code, an error's text, or the
// keys of a "kept" batch (the reaper keeps within it).
const maxReply = 4 << 10

func readReply(c *net.UnixConn) (reaperReply, error) {
	rep, fds, err := readReplyFds(c)
	closeFds(fds)
	return rep, err
}

// readReplyFds reads a reply and the descriptors it carries.
func readReplyFds(c *net.UnixConn) (reaperReply, []int, error) {
	var rep reaperReply
	buf := make([]byte, maxReply)
	oob := make([]byte, unix.CmsgSpace(keepBatch*4)) // held's two, kept's up to keepBatch
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return rep, nil, err
	}
	var fds []int
	if oobn > 0 {
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if got, err := unix.ParseUnixRights(&m); err == nil {
					for _, fd := range got {
						unix.CloseOnExec(fd)
					}
					fds = append(fds, got...)
				}
			}
		}
	}
	if n == 0 {
		return rep, fds, errReaperGone
	}
	if flags&unix.MSG_CTRUNC != 0 { // descriptors lost: which were which is unknown
		return rep, fds, errors.New("the reaper's reply came with its descriptors cut short")
	}
	if flags&unix.MSG_TRUNC != 0 {
		return rep, fds, fmt.Errorf("the reaper's reply is longer than %d bytes", maxReply)
	}
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return rep, fds, fmt.Errorf("bad reply from the reaper: %w", err)
	}
	return rep, fds, nil
}

// run runs cmd as a child of the reaper and waits for it, as cmd.Run
// would; if ctx ends first the process is killed. cmd's stdin, stdout
// and stderr must be files (or nil: /dev/null).
func (rc *reaperClient) run(ctx context.Context, cmd *exec.Cmd) error {
	return rc.runLogged(ctx, cmd, nil)
}

// runLogged is run with the process's stdout and stderr (and its
// children's: a container's) copied into lg by the reaper once it exited
// 0; cmd.Stdout and cmd.Stderr must be nil.
func (rc *reaperClient) runLogged(ctx context.Context, cmd *exec.Cmd, lg *reaperLog) error {
	req := reaperRequest{Op: "spawn", Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir,
		Setpgid: cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid, Log: lg}
	if req.Env == nil {
		req.Env = os.Environ()
	}
	var files []*os.File
	for i, s := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		switch f := s.(type) {
		case nil:
		case *os.File:
			if f != nil {
				files = append(files, f)
				req.Fds = append(req.Fds, i)
			}
		default:
			return fmt.Errorf("run %s through the reaper: stdio %d is a %T, not a file", cmd.Path, i, s)
		}
	}
	for try := 0; ; try++ {
		err := rc.runOnce(ctx, req, files)
		if !errors.Is(err, errReaperGone) || try > 0 {
			return err
		}
		rc.forget()
	}
}

func (rc *reaperClient) runOnce(ctx context.Context, req reaperRequest, files []*os.File) error {
	if err := rc.ensure(); err != nil {
		return err
	}
	c, err := rc.dial(req, files)
	if err != nil {
		return fmt.Errorf("%w: %v", errReaperGone, err)
	}
	defer c.Close()
	rep, err := readReply(c)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", errReaperGone, err)
	case rep.Err != "":
		return errors.New(rep.Err)
	}
	pid := rep.Pid
	stop := context.AfterFunc(ctx, func() { c.Close() }) // the reaper kills it
	defer stop()
	rep, fds, err := readReplyFds(c)
	if len(fds) == 2 && req.Log != nil && err == nil && rep.Exit != nil && *rep.Exit == 0 {
		rc.hold(*req.Log, fds)
	} else {
		closeFds(fds)
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("wait for %s (pid %d): the reaper went away: %v", req.Path, pid, err)
	case rep.Exit == nil:
		return fmt.Errorf("wait for %s: bad reply from the reaper", req.Path)
	case *rep.Exit != 0:
		return exitStatus(*rep.Exit)
	}
	return nil
}

// forget drops the hello connection of a reaper that went away.
func (rc *reaperClient) forget() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hello != nil {
		rc.hello.Close()
		rc.hello = nil
	}
}

// close lets the reaper go once it has no children left; the containers
// that run on keep it.
func (rc *reaperClient) close() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.closed = true
	if rc.hello != nil {
		rc.hello.Close()
		rc.hello = nil
	}
	rc.hmu.Lock()
	for path, h := range rc.held {
		closeFds(h.fds)
		delete(rc.held, path)
	}
	rc.hmu.Unlock()
}

// Keep leaves dups of each key's fds with the reaper, for the next daemon
// to take (Kept) within keepFor: a stopping daemon's DNS resolver
// sockets, by sandbox, whose queries wait in them meanwhile. The caller
// keeps its own fds (and closes them). An error says some were not kept:
// a reaper of an older berth keeps nothing.
func (r *Runtime) Keep(fds map[string][]int) error {
	// The reaper this daemon is connected to, or none: one started now
	// would have no container to stay for, and leave with what it got.
	if !r.reaper.connectedCan(capKeep) {
		return errors.New("no reaper connected, or one of an older berth: nothing kept")
	}
	// A few messages rather than one a key (hundreds at a stop).
	counts := make(map[string]int, len(fds))
	for key, f := range fds {
		if len(f) > 0 {
			counts[key] = len(f)
		}
	}
	batches, refused := keepBatches(counts)
	var errs []error
	for _, key := range refused {
		errs = append(errs, fmt.Errorf("key %.40q… with %d descriptors: no message carries it", key, len(fds[key])))
	}
	for _, keys := range batches {
		var batch []int
		for _, key := range keys {
			batch = append(batch, fds[key]...)
		}
		errs = append(errs, r.reaper.keep(keys, batch))
	}
	return errors.Join(errs...)
}

// keep sends one "keep": fds split evenly among keys, in order.
func (rc *reaperClient) keep(keys []string, fds []int) error {
	c, err := rc.dialFds(reaperRequest{Op: "keep", Keys: keys, PerKey: len(fds) / len(keys)}, fds)
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := readReply(c)
	if err == nil && rep.Err != "" {
		err = errors.New(rep.Err)
	}
	return err
}

// Kept takes what the daemon before this one left with the reaper
// (Keep), by key; the caller owns the descriptors, those that come with
// an error too. The reaper lets go of them: a second call has none.
func (r *Runtime) Kept() (map[string][]int, error) {
	if ok, err := r.reaper.can(capKeep); err != nil || !ok {
		return nil, err
	}
	c, err := r.reaper.dial(reaperRequest{Op: "kept"}, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	kept := map[string][]int{}
	for {
		rep, fds, err := readReplyFds(c)
		if err == nil && rep.Err != "" {
			err = errors.New(rep.Err)
		}
		if err == nil && len(rep.Keys) > 0 && (rep.PerKey <= 0 || len(fds) != len(rep.Keys)*rep.PerKey) {
			err = fmt.Errorf("the reaper sent %d descriptors for %d keys, %d each", len(fds), len(rep.Keys), rep.PerKey)
		}
		if err != nil || len(rep.Keys) == 0 {
			closeFds(fds)
			return kept, err
		}
		for i, key := range rep.Keys {
			if old, ok := kept[key]; ok {
				closeFds(old)
			}
			kept[key] = fds[i*rep.PerKey : (i+1)*rep.PerKey : (i+1)*rep.PerKey]
		}
	}
}
