package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-net/berth/internal/container"
)

// runcCmd builds a runc command that logs in JSON to logPath: runc's
// stderr is often the container's own (its log file, an exec's stream), so
// its errors are read back from there instead.
func (r *Runtime) runcCmd(logPath string, args ...string) *exec.Cmd {
	full := append([]string{"--root", r.cfg.StateDir, "--log", logPath, "--log-format", "json"}, args...)
	cmd := exec.Command(r.runc, full...)
	// Its own process group: a Ctrl-C meant for a foreground daemon must
	// not kill runc half-way through a start.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// runcAt builds a runc command on berth's state directory for runc's
// short-lived verbs (state, delete, ps, pause, resume), whose errors are
// on their own output.
func (r *Runtime) runcAt(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.runc, append([]string{"--root", r.cfg.StateDir}, args...)...)
}

// runcError wraps err with the last error runc logged to logPath.
func runcError(logPath string, err error) error {
	msg := runcLogMessage(logPath)
	if msg == "" {
		return err
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// runcLogMessage is the last error runc logged at logPath, or "".
func runcLogMessage(logPath string) string {
	b, _ := os.ReadFile(logPath)
	var msg string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == "error" && line.Msg != "" {
			msg = line.Msg
		}
	}
	return msg
}

// ociExecError is an exec runc could not start, in the words Docker
// passes on from containerd: "OCI runtime exec failed: <runc's
// message>: unknown" (the last word is the gRPC code's).
type ociExecError struct{ msg string }

func (e ociExecError) Error() string { return "OCI runtime exec failed: " + e.msg + ": unknown" }

// readPidFile reads the PID runc wrote.
func readPidFile(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %q: %q", p, b)
	}
	return pid, nil
}

// Pids lists the processes of container id (runc ps: the PIDs in its
// cgroup, as containerd's task.Pids), as the caller's PID namespace sees
// them.
func (r *Runtime) Pids(ctx context.Context, id string) ([]int, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	out, err := r.runcAt(ctx, "ps", "--format", "json", id).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%s: %w", strings.TrimSpace(string(ee.Stderr)), err)
		}
		return nil, fmt.Errorf("list the processes of container %s: %w", id, err)
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("list the processes of container %s: runc ps: %w", id, err)
	}
	return pids, nil
}

// Pause freezes container id's processes (runc pause: the cgroup freezer).
func (r *Runtime) Pause(id string) error { return r.runcSimple(id, "pause") }

// Resume thaws what Pause froze.
func (r *Runtime) Resume(id string) error { return r.runcSimple(id, "resume") }

// Update applies r's cgroup limits to running container id (docker
// update; runc update reads the resources from its stdin).
func (r *Runtime) Update(ctx context.Context, id string, res container.Resources) error {
	if err := checkID(id); err != nil {
		return err
	}
	b, err := json.Marshal(LinuxResources(res))
	if err != nil {
		return err
	}
	cmd := r.runcAt(ctx, "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("runc update: %s: %w", msg, err)
		}
		return fmt.Errorf("runc update: %w", err)
	}
	return nil
}

// runcSimple runs "runc verb id", with runc's message as the error.
func (r *Runtime) runcSimple(id, verb string) error {
	if err := checkID(id); err != nil {
		return err
	}
	out, err := r.runcAt(context.Background(), verb, id).CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("%s: %w", msg, err)
		}
		return err
	}
	return nil
}
