package daemon

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/capbuf"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime"
)

// Health checks, as moby's daemon/health.go: while a container with a
// probe runs, a monitor runs the probe in it (an exec with the
// container's user, working directory and environment), first after the
// interval (the start interval while it starts within its start
// period), and records each result in State.Health. A change of status
// is a "health_status: <status>" event. The state lives in memory, as in
// moby, and is recorded with the container's next change.

// startHealthLocked resets c's health to starting, its last results
// kept, and starts its monitor, if it has a probe, as moby's
// initHealthMonitor at every start and restore (cs.mu held).
func (d *Daemon) startHealthLocked(cs *ctrState) {
	d.stopHealthLocked(cs)
	hc := cs.c.Config.Healthcheck
	if hc.Probe(nil) == nil {
		return
	}
	h := &container.Health{Status: container.HealthStarting}
	if old := cs.c.State.Health; old != nil {
		h.Log = old.Log
	}
	cs.c.State.Health = h
	stop := make(chan struct{})
	cs.healthStop = stop
	go d.healthMonitor(cs, hc, cs.c.State.StartedAt, stop)
}

// stopHealthLocked stops the monitor, if one runs (cs.mu held). A probe
// that is running is killed. The status becomes unhealthy, as moby's
// CloseMonitorChannel sets it "for compatibility reasons": a stopped or
// killed container does not show healthy.
func (d *Daemon) stopHealthLocked(cs *ctrState) {
	if cs.healthStop != nil {
		close(cs.healthStop)
		cs.healthStop = nil
		if h := cs.c.State.Health; h != nil {
			h.Status = container.HealthUnhealthy
		}
	}
}

// healthMonitor probes until stop closes.
func (d *Daemon) healthMonitor(cs *ctrState, hc *container.HealthConfig, started time.Time, stop <-chan struct{}) {
	next := func() time.Duration {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		status := ""
		if h := cs.c.State.Health; h != nil {
			status = h.Status
		}
		return hc.NextProbe(time.Since(started), status)
	}
	timer := time.NewTimer(next())
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		cs.mu.Lock()
		paused := cs.c.Paused()
		cs.mu.Unlock()
		if paused {
			// An exec into frozen processes would hang: the check waits
			// for docker unpause, as moby stops its monitor meanwhile.
			timer.Reset(next())
			continue
		}
		r, ok := d.probe(cs, hc, stop)
		if !ok {
			return
		}
		cs.mu.Lock()
		select {
		case <-stop: // stopped while it waited for the lock
			cs.mu.Unlock()
			return
		default:
		}
		if h := cs.c.State.Health; h != nil && h.Record(r, hc, started) {
			d.containerEvent(cs.c, "health_status: "+h.Status, nil)
		}
		cs.mu.Unlock()
		timer.Reset(next())
	}
}

// probe runs the health check once, as moby's cmdProbe: output kept up
// to container.HealthOutputMax, the process killed past the timeout
// (exit code -1, "Health check exceeded timeout"). ok is false when stop
// closed first (the probe is killed and no result kept).
func (d *Daemon) probe(cs *ctrState, hc *container.HealthConfig, stop <-chan struct{}) (r container.HealthResult, ok bool) {
	r.Start = time.Now()
	var mu sync.Mutex // guards pidfd, dead and prepared
	pidfd, dead := -1, false
	// For the metrics, as moby counts its probes: each one, those that
	// could not run (an error, not a failing check), and how long the
	// ones that ran took to start.
	prepared, errored := time.Duration(-1), false
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		d.metrics.healthCheck(prepared, errored)
	}()
	failed := func(err error) (container.HealthResult, bool) {
		mu.Lock()
		errored = true
		mu.Unlock()
		r.End, r.ExitCode, r.Output = time.Now(), -1, err.Error()
		return r, true
	}
	cs.mu.Lock()
	id, user, dir, env, shell := cs.c.ID, cs.c.Config.User, cs.c.Config.WorkingDir, cs.c.Config.Env, cs.c.Config.Shell
	cs.mu.Unlock()
	links, err := d.linksAtStart(cs, true)
	if err != nil {
		return failed(err)
	}
	out := &capbuf.Buffer{Max: container.HealthOutputMax}
	spec := runtime.ExecSpec{
		Args: hc.Probe(shell), BaseEnv: append(slices.Clone(links.env), env...), User: user, Cwd: dir, Stdout: out, Stderr: out,
		OnStart: func(pid int, _ func(h, w uint) error) {
			// A pidfd, taken while the process cannot have been reaped
			// (Exec reaps it only after this), kills the probe and never
			// a process that took its PID.
			mu.Lock()
			prepared = time.Since(r.Start)
			mu.Unlock()
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				mu.Lock()
				pidfd = fd
				if dead { // timed out or stopped before it started
					_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				}
				mu.Unlock()
			}
		},
	}
	// As moby's probes, which are execs: exec_create, exec_start, and
	// exec_die with the exit code once a probe that ran has ended.
	execID := network.NewID()
	d.execEvent(id, "exec_create: "+execLine(spec.Args), execID, nil)
	d.execEvent(id, "exec_start: "+execLine(spec.Args), execID, nil)
	done := make(chan error, 1)
	code := 0
	go func() {
		c, err := d.runtime.Exec(context.Background(), id, spec)
		if err == nil {
			d.execEvent(id, "exec_die", execID, map[string]string{"exitCode": strconv.Itoa(c)})
		}
		code = c
		done <- err
	}()
	kill := func() {
		mu.Lock()
		dead = true
		if pidfd >= 0 {
			_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		}
		mu.Unlock()
		<-done
	}
	defer func() {
		mu.Lock()
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		mu.Unlock()
	}()
	timeout := hc.ProbeTimeout()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return failed(err)
		}
		r.End, r.ExitCode, r.Output = time.Now(), code, out.String()
		return r, true
	case <-timer.C:
		kill()
		msg := fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		if o := out.String(); o != "" {
			msg += ": " + o
		}
		r.End, r.ExitCode, r.Output = time.Now(), -1, msg
		return r, true
	case <-stop:
		kill()
		return r, false
	}
}
