package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
)

// Start mounts the container's overlay, writes its bundle and starts it
// detached under runc. Its stdout and stderr go straight to the log files
// (see LogPaths). On failure everything Start made is removed again, except
// a data directory that existed before (a restart keeps its upper layer).
func (r *Runtime) Start(ctx context.Context, s Spec) (p Process, err error) {
	if err := validateSpec(s); err != nil {
		return Process{}, err
	}
	// Before the clean-up below is armed: it would kill the running container.
	if err := r.clearStale(s.ID); err != nil {
		return Process{}, err
	}
	_, statErr := os.Stat(r.dataDir(s.ID))
	freshData := errors.Is(statErr, os.ErrNotExist)
	defer func() {
		if err == nil {
			return
		}
		undo := r.Release(s.ID)
		if freshData {
			undo = errors.Join(undo, removeAllIfExists(r.dataDir(s.ID)))
		}
		if undo != nil {
			r.log.Warn("clean up after failed start", "container", s.ID, "err", undo)
		}
	}()
	if err := r.ensureOverlay(s.ID, s.RootfsDir); err != nil {
		return Process{}, err
	}
	if err := checkWorkdirIn(r.rootfs(s.ID), s.Cwd); err != nil {
		return Process{}, err
	}
	u, err := userIn(r.rootfs(s.ID), s.User, s.GroupAdd)
	if errdefs.Is(err, errdefs.KindInvalid) {
		return Process{}, err // the user's mistake, in moby's words as they are (its createSpec's)
	}
	if err != nil {
		return Process{}, fmt.Errorf("start container %q: %w", s.ID, err)
	}
	spec, err := ociSpec(s, u, r.hostFactsNow())
	if err != nil {
		return Process{}, fmt.Errorf("start container %q: %w", s.ID, err)
	}
	if err := writeJSON(filepath.Join(r.bundle(s.ID), "config.json"), spec); err != nil {
		return Process{}, err
	}
	// Beside the upper directory, which outlives the bundle: a release
	// whose cgroup was still busy tries it again later (CgroupPath).
	if err := os.WriteFile(filepath.Join(r.dataDir(s.ID), cgroupFile), []byte(spec.Linux.CgroupsPath), 0o600); err != nil {
		return Process{}, err
	}
	pid, err := r.runDetached(ctx, s)
	if err != nil {
		return Process{}, err // "runc run failed: ..."; the daemon says which container
	}
	return r.spawnedProcess(pid)
}

// spawnedProcess is the Process of pid, which runc just started: running,
// or already ended and reaped (a command that returns at once), when its
// exit record says when it started.
func (r *Runtime) spawnedProcess(pid int) (Process, error) {
	p, err := processOf(pid)
	if err == nil {
		return p, nil
	}
	if p, ok := r.exitedProcess(pid); ok {
		return p, nil
	}
	return Process{}, err
}

func validateSpec(s Spec) error {
	if err := checkID(s.ID); err != nil {
		return err
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return errdefs.Invalid("container %q: no command given", s.ID)
	}
	if s.Cwd != "" && !filepath.IsAbs(s.Cwd) {
		return errdefs.Invalid("container %q: the working directory %q is not an absolute path", s.ID, s.Cwd)
	}
	if st, err := os.Stat(s.RootfsDir); err != nil || !st.IsDir() {
		return errdefs.Invalid("container %q: image root filesystem %q is not a directory", s.ID, s.RootfsDir)
	}
	for dst, src := range s.Files {
		if !filepath.IsAbs(dst) || !filepath.IsAbs(src) {
			return errdefs.Invalid("container %q: file mount %q from %q needs absolute paths", s.ID, dst, src)
		}
	}
	return nil
}

// clearStale removes runc's record of an earlier run of id so that "runc
// run" can reuse the ID; a container that still runs is a conflict.
func (r *Runtime) clearStale(id string) error {
	if _, err := os.Stat(filepath.Join(r.cfg.StateDir, id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := r.runcAt(context.Background(), "state", id).Output()
	if err == nil {
		var st struct{ Status string }
		if json.Unmarshal(out, &st) == nil && (st.Status == "running" || st.Status == "paused") {
			return errdefs.Conflict("container %s is already running", id)
		}
	}
	return r.runcDelete(id)
}

// ensureOverlay mounts image lower + per-container upper at the bundle's
// rootfs; an overlay already mounted there is kept.
func (r *Runtime) ensureOverlay(id, lower string) error {
	upper, work := r.upperDir(id), filepath.Join(r.dataDir(id), "work")
	target := r.rootfs(id)
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %q: %w", d, err)
		}
	}
	// The upper directory's mode is the container's "/": 0755, as
	// overlay2's diff directory (also for containers made before this).
	if err := os.Chmod(upper, 0o755); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC {
		return nil
	}
	init := r.initLayer()
	for _, p := range []string{init, lower, upper, work} {
		// overlayfs options are separated by "," and lower layers by ":".
		if strings.ContainsAny(p, ",:") {
			return errdefs.Invalid("overlay path %q contains ',' or ':'", p)
		}
	}
	// The init layer over the image's, as Docker's <id>-init layer.
	// redirect_dir off, as most kernels default to (and with it
	// metacopy): a directory of the image's renamed in the container is
	// then copied (rename(2) says EXDEV, and mv copies), so the upper
	// directory holds whole files and directories that docker diff and
	// docker commit read as they are (CommitTree).
	opts := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s,redirect_dir=off", init, lower, upper, work)
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay at %q: %w", target, err)
	}
	return nil
}

