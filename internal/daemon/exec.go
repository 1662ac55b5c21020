package daemon

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime"
)

// execState is one exec instance. Execs live in memory only, as in Docker.
type execState struct {
	mu       sync.Mutex
	info     api.ExecInfo
	baseEnv  []string // the container's variables for the process (runtime.ExecSpec.BaseEnv)
	groupAdd []string // the container's --group-add
	started  bool
	resize   func(h, w uint) error
	pendingH uint
	pendingW uint
	// ended is set, under d.mu, by the collection that first finds the
	// exec finished; the next one drops it (collectExecs).
	ended bool
}

// CreateExec records an exec for a running container.
func (d *Daemon) CreateExec(ctx context.Context, ctrRef string, cfg api.ExecConfig) (string, error) {
	cs, err := d.lookup(ctrRef)
	if err != nil {
		return "", err
	}
	cs.mu.Lock()
	running, id, status := cs.c.Running(), cs.c.ID, cs.c.Status()
	ctrUser, ctrDir, ctrEnv := cs.c.Config.User, cs.c.Config.WorkingDir, cs.c.Config.Env
	groupAdd := cs.c.Config.GroupAdd
	cs.mu.Unlock()
	if status == container.StatusRestarting {
		return "", errContainerIsRestarting(id)
	}
	if !running {
		return "", errdefs.Conflict("container %s is not running", id) // moby's errNotRunning: the ID
	}
	if status == container.StatusPaused {
		return "", errdefs.Conflict("Container %s is paused, unpause the container before exec", id)
	}
	if len(cfg.Cmd) == 0 {
		return "", errdefs.Invalid("no exec command specified")
	}
	// An -u the container cannot resolve fails here, as moby's
	// ContainerExecCreate looks it up before the exec starts.
	if cfg.User != "" {
		if err := d.runtime.CheckUser(id, cfg.User, groupAdd); err != nil {
			return "", err
		}
	}
	// As moby's ContainerExecCreate: an exec without -u runs as the
	// container's user (it ran as root, whatever --user the container
	// had), and without -w in its working directory.
	if cfg.User == "" {
		cfg.User = ctrUser
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ctrDir
	}
	// And its environment built afresh, as moby's ContainerExecCreate
	// does: the legacy links' variables as they are now (a child back on
	// another address, a link removed), then the container's own; no exec
	// while a child is down.
	links, err := d.linksAtStart(cs, true)
	if err != nil {
		return "", err
	}
	ex := &execState{info: api.ExecInfo{ID: network.NewID(), ContainerID: id, Config: cfg},
		baseEnv: append(slices.Clone(links.env), ctrEnv...), groupAdd: groupAdd}
	d.mu.Lock()
	d.execs[ex.info.ID] = ex
	d.mu.Unlock()
	d.execEvent(id, "exec_create: "+execLine(cfg.Cmd), ex.info.ID, nil)
	return ex.info.ID, nil
}

// execLine is an exec's command as moby's exec events name it: the
// entrypoint, a space, and the arguments (so "ls " for a bare ls).
func execLine(cmd []string) string {
	return cmd[0] + " " + strings.Join(cmd[1:], " ")
}

