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

// oomCgroup makes a v1 memory cgroup of its own under berth's, limited to
// limit bytes of memory and swap, and starts a busybox shell in it that
// runs script once the test writes a line to the returned pipe. The cgroup
// goes when the test ends (after the shell is gone).
func oomCgroup(t *testing.T, limit int64, script string) (*exec.Cmd, io.WriteCloser, string) {
	t.Helper()
	nstest.RequireRoot(t)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		nstest.Unavailable(t, "this test drives a cgroup v1 memory controller; the host has cgroup v2")
	}
	dir := filepath.Join(cgroupRoot, "memory", "berth", fmt.Sprintf("test-oom-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		nstest.Unavailable(t, "no memory cgroup: "+err.Error())
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
	for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil && f == "memory.limit_in_bytes" {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("busybox", "sh", "-c", "read go; "+script)
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
	return cmd, in, dir
}

// TestOOMWatchSeesAKill: the kernel's OOM kill of a process in the watched
// cgroup calls onOOM, Stop reports it, and the watch ends when the cgroup
// is removed.
func TestOOMWatchSeesAKill(t *testing.T) {
	cmd, in, _ := oomCgroup(t, 16<<20, "head -c 64m /dev/zero | tail; echo survived")
	var calls atomic.Int32
	w, err := WatchOOM(cmd.Process.Pid, func() { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "go\n")
	cmd.Wait() // the kernel picks its victim: tail, head or the shell
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
	cmd, in, dir := oomCgroup(t, 64<<20, "head -c 1m /dev/zero | tail >/dev/null")
	w, err := WatchOOM(cmd.Process.Pid, func() { t.Error("onOOM called for a quiet run") })
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

// TestWatchOOMOfAProcessGone: a process that is gone cannot be watched.
func TestWatchOOMOfAProcessGone(t *testing.T) {
	nstest.RequireRoot(t)
	cmd := exec.Command("busybox", "true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := WatchOOM(cmd.Process.Pid, nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WatchOOM of a gone process: %v", err)
	}
}
