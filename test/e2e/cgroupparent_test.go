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
// finds its cgroup there; the container's cgroup goes with it.
func TestCgroupParent(t *testing.T) {
	const daemonParent, ownParent = "/berth-e2e-daemon-parent", "/berth-e2e-own-parent"
	t.Cleanup(func() {
		for _, p := range []string{daemonParent, ownParent} {
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
}
