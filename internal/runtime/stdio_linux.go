package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
)

// containerIO is what the daemon holds for a container it started.
type containerIO struct {
	// stdinHold is a write end of the stdin FIFO, kept so the container does
	// not read EOF before a client attaches; CloseStdin lets it go.
	stdinHold *os.File
	// console is a tty container's pty master; copied is closed once its
	// output stopped and is in the stdout log.
	console *os.File
	copied  chan struct{}
}

func (c *containerIO) close() error {
	var errs []error
	if c.stdinHold != nil {
		errs = append(errs, c.stdinHold.Close())
		c.stdinHold = nil
	}
	if c.console != nil {
		errs = append(errs, c.console.Close())
		c.console = nil
	}
	return errors.Join(errs...)
}

// containerStdio are the files runc hands to a non-tty container.
type containerStdio struct {
	stdin, stdout, stderr *os.File
	stdinHold             *os.File
	stderrSize            int64 // the stderr log's size before runc ran
}

func (s *containerStdio) close() {
	for _, f := range []*os.File{s.stdin, s.stdout, s.stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// closeHold lets go of the stdin FIFO when the start failed.
func (s *containerStdio) closeHold() error {
	if s.stdinHold == nil {
		return nil
	}
	err := s.stdinHold.Close()
	s.stdinHold = nil
	return err
}

// openStdio opens the container's stdin (/dev/null, or the FIFO) and,
// with files, the raw log files of a container that writes its own
// (appending: a restarted container keeps its earlier output).
func (r *Runtime) openStdio(id string, openStdin, files bool) (*containerStdio, error) {
	s := &containerStdio{}
	outPath, errPath := r.LogPaths(id)
	var err error
	if files {
		if s.stdout, err = openLog(outPath); err != nil {
			return nil, err
		}
		if s.stderr, err = openLog(errPath); err != nil {
			s.close()
			return nil, err
		}
		if st, err := s.stderr.Stat(); err == nil {
			s.stderrSize = st.Size()
		}
	}
	if openStdin {
		s.stdin, s.stdinHold, err = makeStdinFIFO(r.stdinPath(id))
	} else {
		s.stdin, err = os.Open(os.DevNull)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func openLog(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", p, err)
	}
	return f, nil
}

// makeStdinFIFO creates the FIFO and opens both ends. The write end is
// opened first (O_RDWR does not wait for a reader), so opening the read end
// does not block either.
func makeStdinFIFO(p string) (reader, hold *os.File, err error) {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return nil, nil, fmt.Errorf("create stdin fifo %q: %w", p, err)
	}
	if hold, err = os.OpenFile(p, os.O_RDWR, 0); err != nil {
		return nil, nil, fmt.Errorf("open stdin fifo %q: %w", p, err)
	}
	if reader, err = os.OpenFile(p, os.O_RDONLY, 0); err != nil {
		hold.Close()
		return nil, nil, fmt.Errorf("open stdin fifo %q: %w", p, err)
	}
	return reader, hold, nil
}

// copyConsole copies a tty container's output into its stdout log until the
// terminal hangs up (every slave closed: the container is gone).
func copyConsole(master *os.File, log *os.File, done chan<- struct{}) {
	defer close(done)
	defer log.Close()
	io.Copy(log, master)
}

// copyConsoleLines copies a tty container's output into its log, as
// stdout entries, and to its attached clients (fan), until the terminal
// hangs up.
func copyConsoleLines(master *os.File, lf logSink, fan *outputFan, done func()) {
	defer done()
	defer lf.close()
	copyLines(master, "stdout", lf, time.Now, nil, func(p []byte) { fan.write(1, p) }) // ends with EIO once every slave closed
}

// logDrainWait bounds how long a container's exit waits for the reaper
// to copy the rest of its output: a process outside its PID namespace
// that kept its stdout open would hold the pipe forever.
const logDrainWait = 10 * time.Second

// finishIO is the end of a container's I/O after its init exited: wait for
// its output to reach the log (the reaper's copy, the terminal's copier),
// then let go of the descriptors.
func (r *Runtime) finishIO(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, logDrainWait)
	err := r.reaper.waitLog(wctx, r.JSONLogPath(id))
	cancel()
	// The run is over: its pipes need no keeping for another reaper
	// (after a timeout what is left in them is the reaper's alone).
	r.reaper.release(r.JSONLogPath(id))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.log.Warn("wait for a container's output to reach its log", "container", id, "err", err)
	}
	r.mu.Lock()
	c := r.ios[id]
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	if c.copied != nil {
		select {
		case <-c.copied:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.dropIO(id)
}

func (r *Runtime) dropIO(id string) error {
	r.mu.Lock()
	c := r.ios[id]
	delete(r.ios, id)
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.close()
}

// WriteStdin returns a writer to the container's stdin (attach -i). Closing
// it does not end the container's stdin while the runtime still holds the
// FIFO (see CloseStdin). For a tty container it writes to the terminal.
func (r *Runtime) WriteStdin(id string) (io.WriteCloser, error) {
	r.mu.Lock()
	c := r.ios[id]
	r.mu.Unlock()
	if c != nil && c.console != nil {
		return nopCloser{c.console}, nil
	}
	// Non-blocking open fails with ENXIO instead of waiting when nobody
	// reads: the container is gone.
	f, err := os.OpenFile(r.stdinPath(id), os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENXIO):
		return nil, errdefs.Conflict("container %s is not running", id)
	case errors.Is(err, os.ErrNotExist):
		return nil, errdefs.Conflict("container %s was not started with an open stdin", id)
	case err != nil:
		return nil, fmt.Errorf("open stdin of container %q: %w", id, err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// CloseStdin lets go of the runtime's own hold on the container's stdin, so
// the container reads EOF once the last attached writer closes (docker's
// StdinOnce). Idempotent.
func (r *Runtime) CloseStdin(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.ios[id]
	if c == nil || c.stdinHold == nil {
		return nil
	}
	err := c.stdinHold.Close()
	c.stdinHold = nil
	return err
}

// Resize sets the terminal size of a tty container this runtime started.
func (r *Runtime) Resize(id string, h, w uint) error {
	r.mu.Lock()
	c := r.ios[id]
	r.mu.Unlock()
	if c == nil || c.console == nil {
		return errdefs.Conflict("container %s has no terminal", id)
	}
	return resizeTerminal(c.console, h, w)
}
