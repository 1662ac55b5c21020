package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestCgroupParent: the daemon's --cgroup-parent places the cgroups of
// containers that name none, a container's own --cgroup-parent its own
// (inspect shows what it gave); the OOM watch of a memory-limited one
// finds its cgroup there; the container's cgroup goes with it; a limit
// on the parent alone is an OOM kill of the container's (review of
// session 38: only containers with a limit of their own were watched).
func TestCgroupParent(t *testing.T) {
	const daemonParent, ownParent, limitedParent = "/berth-e2e-daemon-parent", "/berth-e2e-own-parent", "/berth-e2e-limited-parent"
	t.Cleanup(func() {
		for _, p := range []string{daemonParent, ownParent, limitedParent} {
			os.Remove(filepath.Join("/sys/fs/cgroup", p))
			hs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", p))
			for _, h := range hs {
				os.Remove(h)
			}
		}
	})
	w, d := startWorld(t, "--cgroup-parent", daemonParent)
	bb := testworld.BusyboxImage
	plain := strings.TrimSpace(mustDocker(t, w, "run", "-d", bb, "sleep", "600"))
	own := strings.TrimSpace(mustDocker(t, w, "run", "-d", "-m", "64m", "--cgroup-parent", ownParent, bb, "sleep", "600"))
	cgroupOf := func(id string) string {
		t.Helper()
		pid := dockerInspect(t, w, "{{.State.Pid}}", id)
		b, err := os.ReadFile("/proc/" + pid + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := cgroupOf(plain); !strings.Contains(got, daemonParent+"/"+plain) {
		t.Errorf("a container without --cgroup-parent is in\n%s\nwant under the daemon's %s", got, daemonParent)
	}
	if got := cgroupOf(own); !strings.Contains(got, ownParent+"/"+own) || strings.Contains(got, daemonParent) {
		t.Errorf("a container with --cgroup-parent is in\n%s\nwant under its own %s", got, ownParent)
	}
	wantInspected(t, w, own, map[string]string{"{{.HostConfig.CgroupParent}}": ownParent})
	wantInspected(t, w, plain, map[string]string{"{{.HostConfig.CgroupParent}}": ""})
	if log := daemonLog(t, d); strings.Contains(log, "OOM kills will not be seen") {
		t.Errorf("the OOM watch did not find the container's cgroup:\n%s", log)
	}
	mustDocker(t, w, "rm", "-f", own)
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", ownParent, own))
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ownParent, own)); err == nil {
		left = append(left, filepath.Join("/sys/fs/cgroup", ownParent, own))
	}
	if len(left) > 0 {
		t.Errorf("the removed container's cgroups are left: %v", left)
	}
	mustDocker(t, w, "rm", "-f", plain)

	// A memory limit on the parent alone (an administrator's) kills in a
	// container that has none: its OOM kill is seen all the same.
	limits := map[string]string{"memory.max": "16M", "memory.swap.max": "0"} // cgroup v2
	dir := filepath.Join("/sys/fs/cgroup", limitedParent)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil { // v1
		dir = filepath.Join("/sys/fs/cgroup/memory", limitedParent)
		limits = map[string]string{"memory.limit_in_bytes": "16M", "memory.memsw.limit_in_bytes": "16M"}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"memory.max", "memory.limit_in_bytes", "memory.swap.max", "memory.memsw.limit_in_bytes"} { // limit before swap
		if v, ok := limits[f]; ok {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil && !os.IsNotExist(err) {
				t.Fatalf("limit %s: %v", f, err)
			}
		}
	}
	_, _, code := w.Docker(t, "run", "--name", "hog", "--cgroup-parent", limitedParent, bb, "sh", "-c", "head -c 32m /dev/zero | tail")
	if got := dockerInspect(t, w, "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"); code != 137 || got != "true 137" {
		t.Errorf("a hog under a limited parent: exit %d, State.OOMKilled and ExitCode %q; want 137, true 137", code, got)
	}
	mustDocker(t, w, "rm", "hog")
}
