package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/nstest"
)

// oomCgroup makes a v1 memory cgroup of its own where a container's
// would be (named id), limited to limit bytes of memory and swap, and
// starts a busybox shell in it that runs script once the test writes a
// line to the returned pipe. The cgroup goes when the test ends (after
// the shell is gone).
func oomCgroup(t *testing.T, limit int64, script string) (cmd *exec.Cmd, in io.WriteCloser, id, dir string) {
	t.Helper()
	nstest.RequireRoot(t)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		nstest.Unavailable(t, "this test drives a cgroup v1 memory controller; the host has cgroup v2")
	}
	id = fmt.Sprintf("test-oom-%d-%d", os.Getpid(), time.Now().UnixNano())
	dir = filepath.Join(cgroupRoot, "memory", cgroupParent, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		nstest.Unavailable(t, "no memory cgroup: "+err.Error())
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
	for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil && f == "memory.limit_in_bytes" {
			t.Fatal(err)
		}
	}
	cmd = exec.Command("busybox", "sh", "-c", "read go; "+script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd, in, id, dir
}

// TestOOMWatchSeesAKill: the kernel's OOM kill of a process in the watched
// cgroup calls onOOM, Stop reports it, and the watch ends when the cgroup
// is removed.
func TestOOMWatchSeesAKill(t *testing.T) {
	// tail keeps a line without its newline whole: it grows until the
	// kernel kills it, the shell's only process (no orphan is left).
	cmd, in, id, _ := oomCgroup(t, 16<<20, "exec tail /dev/zero")
	var calls atomic.Int32
	w, err := WatchOOM(id, cgroupsPath("", id), true, func() { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "go\n")
	cmd.Wait()
	if !w.Stop() {
		t.Error("Stop: no OOM seen")
	}
	if calls.Load() == 0 {
		t.Error("onOOM was not called")
	}
}

// removeCgroup kills what is left in dir (the OOM killer's choice may
// leave the pipeline's other end) and removes it.
func removeCgroup(t *testing.T, dir string) {
	for range 100 {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if os.Remove(dir) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("cgroup %s left behind", dir)
}

// TestOOMWatchQuietRun: a run that stays under its limit is no OOM, also
// when the cgroup is removed before Stop (the eventfd's last signal).
func TestOOMWatchQuietRun(t *testing.T) {
	cmd, in, id, dir := oomCgroup(t, 64<<20, "head -c 1m /dev/zero | tail >/dev/null")
	w, err := WatchOOM(id, cgroupsPath("", id), true, func() { t.Error("onOOM called for a quiet run") })
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "go\n")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done: // the cgroup's removal ended the watch by itself
	case <-time.After(10 * time.Second):
		t.Error("the watch did not end with its cgroup")
	}
	if w.Stop() {
		t.Error("Stop: an OOM seen in a quiet run")
	}
}

// TestOOMWatchSeesAKillFromBeforeIt: a fresh run's watch that begins
// after the kernel's OOM kill (the kill came before runc returned) tells
// of it at once, from the cgroup's count; a watch of a re-adopted
// container (not fresh) takes the count as its start.
func TestOOMWatchSeesAKillFromBeforeIt(t *testing.T) {
	cmd, in, id, _ := oomCgroup(t, 16<<20, "exec tail /dev/zero")
	io.WriteString(in, "go\n")
	dir := filepath.Join(cgroupRoot, "memory", cgroupParent, id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
		if strings.Contains(string(b), "oom_kill ") && !strings.Contains(string(b), "oom_kill 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OOM kill counted: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	called := make(chan struct{}, 10)
	w, err := WatchOOM(id, cgroupsPath("", id), true, func() { called <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Error("a kill from before the watch was not told")
	}
	if !w.Stop() {
		t.Error("Stop: no OOM seen")
	}
	adopted, err := WatchOOM(id, cgroupsPath("", id), false, func() { t.Error("a re-adopted container's old kill told again") })
	if err != nil {
		t.Fatal(err)
	}
	if adopted.Stop() {
		t.Error("Stop of a re-adopted container's watch: an old kill counted")
	}
	_ = cmd
}

// TestWatchOOMWithoutACgroup: a container without a memory cgroup (gone,
// never made) cannot be watched.
func TestWatchOOMWithoutACgroup(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := WatchOOM("no-such-container-cgroup", "/berth/no-such-container-cgroup", true, nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WatchOOM without a cgroup: %v", err)
	}
}

// TestReleaseRemovesLeftCgroups: cgroups a runc killed half-way through a
// start left (no runc state names them) go with the container's release;
// one that still holds a process stays.
func TestReleaseRemovesLeftCgroups(t *testing.T) {
	rt := newTestRuntime(t)
	id := fmt.Sprintf("test-left-%d-%d", os.Getpid(), time.Now().UnixNano())
	var dirs []string
	for _, ctrl := range []string{"memory", "pids", "cpu"} {
		d := filepath.Join(cgroupRoot, ctrl, cgroupParent, id)
		if err := os.MkdirAll(d, 0o755); err != nil {
			nstest.Unavailable(t, "no cgroup v1 "+ctrl+" hierarchy: "+err.Error())
		}
		t.Cleanup(func() { os.Remove(d) })
		dirs = append(dirs, d)
	}
	busy := exec.Command("busybox", "sleep", "60")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Process.Kill(); busy.Wait() })
	if err := os.WriteFile(filepath.Join(dirs[1], "cgroup.procs"), []byte(strconv.Itoa(busy.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rt.Release(id); err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		_, err := os.Stat(d)
		if i == 1 && err != nil {
			t.Errorf("the cgroup holding a process went: %v", err)
		}
		if i != 1 && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left: %v", d, err)
		}
	}
	busy.Process.Kill()
	busy.Wait()
	removeCgroup(t, dirs[1])
}
