package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Exit records. The reaper (see reaper_linux.go) is the parent of every
// container init and exec'd process; when one of them exits it writes the
// exit down before it reaps the process, in a file of its own under
// <ReaperDir>/exits named "<pid>.<start>" (the start time as in Process),
// holding "<code> <unix nanoseconds>". Whoever waits for the process reads
// the record and removes it. The files outlive the daemon, so a daemon that
// restarts learns how the containers that exited meanwhile ended.

// Exit is a process's recorded end.
type Exit struct {
	Code int
	At   time.Time
}

func exitsDir(reaperDir string) string { return filepath.Join(reaperDir, "exits") }

func exitName(pid int, start uint64) string { return fmt.Sprintf("%d.%d", pid, start) }

// writeExit records the exit of pid (started at start) atomically: a
// reader sees the whole record or none.
func writeExit(dir string, pid int, start uint64, e Exit) error {
	name := filepath.Join(dir, exitName(pid, start))
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", e.Code, e.At.UnixNano()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// readExit reads the record of p, if there is one.
func readExit(dir string, p Process) (Exit, bool) {
	b, err := os.ReadFile(filepath.Join(dir, exitName(p.Pid, p.PidStart)))
	if err != nil {
		return Exit{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Exit{}, false
	}
	code, err1 := strconv.Atoi(f[0])
	at, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Exit{}, false
	}
	return Exit{Code: code, At: time.Unix(0, at).UTC()}, true
}

// LastExit returns how p ended if the reaper recorded it: a daemon that
// restarted learns the exit of a container that ended while no daemon
// ran. The record stays until ForgetExit (or SweepExits at a start), so
// that a daemon killed before it stored the exit reads it again. A p
// that is still a zombie may have its record on the way (the reaper
// writes it, then reaps): LastExit waits for it, zombieWait at most. A
// container that exited as its daemon restarted read "exit unknown"
// (255) without the wait, which an on-failure policy takes for a failure.
func (r *Runtime) LastExit(p Process) (Exit, bool) {
	dir := exitsDir(r.cfg.ReaperDir)
	delay, deadline := 100*time.Microsecond, time.Now().Add(zombieWait)
	for {
		if e, ok := readExit(dir, p); ok {
			return e, true
		}
		st, err := readStat(p.Pid)
		if err != nil || st.start != p.PidStart || st.state != 'Z' || time.Now().After(deadline) {
			return readExit(dir, p) // written just before the reap, perhaps
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// zombieWait bounds LastExit's wait for the record of a zombie: its
// parent may not be the reaper (a reaper that died left its children to
// the daemon), and then no record comes.
const zombieWait = 2 * time.Second

// ForgetExit removes the reaper's record of p's exit, once the caller has
// kept what it needs of it.
func (r *Runtime) ForgetExit(p Process) {
	os.Remove(filepath.Join(exitsDir(r.cfg.ReaperDir), exitName(p.Pid, p.PidStart)))
}

// exitedProcess finds the process that ran as pid and has already been
// reaped, from its exit record: runc reported the PID of a process that
// ended before it could be looked up (a container or exec whose command
// returns at once). Of several records for pid (a PID used again) the
// latest start wins.
func (r *Runtime) exitedProcess(pid int) (Process, bool) {
	names, _ := filepath.Glob(filepath.Join(exitsDir(r.cfg.ReaperDir), strconv.Itoa(pid)+".*"))
	var p Process
	found := false
	for _, n := range names {
		start, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(n), strconv.Itoa(pid)+"."), 10, 64)
		if err != nil {
			continue // a .tmp being written
		}
		if !found || start > p.PidStart {
			p, found = Process{Pid: pid, PidStart: start}, true
		}
	}
	return p, found
}

// awaitExit waits for the reaper's record of p, which exited (its pidfd
// said so) but is not our child. The reaper writes the record before it
// reaps the process, so while the process is still a zombie the record
// may yet come, and once the process is gone without a record none will:
// its parent was not the reaper (a container of a daemon from before the
// reaper, or a reaper that died), and the code is lost (-1).
func (r *Runtime) awaitExit(ctx context.Context, p Process) (int, error) {
	dir := exitsDir(r.cfg.ReaperDir)
	delay := 100 * time.Microsecond
	for {
		if e, ok := readExit(dir, p); ok {
			return e.Code, nil
		}
		if st, err := readStat(p.Pid); err != nil || st.start != p.PidStart {
			if e, ok := readExit(dir, p); ok { // written just before the reap
				return e.Code, nil
			}
			return -1, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// SweepExits removes the exit records of processes no one will wait for:
// every record but those of keep. The daemon calls it once it has
// re-adopted its containers (their records are kept for their monitors);
// what is left belongs to exec'd processes of an earlier daemon, or to
// containers removed since.
func (r *Runtime) SweepExits(keep []Process) error {
	dir := exitsDir(r.cfg.ReaperDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep exit records: %w", err)
	}
	kept := map[string]bool{}
	for _, p := range keep {
		kept[exitName(p.Pid, p.PidStart)] = true
	}
	var errs []error
	for _, e := range entries {
		if kept[e.Name()] || strings.HasSuffix(e.Name(), ".tmp") { // .tmp: being written now
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
