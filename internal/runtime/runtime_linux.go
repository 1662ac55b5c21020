package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
)

// Config says where the runtime keeps its files.
type Config struct {
	StateDir  string // runc --root, e.g. <exec-root>/runc
	BundleDir string // <exec-root>/containers: per container config.json and the overlay mountpoint rootfs/
	DataDir   string // <data-root>/containers: per container overlay upper/ work/ and the log files
	ReaperDir string // <exec-root>/reaper: the reaper's socket, lock, log and exit records
	Runc      string // "" = "runc" from PATH
	Log       *slog.Logger
	// Recorded, when set, says whether a container is still the
	// daemon's: one whose data directory a crash left in the trash
	// (DeleteLater) goes back at New if it is, as its removal did not
	// finish; without it, or if not, the trash is emptied.
	Recorded func(id string) bool
}

// Runtime starts and tracks containers under runc.
type Runtime struct {
	cfg  Config
	runc string
	log  *slog.Logger

	// nofile is the containers' open files limit: Docker's, unless the
	// daemon's own hard limit is lower and it lacks CAP_SYS_RESOURCE to raise it.
	nofile uint64

	reaper *reaperClient

	mu  sync.Mutex
	ios map[string]*containerIO // by container ID, for containers this process started
	tty map[string]*ttyHub      // by container ID: attached to a tty container's output

	rot logRotations // log rotation, and reads that must not overlap one
}

// Process identifies a container's init on the host.
type Process struct {
	Pid int
	// PidStart is field 22 of /proc/PID/stat (start time in clock ticks
	// after boot), to tell the process from a later one reusing its PID.
	PidStart uint64
}

// New makes the directories and connects to the reaper of ReaperDir,
// starting it if it does not run: the parent of the containers' processes
// (reaper_linux.go). Close lets it go.
func New(cfg Config) (*Runtime, error) {
	if cfg.StateDir == "" || cfg.BundleDir == "" || cfg.DataDir == "" || cfg.ReaperDir == "" {
		return nil, errors.New("runtime: StateDir, BundleDir, DataDir and ReaperDir are required")
	}
	// root's alone: the bundles hold each container's mounted root file
	// system, the data directory its writable layer (a container's root
	// can leave setuid-root programs there: CVE-2021-41091's class).
	for _, d := range []string{cfg.StateDir, cfg.BundleDir, cfg.DataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create runtime directory %q: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil { // an older berth's 0711
			return nil, fmt.Errorf("set the mode of %q: %w", d, err)
		}
	}
	// What a crash left in the trash (DeleteLater): back, or gone.
	if err := settleTrash(trashDirOf(cfg.DataDir), cfg.DataDir, cfg.Recorded); err != nil {
		return nil, err
	}
	runc := cfg.Runc
	if runc == "" {
		runc = "runc"
	}
	path, err := exec.LookPath(runc)
	if err != nil {
		return nil, fmt.Errorf("find runc %q (install the Debian package runc): %w", runc, err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A child subreaper: should the reaper this daemon started die, the
	// containers it was the parent of come to the daemon, which then
	// collects their exit codes itself (waitProcess), where init would
	// have taken them and their codes read 255 (an on-failure policy
	// restarted a clean exit). Only then: runc and its leftovers run
	// under the reaper, itself a subreaper.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("not a child subreaper: the exit codes of containers whose reaper dies will be lost", "err", err)
	}
	rc := &reaperClient{dir: cfg.ReaperDir, log: log}
	if err := rc.ensure(); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	r := &Runtime{cfg: cfg, runc: path, log: log, nofile: nofileLimit(), reaper: rc, ios: map[string]*containerIO{}}
	if err := r.ensureInitLayer(); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return r, nil
}

// Close lets go of the reaper: it stays while containers run (they are
// its children) and exits once none does. The containers run on.
func (r *Runtime) Close() { r.reaper.close() }

// nofileLimit is Docker's open files limit, lowered to the daemon's own hard
// limit unless the daemon may raise it (CAP_SYS_RESOURCE, which some
// sandboxed hosts withhold even from root).
func nofileLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Max >= maxNofile {
		return maxNofile
	}
	raised := unix.Rlimit{Cur: rl.Cur, Max: maxNofile}
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &raised, nil); err == nil {
		// Undo: the probe must not change the daemon itself.
		unix.Prlimit(0, unix.RLIMIT_NOFILE, &rl, nil)
		return maxNofile
	}
	return rl.Max
}

var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func checkID(id string) error {
	if !idRE.MatchString(id) {
		return errdefs.Invalid("invalid container id %q", id)
	}
	return nil
}

func (r *Runtime) bundle(id string) string  { return filepath.Join(r.cfg.BundleDir, id) }
func (r *Runtime) rootfs(id string) string  { return filepath.Join(r.cfg.BundleDir, id, "rootfs") }
func (r *Runtime) dataDir(id string) string { return filepath.Join(r.cfg.DataDir, id) }

