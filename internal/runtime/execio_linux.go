package runtime

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// drainGrace is how long an exec's output may keep flowing after the
// process exited: a background child that inherited stdout would
// otherwise hold the stream open forever.
const drainGrace = 2 * time.Second

// execIO connects an exec'd process to the caller's streams. Without a
// terminal, runc passes the child ends of pipes (or /dev/null) on to the
// process; with one, everything goes through the pty master.
type execIO struct {
	tty                         bool
	childIn, childOut, childErr *os.File // given to runc, closed once it ran
	stdinW, outR, errR, console *os.File // our ends
	copiesDone                  chan struct{}
	pendingCopies               int
	// detached is set when the caller stopped waiting (ctx ended): output
	// still drains, so the process never blocks on a full pipe, but no
	// longer reaches the caller's writers.
	mu       sync.Mutex
	detached bool
}

// detach stops output from reaching the caller's writers.
func (x *execIO) detach() {
	x.mu.Lock()
	x.detached = true
	x.mu.Unlock()
}

// callerWriter forwards to the caller's writer until the exec is
// detached, or the writer fails (the client went away): from then on the
// output is read and dropped, as moby's broadcaster drops a failed
// writer, so that the process never blocks on a full pipe (an exec whose
// client was killed stalled for good, and its handler with it).
type callerWriter struct {
	x *execIO
	w io.Writer
}

func (c callerWriter) Write(p []byte) (int, error) {
	c.x.mu.Lock()
	defer c.x.mu.Unlock()
	if c.x.detached {
		return len(p), nil
	}
	if _, err := c.w.Write(p); err != nil {
		c.x.detached = true
	}
	return len(p), nil
}

func newExecIO(e ExecSpec) (x *execIO, err error) {
	x = &execIO{tty: e.Tty, copiesDone: make(chan struct{}, 3)}
	if e.Tty {
		return x, nil
	}
	defer func() {
		if err != nil {
			x.abort()
		}
	}()
	if x.childIn, x.stdinW, err = pipeOrNull(e.Stdin != nil, true); err != nil {
		return nil, err
	}
	if x.outR, x.childOut, err = pipeOrNull(e.Stdout != nil, false); err != nil {
		return nil, err
	}
	if x.errR, x.childErr, err = pipeOrNull(e.Stderr != nil, false); err != nil {
		return nil, err
	}
	return x, nil
}

// pipeOrNull returns (read end, write end) of a pipe, or /dev/null for the
// child's end when the stream is not attached. childReads says which end
// is the child's.
func pipeOrNull(attached, childReads bool) (r, w *os.File, err error) {
	if attached {
		return os.Pipe()
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	if childReads {
		return null, nil, nil
	}
	return nil, null, nil
}

func (x *execIO) closeChildEnds() {
	closeFiles(x.childIn, x.childOut, x.childErr)
	x.childIn, x.childOut, x.childErr = nil, nil, nil
}

// abort closes everything: the process never ran.
func (x *execIO) abort() {
	x.closeChildEnds()
	closeFiles(x.stdinW, x.outR, x.errR, x.console)
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// startCopying starts one goroutine per attached stream.
func (x *execIO) startCopying(e ExecSpec) {
	out := func(w io.Writer, r *os.File) {
		if w == nil || r == nil {
			return
		}
		x.pendingCopies++
		go func() {
			// A pty master ends with EIO once every slave is closed.
			io.Copy(callerWriter{x, w}, r)
			x.copiesDone <- struct{}{}
		}()
	}
	if x.tty {
		out(e.Stdout, x.console)
		if e.Stdin != nil {
			go io.Copy(x.console, e.Stdin)
		}
		return
	}
	out(e.Stdout, x.outR)
	out(e.Stderr, x.errR)
	if e.Stdin != nil {
		go func() {
			io.Copy(x.stdinW, e.Stdin)
			// EOF from the client: the process reads EOF, its output goes on.
			x.stdinW.Close()
		}()
	}
}

// finish runs after the process was reaped: it waits for the output to
// drain, then closes our ends (which also stops a stdin copy still waiting
// on the client).
func (x *execIO) finish() {
	grace := time.NewTimer(drainGrace)
	defer grace.Stop()
	for range x.pendingCopies {
		select {
		case <-x.copiesDone:
		case <-grace.C:
			closeFiles(x.outR, x.errR, x.console) // unblocks the copies
			<-x.copiesDone
		}
	}
	closeFiles(x.stdinW, x.outR, x.errR, x.console)
}

// resize sets the terminal size; without a terminal there is nothing to do.
func (x *execIO) resize(h, w uint) error {
	if x.console == nil {
		return nil
	}
	if h == 0 || w == 0 {
		return errors.New("terminal size must not be zero")
	}
	return resizeTerminal(x.console, h, w)
}
