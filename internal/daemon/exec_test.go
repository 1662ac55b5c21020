package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime"
)

// detachedStart runs startDetached with run standing in for the runtime's
// Exec: run gets the spec's OnStart as startDetached left it.
func detachedStart(ctx context.Context, run func(onStart func()) error) (err error, onStartCalls int) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	spec := runtime.ExecSpec{OnStart: func(int, func(h, w uint) error) { onStartCalls++ }}
	err = d.startDetached(ctx, "0123456789abcdef", &spec, func(context.Context) error {
		return run(func() { spec.OnStart(42, nil) })
	})
	return err, onStartCalls
}

func TestStartDetachedReturnsOnceTheProcessRuns(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	done := make(chan error, 1)
	go func() {
		err, _ := detachedStart(context.Background(), func(onStart func()) error {
			onStart()
			<-release // the process runs on; its wait has not returned
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("startDetached = %v, want nil once the process runs", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("startDetached waited for the process to end")
	}
}

func TestStartDetachedReportsAStartFailure(t *testing.T) {
	runcErr := errors.New(`exec in container "c1": runc exec: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH`)
	err, calls := detachedStart(context.Background(), func(func()) error { return runcErr })
	if !errors.Is(err, runcErr) || !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("startDetached = %v (kind %v), want the runtime's error as invalid (400)", err, errdefs.KindOf(err))
	}
	if calls != 0 {
		t.Errorf("OnStart called %d times for a process that never started", calls)
	}
	conflict := errdefs.Conflict("container c1 is not running")
	if err, _ := detachedStart(context.Background(), func(func()) error { return conflict }); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("startDetached = %v, want the runtime's conflict kept", err)
	}
}

func TestStartDetachedProcessThatEndsAtOnce(t *testing.T) {
	// It ran: a failure of the wait is not a start failure.
	err, calls := detachedStart(context.Background(), func(onStart func()) error {
		onStart()
		return errors.New("wait: interrupted")
	})
	if err != nil || calls != 1 {
		t.Errorf("startDetached = %v with %d OnStart calls, want nil and 1", err, calls)
	}
}

func TestStartDetachedClientLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	err, _ := detachedStart(ctx, func(onStart func()) error {
		<-release // runc has not started it yet
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("startDetached = %v, want the request's cancellation", err)
	}
}

func TestStartFailureKinds(t *testing.T) {
	for _, c := range []struct {
		msg  string
		kind errdefs.Kind
	}{
		{`exec: "nope": executable file not found in $PATH`, errdefs.KindInvalid},
		{`exec: "/bin/nope": stat /bin/nope: no such file or directory`, errdefs.KindInvalid},
		{`exec: "/etc/passwd": permission denied`, errdefs.KindInvalid},
		{`exec: "/etc": is a directory`, errdefs.KindInvalid},
		{`runc exec: signal: killed`, errdefs.KindUnknown},
	} {
		err := startFailure(fmt.Errorf("start container c1: %w", errors.New(c.msg)))
		if got := errdefs.KindOf(err); got != c.kind {
			t.Errorf("startFailure(%q) kind = %v, want %v", c.msg, got, c.kind)
		}
	}
	if startFailure(nil) != nil {
		t.Error("startFailure(nil) != nil")
	}
}