// upperDir is the overlay upper directory of container id: what it
// wrote to its root file system (docker diff, ps -s).
func (r *Runtime) upperDir(id string) string  { return filepath.Join(r.cfg.DataDir, id, "upper") }
func (r *Runtime) stdinPath(id string) string { return filepath.Join(r.cfg.DataDir, id, "stdin") }

// JSONLogPath is the container's log, in json-file's format (jsonlog.go).
func (r *Runtime) JSONLogPath(id string) string {
	return filepath.Join(r.cfg.DataDir, id, jsonLogName(id))
}

// HasJSONLog says whether the container's json log exists (a start
// made it; an older berth's container has raw files until its next).
func (r *Runtime) HasJSONLog(id string) bool {
	js := r.JSONLogPath(id)
	return checkID(id) == nil && (fileExists(js) || fileExists(rotated(js, 1)))
}

// LogPaths are the files a container's stdout and stderr went to before
// berth kept json-file's format (and still go to when an older reaper
// starts it): raw output, no times.
func (r *Runtime) LogPaths(id string) (stdout, stderr string) {
	return filepath.Join(r.cfg.DataDir, id, "stdout.log"), filepath.Join(r.cfg.DataDir, id, "stderr.log")
}

// Alive reports whether p still runs: its PID exists, is not a zombie, and
// started when p did.
func (r *Runtime) Alive(p Process) bool {
	st, err := readStat(p.Pid)
	return err == nil && st.start == p.PidStart && st.state != 'Z' && st.state != 'X'
}

// Signal sends sig to the container's init. A process that is gone, or whose
// PID now belongs to another process, is not an error.
func (r *Runtime) Signal(id string, p Process, sig syscall.Signal) error {
	fd, err := openPidfd(p)
	if errors.Is(err, errGone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal container %q: %w", id, err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal container %q (pid %d) with %v: %w", id, p.Pid, sig, err)
	}
	return nil
}

// Release undoes Start but keeps the container's data (overlay upper layer
// and logs), so it can be started again: runc's record, the rootfs mount and
// the bundle go. It kills a process still running. Idempotent.
func (r *Runtime) Release(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	r.reaper.release(r.JSONLogPath(id))
	cg := r.CgroupPath(id) // from the bundle, before it goes
	err := errors.Join(
		r.dropIO(id),
		r.runcDelete(id),
		unmountAll(r.rootfs(id)),
		removeAllIfExists(r.bundle(id)),
	)
	removeEmptyCgroups(cg)
	return err
}

// cgroupFile, in a container's data directory, is the cgroup path of its
// last start.
const cgroupFile = "cgroup"

// CgroupPath is the cgroup path container id was last started in (under
// its --cgroup-parent, the daemon's, or berth's /berth): its bundle's
// linux.cgroupsPath while it has one, else what its last start recorded
// beside its upper directory (a release that found the cgroup busy, the
// bundle gone since), else berth's default (a container started before
// berth recorded it).
func (r *Runtime) CgroupPath(id string) string {
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	ok := func(p string) bool { return path.IsAbs(p) && path.Clean(p) == p && path.Base(p) == id }
	b, err := os.ReadFile(filepath.Join(r.bundle(id), "config.json"))
	if err == nil && json.Unmarshal(b, &spec) == nil && ok(spec.Linux.CgroupsPath) {
		return spec.Linux.CgroupsPath
	}
	if b, err := os.ReadFile(filepath.Join(r.dataDir(id), cgroupFile)); err == nil && ok(string(b)) {
		return string(b)
	}
	return cgroupsPath("", id)
}

// removeEmptyCgroups removes a container's cgroup directories (cg, its
// cgroup path) that are
// left, empty: a runc killed half-way through a start (its daemon died,
// and the reaper ended the spawn) made them but no state for runc delete
// to find. One that still has processes stays (rmdir refuses it).
//
// The hierarchies are listed once: a Glob of <root>/*/berth/<id> read
// every hierarchy's berth directory whole, every container's, at each
// start, exit and removal (3.4 ms with 460 containers, 40% of the
// daemon's CPU in a run and rm, growing with the host's containers).
func removeEmptyCgroups(cg string) {
	os.Remove(filepath.Join(cgroupRoot, cg)) // cgroup v2: one tree
	for _, h := range cgroupHierarchies() {
		os.Remove(filepath.Join(cgroupRoot, h, cg)) // ENOENT: not there; EBUSY: in use
	}
}

// cgroupHierarchies lists the directories under the cgroup root (the v1
// hierarchies), read once: mounts do not come and go under a daemon.
var cgroupHierarchies = sync.OnceValue(func() []string {
	ents, _ := os.ReadDir(cgroupRoot)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
})