func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return fmt.Errorf("write %q: %w", p, err)
	}
	return nil
}

// runDetached runs "runc run --detach" and returns the init's PID. A
// non-tty container's stdout and stderr are pipes the reaper copies into
// its log (an older reaper's: our log files, which runc passes on); a
// tty container gets a terminal whose master we receive and copy into the
// log.
func (r *Runtime) runDetached(ctx context.Context, s Spec) (int, error) {
	b := r.bundle(s.ID)
	logPath, pidPath := filepath.Join(b, "runc.log"), filepath.Join(b, "init.pid")
	logged, err := r.reaper.copiesLogs()
	if err != nil {
		return 0, err
	}
	if logged {
		if err := r.convertLegacyLogs(s.ID); err != nil {
			return 0, err
		}
		// The log exists from the start (inspect's LogPath), before the
		// reaper's first write.
		f, err := os.OpenFile(r.JSONLogPath(s.ID), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o640)
		if err != nil {
			return 0, fmt.Errorf("create log: %w", err)
		}
		f.Close()
	}
	stdio, err := r.openStdio(s.ID, s.OpenStdin && !s.Tty, !logged)
	if err != nil {
		return 0, err
	}
	defer stdio.close()
	args := []string{"run", "--detach", "--pid-file", pidPath, "--bundle", b}
	var console *consoleSocket
	if s.Tty {
		if console, err = newConsoleSocket(); err != nil {
			return 0, err
		}
		defer console.Close()
		args = append(args, "--console-socket", console.path)
	}
	cmd := r.runcCmd(logPath, append(args, s.ID)...)
	var lg *reaperLog
	if !s.Tty {
		cmd.Stdin = stdio.stdin
		if logged {
			lg = &reaperLog{Path: r.JSONLogPath(s.ID), Lim: s.Log}
		} else {
			cmd.Stdout, cmd.Stderr = stdio.stdout, stdio.stderr
		}
	}
	if err := r.reaper.runLogged(ctx, cmd, lg); err != nil {
		if stdio.stderr != nil {
			// runc printed its error into the container's stderr log too: cut it off.
			stdio.stderr.Truncate(stdio.stderrSize)
		}
		stdio.closeHold()
		if msg := runcLogMessage(logPath); msg != "" {
			// In the words Docker passes on from containerd, after its
			// own "failed to create task for container: ".
			return 0, fmt.Errorf("failed to create shim task: OCI runtime create failed: %s: unknown", msg)
		}
		return 0, fmt.Errorf("runc run: %w", err)
	}
	pid, err := readPidFile(pidPath)
	if err != nil {
		return 0, errors.Join(err, stdio.closeHold())
	}
	cio := &containerIO{stdinHold: stdio.stdinHold}
	if console != nil {
		if cio.console, err = console.master(); err != nil {
			// The container runs but cannot be talked to: stop it, and reap
			// it, since it is our child now.
			if p, perr := processOf(pid); perr == nil {
				unix.Kill(pid, unix.SIGKILL)
				go func() { // for its exit record, which nobody reads
					_, _ = r.waitProcess(context.Background(), p)
					r.ForgetExit(p)
				}()
			}
			return 0, errors.Join(err, stdio.closeHold())
		}
		cio.copied = make(chan struct{})
		if logged {
			lf, err := openLogSink(r.JSONLogPath(s.ID), s.Log)
			if err != nil {
				return 0, errors.Join(err, stdio.closeHold())
			}
			r.mu.Lock()
			fan := r.ttyFanLocked(s.ID)
			r.mu.Unlock()
			copied := cio.copied
			go copyConsoleLines(cio.console, lf, fan, func() {
				r.endTTYFan(s.ID, fan)
				close(copied)
			})
		} else {
			stdout := stdio.stdout
			stdio.stdout = nil // now the copier's
			go copyConsole(cio.console, stdout, cio.copied)
		}
	}
	r.mu.Lock()
	r.ios[s.ID] = cio
	r.mu.Unlock()
	return pid, nil
}
