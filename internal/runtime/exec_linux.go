package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-net/berth/internal/errdefs"
)

// Exit codes docker reports for an exec that could not start.
const (
	exitCannotExecute = 126
	exitNotFound      = 127
)

// Exec runs a process in the running container and returns its exit code
// (128+N when killed by signal N). It returns only after the process was
// reaped and its output copied; EOF on e.Stdin closes the process's stdin
// while its output keeps streaming. If the process cannot start, Exec
// returns StartFailureCode's 126, 127 or 128 and runc's error; an error
// before runc was asked (the container not running) returns -1. If ctx ends
// first Exec returns ctx.Err() and the process runs on (as a docker exec
// whose client went away): its output is drained but no longer written to
// e.Stdout or e.Stderr, and it is reaped when it exits. A copy from
// e.Stdin that is still reading ends when that reader does.
func (r *Runtime) Exec(ctx context.Context, id string, e ExecSpec) (int, error) {
	proc, err := r.execProcess(id, e)
	if err != nil {
		return -1, err
	}
	dir, err := os.MkdirTemp(r.bundle(id), "exec-")
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", id, err)
	}
	defer os.RemoveAll(dir)
	if err := writeJSON(filepath.Join(dir, "process.json"), proc); err != nil {
		return -1, err
	}
	x, err := newExecIO(e)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", id, err)
	}
	pid, err := r.runExec(ctx, id, dir, x)
	if err != nil {
		x.abort()
		if strings.Contains(err.Error(), "cannot exec in a stopped") {
			return -1, errdefs.Conflict("container %s is not running", id)
		}
		if oe := (ociExecError{}); errors.As(err, &oe) {
			return StartFailureCode(err), err // as Docker words it, with no more
		}
		return StartFailureCode(err), fmt.Errorf("exec in container %q: %w", id, err)
	}
	p, err := r.spawnedProcess(pid)
	if err != nil {
		x.abort()
		return -1, fmt.Errorf("exec in container %q: %w", id, err)
	}
	x.startCopying(e)
	if e.OnStart != nil {
		e.OnStart(pid, x.resize)
	}
	result := make(chan execResult, 1)
	go func() {
		code, err := r.waitProcess(context.Background(), p)
		r.ForgetExit(p) // an exec's code is kept in memory only, as Docker's
		x.finish()
		result <- execResult{code, err}
	}()
	select {
	case res := <-result:
		return res.code, res.err
	case <-ctx.Done():
		x.detach()
		return -1, ctx.Err()
	}
}

type execResult struct {
	code int
	err  error
}

// execProcess builds process.json: the container's environment, working
// directory and limits, with the exec's own settings on top.
func (r *Runtime) execProcess(id string, e ExecSpec) (*specs.Process, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if len(e.Args) == 0 || e.Args[0] == "" {
		return nil, errdefs.Invalid("exec in container %s: no command given", id)
	}
	if e.Cwd != "" && !filepath.IsAbs(e.Cwd) {
		return nil, errdefs.Invalid("exec in container %s: the working directory %q is not an absolute path", id, e.Cwd)
	}
	b, err := os.ReadFile(filepath.Join(r.bundle(id), "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.Conflict("container %s is not running", id)
	}
	if err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", id, err)
	}
	var base specs.Spec
	if err := json.Unmarshal(b, &base); err != nil || base.Process == nil {
		return nil, fmt.Errorf("exec in container %q: bad config.json: %v", id, err)
	}
	u, err := userIn(r.rootfs(id), e.User, e.GroupAdd)
	if err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", id, err)
	}
	cwd := e.Cwd
	if cwd == "" {
		cwd = base.Process.Cwd
	}
	env := containerEnv(Spec{Env: append(slices.Clone(e.BaseEnv), e.Env...), Hostname: base.Hostname, Tty: e.Tty}, u)
	var caps []string
	if c := base.Process.Capabilities; c != nil {
		caps = c.Bounding
	}
	if e.Privileged {
		caps = effectiveCaps()
	}
	// The container's rlimits and OOM score, as moby's exec starts from
	// the container's process.
	proc := processSpec(e.Args, env, cwd, e.Tty, u, base.Process.Rlimits, caps)
	proc.OOMScoreAdj = base.Process.OOMScoreAdj
	proc.NoNewPrivileges = base.Process.NoNewPrivileges
	if e.Tty && e.ConsoleSize[0] > 0 && e.ConsoleSize[1] > 0 {
		proc.ConsoleSize = &specs.Box{Height: e.ConsoleSize[0], Width: e.ConsoleSize[1]}
	}
	return proc, nil
}

// runExec runs "runc exec --detach" through the reaper: runc exits once the
// process runs, and the process, re-parented to the reaper, is waited for
// through its exit record.
func (r *Runtime) runExec(ctx context.Context, id, dir string, x *execIO) (int, error) {
	logPath, pidPath := filepath.Join(dir, "runc.log"), filepath.Join(dir, "pid")
	args := []string{"exec", "--detach", "--pid-file", pidPath, "--process", filepath.Join(dir, "process.json")}
	var console *consoleSocket
	if x.tty {
		var err error
		if console, err = newConsoleSocket(); err != nil {
			return 0, err
		}
		defer console.Close()
		args = append(args, "--console-socket", console.path)
	}
	cmd := r.runcCmd(logPath, append(args, id)...)
	if !x.tty {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = x.childIn, x.childOut, x.childErr
	}
	err := r.reaper.run(ctx, cmd)
	x.closeChildEnds()
	if err != nil {
		if msg := runcLogMessage(logPath); msg != "" && !strings.Contains(msg, "cannot exec in a stopped") {
			return 0, ociExecError{msg}
		}
		return 0, runcError(logPath, fmt.Errorf("runc exec: %w", err))
	}
	if console != nil {
		if x.console, err = console.master(); err != nil {
			return 0, err
		}
	}
	return readPidFile(pidPath)
}

// StartFailureCode is the exit code docker reports for a container or
// exec whose process could not start (err from Start or Exec), as moby's
// setExitCodeFromError: 126 when the command cannot be run (permission,
// a directory), 127 when it or a path it needs is not there (not found,
// or a file where a directory goes: -w /etc/passwd), 128 otherwise.
func StartFailureCode(err error) int {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory"):
		return exitCannotExecute
	case strings.Contains(msg, "not a directory") || strings.Contains(msg, "executable file not found") ||
		strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "system cannot find the file specified"):
		return exitNotFound
	}
	return 128
}