// Delete removes everything of the container: what Release removes, then
// its data directory. Idempotent; it keeps going past errors.
func (r *Runtime) Delete(id string) error {
	t, err := r.DeleteLater(id)
	return errors.Join(err, t.Purge())
}

// Trashed is a container's data directory moved aside by DeleteLater.
// The zero value is nothing moved.
type Trashed struct {
	from, at string
}

// Purge deletes it; the caller runs it without its own locks.
func (t Trashed) Purge() error {
	if t.at == "" {
		return nil
	}
	return removeAllIfExists(t.at)
}

// Restore puts it back, for a removal that failed after it.
func (t Trashed) Restore() error {
	if t.at == "" || t.from == "" {
		return nil // nothing moved
	}
	if err := os.Rename(t.at, t.from); err != nil {
		return fmt.Errorf("restore %q: %w", t.from, err)
	}
	return nil
}

// DeleteLater is Delete, but the data directory (the container's
// writable layer and logs: thousands of files, seconds to delete) is only
// moved aside: the caller purges it once the container's record is gone,
// or restores it if that failed. A crash in between leaves it in the
// trash, which New settles (Config.Recorded).
func (r *Runtime) DeleteLater(id string) (t Trashed, err error) {
	if err := checkID(id); err != nil {
		return Trashed{}, err
	}
	err = r.Release(id)
	// Not under a rotation of its logs, which would write into the
	// directory as it goes.
	stdout, stderr := r.LogPaths(id)
	for _, lr := range []*logRotation{r.rot.of(stdout), r.rot.of(stderr)} {
		lr.mu.Lock()
		defer lr.mu.Unlock()
	}
	defer r.rot.forget(stdout, stderr)
	trash := filepath.Join(r.trashDir(), id)
	if rerr := os.Rename(r.dataDir(id), trash); errors.Is(rerr, os.ErrNotExist) {
		return Trashed{}, err
	} else if rerr != nil {
		// No trash (another file system?): deleted in place by the
		// purge, once the record is gone; nothing to restore.
		return Trashed{at: r.dataDir(id)}, err
	}
	return Trashed{from: r.dataDir(id), at: trash}, err
}

// trashDir holds the data directories of deleted containers until their
// purge: beside DataDir, on its file system, so that a rename moves them.
func (r *Runtime) trashDir() string { return trashDirOf(r.cfg.DataDir) }

func trashDirOf(dataDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(dataDir)), "containers-trash")
}

// settleTrash empties the trash, or makes it; a directory in it of a
// container recorded says (a removal a crash cut short between the move
// and the record's delete) goes back to dataDir instead: the container
// is still listed, and must start again with its files.
func settleTrash(trash, dataDir string, recorded func(id string) bool) error {
	if recorded != nil {
		ents, _ := os.ReadDir(trash)
		for _, e := range ents {
			id := e.Name()
			if checkID(id) != nil || !recorded(id) {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dataDir, id)); errors.Is(err, os.ErrNotExist) {
				if err := os.Rename(filepath.Join(trash, id), filepath.Join(dataDir, id)); err != nil {
					return fmt.Errorf("restore %q: %w", id, err)
				}
			}
		}
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("empty %q: %w", trash, err)
	}
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return fmt.Errorf("create runtime directory %q: %w", trash, err)
	}
	return nil
}

// runcDelete removes runc's record of id, killing the process if it runs.
// Without a state directory runc knows nothing of id, and a runc start-up
// (a tenth of a second on a slow host) is saved.
func (r *Runtime) runcDelete(id string) error {
	if _, err := os.Stat(filepath.Join(r.cfg.StateDir, id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := r.runcAt(context.Background(), "delete", "--force", id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("runc delete %q: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmountAll unmounts path until nothing is mounted there; not mounted or
// missing is fine. A busy mount is detached rather than left behind.
func unmountAll(path string) error {
	for range 8 {
		err := unix.Unmount(path, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(path, unix.MNT_DETACH)
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %q: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %q: still mounted", path)
}

func removeAllIfExists(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %q: %w", path, err)
	}
	return nil
}

// procStat is what berth needs of /proc/PID/stat.
type procStat struct {
	state byte
	start uint64
}

// readStat parses /proc/PID/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so the fields are
// counted after its last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed stat %q", s)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed start time in stat: %w", err)
	}
	return procStat{state: f[0][0], start: start}, nil
}

// processOf returns the Process of a running PID.
func processOf(pid int) (Process, error) {
	st, err := readStat(pid)
	if err != nil {
		return Process{}, fmt.Errorf("read start time of pid %d: %w", pid, err)
	}
	return Process{Pid: pid, PidStart: st.start}, nil
}
