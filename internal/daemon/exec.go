package daemon

import (
	"context"
	"sync"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime"
)

// execState is one exec instance. Execs live in memory only, as in Docker.
type execState struct {
	mu       sync.Mutex
	info     api.ExecInfo
	started  bool
	resize   func(h, w uint) error
	pendingH uint
	pendingW uint
}

// CreateExec records an exec for a running container.
func (d *Daemon) CreateExec(ctx context.Context, ctrRef string, cfg api.ExecConfig) (string, error) {
	cs, err := d.lookup(ctrRef)
	if err != nil {
		return "", err
	}
	cs.mu.Lock()
	running, id, name := cs.c.Running(), cs.c.ID, cs.c.Name
	cs.mu.Unlock()
	if !running {
		return "", errdefs.Conflict("container %s is not running", name)
	}
	if len(cfg.Cmd) == 0 {
		return "", errdefs.Invalid("no exec command specified")
	}
	ex := &execState{info: api.ExecInfo{ID: network.NewID(), ContainerID: id, Config: cfg}}
	d.mu.Lock()
	d.execs[ex.info.ID] = ex
	d.mu.Unlock()
	return ex.info.ID, nil
}

func (d *Daemon) lookupExec(id string) (*execState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ex, ok := d.execs[id]
	if !ok {
		return nil, errdefs.NotFound("No such exec instance: %s", id)
	}
	return ex, nil
}

// StartExec runs the exec'd process; it returns after the process was
// reaped (so the exit code is final), or at once when detached.
func (d *Daemon) StartExec(ctx context.Context, execID string, detach bool, s api.Streams) error {
	ex, err := d.lookupExec(execID)
	if err != nil {
		return err
	}
	ex.mu.Lock()
	if ex.started {
		ex.mu.Unlock()
		return errdefs.Conflict("exec %s has already been started", execID)
	}
	ex.started, ex.info.Running = true, true
	cfg, ctrID := ex.info.Config, ex.info.ContainerID
	ex.mu.Unlock()
	spec := runtime.ExecSpec{
		Args: cfg.Cmd, Env: cfg.Env, Cwd: cfg.WorkingDir, User: cfg.User, Tty: cfg.Tty,
		ConsoleSize: cfg.ConsoleSize,
		OnStart: func(pid int, resize func(h, w uint) error) {
			ex.mu.Lock()
			defer ex.mu.Unlock()
			ex.info.Pid, ex.resize = pid, resize
			if ex.pendingW > 0 && resize != nil {
				_ = resize(ex.pendingH, ex.pendingW)
			}
		},
	}
	if !detach {
		if cfg.AttachStdin {
			spec.Stdin = s.Stdin
		}
		if cfg.AttachStdout || cfg.Tty {
			spec.Stdout = s.Stdout
		}
		if cfg.AttachStderr && !cfg.Tty {
			spec.Stderr = s.Stderr
		}
	}
	run := func(ctx context.Context) error {
		code, err := d.runtime.Exec(ctx, ctrID, spec)
		ex.mu.Lock()
		defer ex.mu.Unlock()
		ex.info.Running = false
		if err != nil {
			code = runtime.StartFailureCode(err)
		}
		ex.info.ExitCode = &code
		return err
	}
	if detach {
		go func() {
			if err := run(context.Background()); err != nil {
				d.log.Warn("detached exec failed", "exec", execID[:12], "err", err)
			}
		}()
		return nil
	}
	return run(ctx)
}

// ResizeExec resizes the exec's tty (or remembers the size until it starts).
func (d *Daemon) ResizeExec(ctx context.Context, execID string, height, width uint) error {
	ex, err := d.lookupExec(execID)
	if err != nil {
		return err
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.resize == nil {
		ex.pendingH, ex.pendingW = height, width
		return nil
	}
	return ex.resize(height, width)
}

// InspectExec reports an exec's state and exit code.
func (d *Daemon) InspectExec(ctx context.Context, execID string) (api.ExecInfo, error) {
	ex, err := d.lookupExec(execID)
	if err != nil {
		return api.ExecInfo{}, err
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	info := ex.info
	if info.ExitCode != nil {
		c := *info.ExitCode
		info.ExitCode = &c
	}
	return info, nil
}

// forgetExecs drops the finished exec instances of a container that
// stopped; running ones are kept until they end (their exit code is read
// after the stream closes).
func (d *Daemon) forgetExecs(containerID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, ex := range d.execs {
		ex.mu.Lock()
		done := ex.info.ContainerID == containerID && !ex.info.Running
		ex.mu.Unlock()
		if done {
			delete(d.execs, id)
		}
	}
}
