package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/moby/term"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/client"
)

// streams says where a hijacked session's data goes.
type streams struct {
	stdin          io.Reader // nil: stdin not attached
	stdout, stderr io.Writer // nil: not attached
	tty            bool      // output is raw, stdout and stderr merged
	// detachKeys, in a tty session, end it when typed (the process runs
	// on): pump returns term.EscapeError, as docker's CLI does.
	detachKeys []byte
}

// defaultDetachKeys is docker's ctrl-p,ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// detachKeys parses --detach-keys (docker's form: "ctrl-p,ctrl-q", "a,b");
// empty is the default.
func detachKeys(flag string) ([]byte, error) {
	if flag == "" {
		return defaultDetachKeys, nil
	}
	keys, err := term.ToBytes(flag)
	if err != nil {
		return nil, fmt.Errorf("invalid detach keys (%s) provided", flag)
	}
	return keys, nil
}

// detached says whether err is the detach keys' end of a session.
func detached(err error) bool { return errors.As(err, new(term.EscapeError)) }

// pump copies stdin to conn (half-closing it at EOF, so the process sees
// EOF while its output keeps coming) and conn's output to stdout/stderr,
// demultiplexing unless the stream is raw. It returns when the output
// ends — the process exited — or ctx is done.
func pump(ctx context.Context, conn *client.HijackedConn, s streams) error {
	outDone := make(chan error, 1)
	go func() {
		var err error
		if s.tty || !conn.Multiplexed() {
			_, err = io.Copy(orDiscard(s.stdout), conn)
		} else {
			_, err = client.Demux(s.stdout, s.stderr, conn)
		}
		outDone <- err
	}()
	escaped := make(chan struct{})
	if s.stdin != nil {
		in := s.stdin
		if s.tty && len(s.detachKeys) > 0 {
			in = term.NewEscapeProxy(in, s.detachKeys)
		}
		go func() {
			if _, err := io.Copy(conn, in); detached(err) {
				close(escaped)
				return
			}
			_ = conn.CloseWrite()
		}()
	}
	select {
	case err := <-outDone:
		return err
	case <-escaped:
		return term.EscapeError{}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pumpTTY is pump for a tty session: the CLI's terminal goes raw while
// stdin is forwarded, and the remote tty follows the terminal's size.
func pumpTTY(ctx context.Context, conn *client.HijackedConn, s streams, tm terminal, resize func(h, w uint) error) error {
	if s.stdin != nil {
		defer tm.makeRaw()()
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tm.followResize(rctx, resize)
	return pump(ctx, conn, s)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// terminal is the CLI's own terminal, if stdin (and stdout) are one.
type terminal struct {
	inFd, outFd uintptr
	inTTY       bool
	outTTY      bool
}

func detectTerminal(in io.Reader, out io.Writer) terminal {
	var t terminal
	t.inFd, t.inTTY = term.GetFdInfo(in)
	t.outFd, t.outTTY = term.GetFdInfo(out)
	return t
}

// makeRaw puts the CLI's terminal into raw mode for a tty session and
// returns the function that restores it.
func (t terminal) makeRaw() (restore func()) {
	var undo []func()
	if t.inTTY {
		if st, err := term.SetRawTerminal(t.inFd); err == nil {
			undo = append(undo, func() { _ = term.RestoreTerminal(t.inFd, st) })
		}
	}
	if t.outTTY {
		if st, err := term.SetRawTerminalOutput(t.outFd); err == nil {
			undo = append(undo, func() { _ = term.RestoreTerminal(t.outFd, st) })
		}
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// size returns the terminal's height and width, or zeros.
func (t terminal) size() (uint, uint) {
	if !t.outTTY {
		return 0, 0
	}
	ws, err := term.GetWinsize(t.outFd)
	if err != nil {
		return 0, 0
	}
	return uint(ws.Height), uint(ws.Width)
}

// followResize sends the terminal's size now and on every SIGWINCH until
// ctx ends.
func (t terminal) followResize(ctx context.Context, resize func(h, w uint) error) {
	if !t.outTTY {
		return
	}
	send := func() {
		if h, w := t.size(); h > 0 || w > 0 {
			_ = resize(h, w)
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				send()
			}
		}
	}()
}

// forwardSignals passes every signal the CLI gets to the container, as
// docker run's --sig-proxy does (ForwardAllSignals), until ctx ends: a
// hang-up, ^\, SIGUSR1 reach the container, not the CLI (which died of
// the first two). SIGCHLD, SIGPIPE and SIGURG (Go's preemption) are the
// CLI's own.
func forwardSignals(ctx context.Context, kill func(sig string)) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				if name := forwardedName(s); name != "" {
					kill(name)
				}
			}
		}
	}()
}

// forwardedName is the name the daemon takes for s ("SIGHUP"), or "" for
// a signal that is not forwarded.
func forwardedName(s os.Signal) string {
	n, ok := s.(syscall.Signal)
	if !ok {
		return ""
	}
	switch n {
	case syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG:
		return ""
	}
	if name := unix.SignalName(n); name != "" {
		return name
	}
	return strconv.Itoa(int(n)) // a real-time signal
}
