package testworld

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// stopForCleanup asks a daemon that is still running to remove every
// container, then stops it. Containers outlive a stopped daemon by design,
// so reap runs afterwards in any case.
func (w *World) stopForCleanup() {
	w.mu.Lock()
	d := w.daemon
	w.mu.Unlock()
	if d == nil || d.exited() {
		return
	}
	bin, env := d.bin, "BERTH_HOST=unix://"+w.Socket
	ps := []string{"ps", "-aq"}
	ids, _, code, err := w.tryRun(w.t, nil, "berth", ps, bin, ps, env)
	if err == nil && code == 0 && strings.TrimSpace(ids) != "" {
		rm := append([]string{"rm", "-f"}, strings.Fields(ids)...)
		w.tryRun(w.t, nil, "berth", rm, bin, rm, env)
	}
	d.stopWith(w.t)
}

// reap removes what a crashed or stopped daemon left running in the host:
// runc containers found under the world's roots, then any process still in
// the host's network namespace or in a sandbox bound under the exec-root.
func (w *World) reap() {
	for _, c := range w.runcStates() {
		w.t.Logf("reap runc container %q (root %s)", c.id, c.root)
		del := []string{"runc", "--root", c.root, "delete", "--force", c.id}
		args := append([]string{"-t", strconv.Itoa(w.holder.pid), "-m", "-n", "--"}, del...)
		if _, _, _, err := w.tryRun(w.t, nil, "host", del, "nsenter", args); err != nil {
			w.t.Errorf("remove runc container %q: %v", c.id, err)
		}
	}
	var cgroups []string
	for _, pid := range w.strayPIDs() {
		w.t.Logf("reap process %d (%s)", pid, cmdline(pid))
		cgroups = append(cgroups, runtimeCgroups(pid)...)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			w.t.Errorf("kill stray process %d: %v", pid, err)
		}
	}
	removeCgroups(w.t, cgroups)
}

// containerID is a container's cgroup name: its full ID.
var containerID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// runtimeCgroups lists the cgroup directories berth's runtime made for the
// container pid belongs to (…/berth/<id> in every hierarchy, or under a
// test's --cgroup-parent, /berth-…/<id>). A container
// whose runc state went with a killed daemon's world is killed directly, so
// nobody else would remove them.
func runtimeCgroups(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/berth") || !containerID.MatchString(filepath.Base(parts[2])) {
			continue
		}
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parts[2]))
		dirs = append(dirs, matches...)
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", parts[2])); err == nil {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", parts[2]))
		}
	}
	return dirs
}

// removeCgroups removes emptied cgroup directories, waiting a moment for
// the killed tasks to leave them.
func removeCgroups(t testing.TB, dirs []string) {
	deadline := time.Now().Add(2 * time.Second)
	for _, d := range dirs {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Logf("leave cgroup %s: %v", d, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

type runcState struct{ root, id string }

// runcStates finds <runc-root>/<id>/state.json at shallow depth under the
// data-root and exec-root, as the host's mount namespace shows them.
// Shallow, because container root filesystems are mounted deeper down.
func (w *World) runcStates() []runcState {
	var found []runcState
	for _, top := range []string{w.ExecRoot, w.DataRoot} {
		base := w.HostPath(top)
		filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // a vanished or unreadable dir is not ours to judge here
			}
			rel, _ := filepath.Rel(base, p)
			depth := len(strings.Split(rel, string(filepath.Separator)))
			if e.IsDir() && depth > 4 {
				return filepath.SkipDir
			}
			if e.Name() == "state.json" && !e.IsDir() {
				dir := filepath.Dir(p)
				root := filepath.Join(top, strings.TrimPrefix(filepath.Dir(dir), base))
				found = append(found, runcState{root: root, id: filepath.Base(dir)})
			}
			return nil
		})
	}
	return found
}

// strayPIDs lists processes, other than the holder and its unshare, whose
// network namespace is the host's or one of the sandboxes under the exec-root.
func (w *World) strayPIDs() []int {
	inodes := map[uint64]bool{}
	if ino, ok := nsInode(w.HostNS()); ok {
		inodes[ino] = true
	}
	netnsDir := w.HostPath(filepath.Join(w.ExecRoot, "netns"))
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if ino, ok := nsInode(filepath.Join(netnsDir, e.Name())); ok {
				inodes[ino] = true
			}
		}
	}
	keep := map[int]bool{w.holder.pid: true, w.holder.cmd.Process.Pid: true, os.Getpid(): true}
	procs, _ := os.ReadDir("/proc")
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || keep[pid] {
			continue
		}
		if ino, ok := nsInode(fmt.Sprintf("/proc/%d/ns/net", pid)); ok && inodes[ino] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// nsInode is the inode of a namespace file, if path is one.
func nsInode(path string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	var fsst unix.Statfs_t
	if err := unix.Statfs(path, &fsst); err != nil || fsst.Type != unix.NSFS_MAGIC {
		return 0, false
	}
	return st.Ino, true
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
