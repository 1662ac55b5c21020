package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime"
)

// runcNotFound is runc's error for a command that does not exist.
var runcNotFound = errors.New(`exec in container "c1": runc exec: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH`)

// startDetachedAsync runs startDetached for the command "nosuch" with run
// standing in for the runtime's Exec: run gets the OnStart that
// startDetached installed, and calls it on its own goroutine, as Exec
// does. The result arrives on the channel.
func startDetachedAsync(ctx context.Context, run func(onStart func()) error) <-chan error {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	spec := runtime.ExecSpec{Args: []string{"nosuch"}, OnStart: func(int, func(h, w uint) error) {}}
	done := make(chan error, 1)
	go func() {
		done <- d.startDetached(ctx, "0123456789abcdef", &spec, func(context.Context) error {
			return run(func() { spec.OnStart(42, nil) })
		})
	}()
	return done
}

func answer(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("startDetached did not answer")
		return nil
	}
}

// It answers once the process runs, not before (runc still starting it)
// and not after (the process's end).
func TestStartDetachedAnswersWhenTheProcessRuns(t *testing.T) {
	begin, end := make(chan struct{}), make(chan struct{})
	defer close(end)
	done := startDetachedAsync(context.Background(), func(onStart func()) error {
		<-begin // runc is still starting it
		onStart()
		<-end // it runs on
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("startDetached answered %v before the process ran", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(begin)
	if err := answer(t, done); err != nil {
		t.Fatalf("startDetached = %v, want nil once the process runs", err)
	}
}

func TestStartDetachedReportsAStartFailure(t *testing.T) {
	err := answer(t, startDetachedAsync(context.Background(), func(func()) error { return runcNotFound }))
	if !errors.Is(err, runcNotFound) || !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("startDetached = %v (kind %v), want runc's error as invalid (400)", err, errdefs.KindOf(err))
	}
	conflict := errdefs.Conflict("container c1 is not running")
	if err := answer(t, startDetachedAsync(context.Background(), func(func()) error { return conflict })); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("startDetached = %v, want the runtime's conflict kept", err)
	}
}

// A process that ran and ended at once, with an error from its wait, was
// started: that error is not the answer.
func TestStartDetachedProcessThatEndsAtOnce(t *testing.T) {
	err := answer(t, startDetachedAsync(context.Background(), func(onStart func()) error {
		onStart()
		return errors.New("wait: interrupted")
	}))
	if err != nil {
		t.Errorf("startDetached = %v, want nil: the process ran", err)
	}
}

func TestStartDetachedClientLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	err := answer(t, startDetachedAsync(ctx, func(func()) error {
		<-release // runc has not started it yet
		return runcNotFound
	}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("startDetached = %v, want the request's cancellation", err)
	}
}

func TestStartFailureKinds(t *testing.T) {
	for _, c := range []struct {
		cmd, msg string
		kind     errdefs.Kind
	}{
		{"nope", `exec: "nope": executable file not found in $PATH`, errdefs.KindInvalid},
		{"/bin/nope", `exec: "/bin/nope": stat /bin/nope: no such file or directory`, errdefs.KindInvalid},
		{"/etc/passwd", `exec: "/etc/passwd": permission denied`, errdefs.KindInvalid},
		{"/etc", `exec: "/etc": is a directory`, errdefs.KindInvalid},
		{"/etc/passwd/x", `exec: "/etc/passwd/x": stat /etc/passwd/x: not a directory`, errdefs.KindInvalid},
		// exec -w /etc/passwd: moby's ENOTDIR, the request's fault.
		{"true", `runc exec failed: unable to start container process: chdir to cwd ("/etc/passwd") set in config.json failed: not a directory`, errdefs.KindInvalid},
		// Host-side failures that do not name the command stay the daemon's.
		{"sh", `mkdir /var/lib/berth/exec/runc/c1: no such file or directory`, errdefs.KindUnknown},
		{"sh", `open /run/berth/c1/pid: permission denied`, errdefs.KindUnknown},
		{"sh", `exec: "other": executable file not found in $PATH`, errdefs.KindUnknown},
		{"", `exec: "": executable file not found in $PATH`, errdefs.KindUnknown},
		{"sh", `runc exec: signal: killed`, errdefs.KindUnknown},
	} {
		err := startFailure(c.cmd, fmt.Errorf("start container c1: %w", errors.New(c.msg)))
		if got := errdefs.KindOf(err); got != c.kind {
			t.Errorf("startFailure(%q, %q) kind = %v, want %v", c.cmd, c.msg, got, c.kind)
		}
	}
	if startFailure("sh", nil) != nil {
		t.Error("startFailure(nil) != nil")
	}
}

// Finished execs go at the second collection that finds them finished,
// as moby's execCommandGC drops them: one still running, or created and
// never started, stays; one that ends between two collections gets its
// full period of being inspectable.
func TestCollectExecsDropsFinishedOnesAtTheSecondPass(t *testing.T) {
	d := &Daemon{execs: map[string]*execState{}}
	add := func(id string, started, running bool) *execState {
		ex := &execState{info: api.ExecInfo{ID: id, Running: running}, started: started}
		d.execs[id] = ex
		return ex
	}
	add("done", true, false)
	late := add("late", true, true)
	add("running", true, true)
	add("created", false, false)
	have := func(want ...string) {
		t.Helper()
		got := slices.Sorted(maps.Keys(d.execs))
		if slices.Sort(want); !slices.Equal(got, want) {
			t.Errorf("execs %v, want %v", got, want)
		}
	}
	d.collectExecs()
	have("done", "late", "running", "created")
	late.mu.Lock()
	late.info.Running = false // it ends between two collections
	late.mu.Unlock()
	d.collectExecs()
	have("late", "running", "created")
	d.collectExecs()
	have("running", "created")
}

// TestContainerExecIDs: inspect's ExecIDs are the container's execs made
// and not ended (running, or created and never started), sorted.
func TestContainerExecIDs(t *testing.T) {
	d := &Daemon{execs: map[string]*execState{}}
	for _, e := range []struct {
		id, ctr          string
		started, running bool
	}{{"b-running", "c1", true, true}, {"a-created", "c1", false, false}, {"done", "c1", true, false}, {"other", "c2", true, true}} {
		d.execs[e.id] = &execState{info: api.ExecInfo{ID: e.id, ContainerID: e.ctr, Running: e.running}, started: e.started}
	}
	if got := d.ContainerExecIDs(context.Background(), "c1"); !slices.Equal(got, []string{"a-created", "b-running"}) {
		t.Errorf("c1's exec IDs %v", got)
	}
	if got := d.ContainerExecIDs(context.Background(), "c3"); got != nil {
		t.Errorf("c3's exec IDs %v, want nil", got)
	}
}