// execEvent logs action of exec execID on container ctrID, as moby's
// exec events: the container's attributes and the exec's ID.
func (d *Daemon) execEvent(ctrID, action, execID string, extra map[string]string) {
	cs, err := d.lookup(ctrID)
	if err != nil {
		return
	}
	cs.mu.Lock()
	c := cloneContainer(cs.c)
	cs.mu.Unlock()
	attrs := map[string]string{"execID": execID}
	maps.Copy(attrs, extra)
	d.containerEvent(c, action, attrs)
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
// reaped (so the exit code is final), or, detached, once it runs or has
// failed to start (see startDetached).
func (d *Daemon) StartExec(ctx context.Context, execID string, detach bool, s api.Streams) error {
	ex, err := d.lookupExec(execID)
	if err != nil {
		return err
	}
	ex.mu.Lock()
	ctrID := ex.info.ContainerID
	ex.mu.Unlock()
	if cs, err := d.lookup(ctrID); err == nil {
		cs.mu.Lock()
		paused := cs.c.Paused()
		cs.mu.Unlock()
		if paused { // moby's ContainerExecStart names the exec
			return errdefs.Conflict("Container %s is paused, unpause the container before exec", execID)
		}
	}
	ex.mu.Lock()
	if ex.started {
		ex.mu.Unlock()
		return errdefs.Conflict("exec %s has already been started", execID)
	}
	ex.started, ex.info.Running = true, true
	cfg, baseEnv, groupAdd := ex.info.Config, ex.baseEnv, ex.groupAdd
	ex.mu.Unlock()
	spec := runtime.ExecSpec{
		Args: cfg.Cmd, Env: cfg.Env, BaseEnv: baseEnv, Cwd: cfg.WorkingDir, User: cfg.User, Tty: cfg.Tty,
		ConsoleSize: cfg.ConsoleSize, Privileged: cfg.Privileged, GroupAdd: groupAdd,
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
	d.execEvent(ctrID, "exec_start: "+execLine(cfg.Cmd), execID, nil)
	run := func(ctx context.Context) error {
		code, err := d.runtime.Exec(ctx, ctrID, spec)
		ex.mu.Lock()
		ex.info.Running = false
		// A process that could not start has the runtime's code for it
		// (moby's setExitCodeFromError); one never asked for (the
		// container stopped since the create) has none, as moby's
		// getExecConfig fails before the exec runs.
		if err == nil || code >= 0 {
			ex.info.ExitCode = &code
		}
		ex.mu.Unlock()
		if err == nil { // a process that ran (moby has no exec_die for one that did not start)
			d.execEvent(ctrID, "exec_die", execID, map[string]string{"exitCode": strconv.Itoa(code)})
		}
		return err
	}
	if detach {
		return d.startDetached(ctx, execID, &spec, run)
	}
	return run(ctx)
}

// startDetached runs a detached exec and returns once runc has started
// its process, or with the reason it could not start, as Docker does (its
// exec start answers a detached exec after the process runs, and returns
// a start failure to the client: `docker exec -d c nosuch` fails). The
// process then belongs to the daemon: neither the request's end nor the
// client's stops it. Once it runs, a later error (waiting for it) is only
// logged; its exit code is in the exec's inspect either way.
func (d *Daemon) startDetached(ctx context.Context, execID string, spec *runtime.ExecSpec, run func(context.Context) error) error {
	// The answer: nil from OnStart, or run's error if OnStart never came.
	// Exec calls OnStart before it returns, on run's goroutine, so ran
	// needs no lock.
	answer := make(chan error, 1)
	ran := false
	onStart := spec.OnStart
	spec.OnStart = func(pid int, resize func(h, w uint) error) {
		if onStart != nil {
			onStart(pid, resize)
		}
		ran = true
		answer <- nil
	}
	cmd := firstArg(spec.Args)
	go func() {
		err := run(context.Background())
		if !ran {
			answer <- startFailure(cmd, err)
			return
		}
		if err != nil {
			d.log.Warn("detached exec failed", "exec", execID[:12], "err", err)
		}
	}()
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		// The client left: the exec starts, or fails, unseen but for the log.
		go func() {
			if err := <-answer; err != nil {
				d.log.Warn("detached exec failed to start", "exec", execID[:12], "err", err)
			}
		}()
		return ctx.Err()
	}
}

// firstArg is the command of args, "" if there is none.
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// startFailure gives the error of a process that could not start Docker's
// kind: runc's own failure to run the command cmd (it quotes the command,
// as Go's exec errors do: `exec: "nosuch": executable file not found in
// $PATH`) is the request's fault, 400, as moby's translation of runtime
// start errors has it. Anything else, a host-side failure included, keeps
// its kind.
func startFailure(cmd string, err error) error {
	if err == nil || cmd == "" || errdefs.KindOf(err) != errdefs.KindUnknown {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "chdir to cwd") && strings.Contains(msg, "not a directory") {
		// exec -w /etc/passwd: moby's setExitCodeFromError makes its
		// ENOTDIR the request's fault too.
		return errdefs.WithKind(errdefs.KindInvalid, err)
	}
	if !strings.Contains(msg, "exec: "+strconv.Quote(cmd)+":") {
		return err
	}
	for _, s := range []string{"executable file not found", "no such file or directory", "not a directory", "permission denied", "is a directory"} {
		if strings.Contains(msg, s) {
			return errdefs.WithKind(errdefs.KindInvalid, err)
		}
	}
	return err
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

// ContainerExecIDs are the execs of container id made and not ended,
// as moby's GetExecIDs lists its container's exec store (an exec leaves
// it when its process exits), sorted; nil without any.
func (d *Daemon) ContainerExecIDs(ctx context.Context, id string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for eid, ex := range d.execs {
		ex.mu.Lock()
		live := ex.info.ContainerID == id && (!ex.started || ex.info.Running)
		ex.mu.Unlock()
		if live {
			out = append(out, eid)
		}
	}
	slices.Sort(out)
	return out
}

// execGCEvery is how often finished execs are collected: moby's
// execCommandGC period. A finished exec stays inspectable (docker exec
// reads its exit code once its stream closes) for one to two periods.
const execGCEvery = 5 * time.Minute

// collectExecs drops the exec instances an earlier collection already
// found finished, and marks those finished since, as moby's
// execCommandGC: without it a container that runs on keeps every exec
// ever made in it (a script's `docker exec` every 10 s is 260,000 a
// month). Created execs never started stay until their container stops.
func (d *Daemon) collectExecs() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, ex := range d.execs {
		ex.mu.Lock()
		finished := ex.started && !ex.info.Running
		ex.mu.Unlock()
		switch {
		case !finished:
		case ex.ended:
			delete(d.execs, id)
		default:
			ex.ended = true
		}
	}
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
