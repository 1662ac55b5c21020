package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// nsOfSelf is this test process's namespace of kind ("ipc", "cgroup"…).
func nsOfSelf(t *testing.T, kind string) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDockerNamespaceModes: --pid, --ipc, --uts and --cgroupns as in
// Docker: the host's namespaces, another container's (its processes, its
// shareable /dev/shm), none, a cgroup namespace of its own; inspect's
// defaults and moby's refusals.
func TestDockerNamespaceModes(t *testing.T) {
	w, d := startWorld(t)
	bb := testworld.BusyboxImage
	runDockerSleeper(t, w, "app")
	cgroupns := "host" // Docker's default on cgroup v1, private on v2
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroupns = "private"
	}
	if got := dockerInspect(t, w, "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}} [{{.HostConfig.PidMode}}] [{{.HostConfig.UTSMode}}]", "app"); got != "private "+cgroupns+" [] []" {
		t.Errorf("inspect's defaults: %q", got)
	}
	// Another container's PID namespace: its processes are there.
	if out := mustDocker(t, w, "run", "--rm", "--pid", "container:app", bb, "ps"); !strings.Contains(out, "while true") {
		t.Errorf("ps with --pid container:app:\n%s", out)
	}
	if got := dockerInspect(t, w, "{{.HostConfig.PidMode}}", strings.TrimSpace(mustDocker(t, w, "create", "--pid", "container:app", bb, "true"))); !strings.HasPrefix(got, "container:") || len(got) != len("container:")+64 {
		t.Errorf("a donor named at create is recorded by its ID: %q", got)
	}
	// The host's PID namespace (not a --init: moby runs one only in a
	// namespace of the container's own).
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--pid", "host", "--init", bb, "readlink", "/proc/self/ns/pid")); got != nsOfSelf(t, "pid") {
		t.Errorf("--pid host: %q, want the host's %q", got, nsOfSelf(t, "pid"))
	}

	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--ipc", "host", bb, "readlink", "/proc/self/ns/ipc")); got != nsOfSelf(t, "ipc") {
		t.Errorf("--ipc host: %q, want the host's %q", got, nsOfSelf(t, "ipc"))
	}
	if out := runShell(t, w, []string{"--ipc", "none"}, "grep -c ' /dev/shm ' /proc/mounts || true"); out != "0" {
		t.Errorf("--ipc none has a /dev/shm: %q", out)
	}
	runDockerSleeper(t, w, "shared", "--ipc", "shareable")
	mustDocker(t, w, "exec", "shared", "sh", "-c", "echo from-donor > /dev/shm/note")
	if out := mustDocker(t, w, "run", "--rm", "--ipc", "container:shared", bb, "cat", "/dev/shm/note"); out != "from-donor\n" {
		t.Errorf("the donor's /dev/shm in a container joining its IPC namespace: %q", out)
	}
	// A joiner's /dev/shm is its donor's, for a joiner of it too (moby's ShmPath).
	runDockerSleeper(t, w, "j1", "--ipc", "container:shared")
	if out := mustDocker(t, w, "run", "--rm", "--ipc", "container:j1", bb, "cat", "/dev/shm/note"); out != "from-donor\n" {
		t.Errorf("the donor's /dev/shm through a joiner: %q", out)
	}
	mustDocker(t, w, "rm", "-f", "j1")
	_, errOut, code := w.Docker(t, "run", "--rm", "--ipc", "container:app", bb, "true")
	if code == 0 || !strings.Contains(errOut, "non-shareable IPC (hint: use IpcMode:shareable for the donor container)") {
		t.Errorf("joining a private IPC namespace: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "stop", "-t", "1", "shared")
	_, errOut, code = w.Docker(t, "run", "--rm", "--ipc", "container:shared", bb, "true")
	if code == 0 || !strings.Contains(errOut, "failed to join IPC namespace: container ") || !strings.Contains(errOut, " is not running") {
		t.Errorf("joining a stopped container's IPC namespace: exit %d, %q", code, errOut)
	}

	// A shareable container whose start fails leaves no tmpfs mounted.
	bad := strings.TrimSpace(mustDocker(t, w, "create", "--ipc", "shareable", bb, "/nonexistent"))
	if _, _, code := w.Docker(t, "start", bad); code == 0 {
		t.Error("a start of /nonexistent succeeded")
	}
	if mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d.Pid())); err != nil || strings.Contains(string(mi), bad+"/shm") {
		t.Errorf("the daemon's mounts after a failed start of a shareable container: %v\n%s", err, mi)
	}

	// A container in another's (or the host's) PID namespace is not the
	// first process there: what it leaves is killed at its exit, as
	// containerd's shim does, not waited for while it holds the output
	// (until the drain gave up, 10 s). The child left behind would print
	// after 2 s: had the run waited for the output, "late" would be in it.
	out, _, code := w.Docker(t, "run", "--rm", "--pid", "container:app", bb, "sh", "-c", "(sleep 2; echo late) & exit 3")
	if code != 3 || strings.Contains(out, "late") {
		t.Errorf("--pid container:app with a child left: exit %d, output %q; want 3 at the shell's exit, the child killed", code, out)
	}

	host, _ := os.Hostname()
	if out := mustDocker(t, w, "run", "--rm", "--uts", "host", bb, "hostname"); strings.TrimSpace(out) != host {
		t.Errorf("--uts host: hostname %q, want the host's %q", out, host)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--cgroupns", "private", bb, "readlink", "/proc/self/ns/cgroup")); got == nsOfSelf(t, "cgroup") {
		t.Errorf("--cgroupns private shares the host's cgroup namespace %q", got)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--uts", "host", "--hostname", "x"}, "conflicting options: hostname and the UTS mode"},
		{[]string{"--ipc", "host", "--sysctl", "kernel.shmmax=1000"}, `sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace`},
		{[]string{"--pid", "container:nosuch"}, "failed to join PID namespace: No such container: nosuch"},
		{[]string{"--uts", "host", "--domainname", "example.org"}, "conflicting options: domainname and the UTS mode"},
	} {
		args := append(append([]string{"run", "--rm"}, c.args...), bb, "true")
		if _, errOut, code := w.Docker(t, args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}

// TestNamespaceJoinersComeBackAfterTheirDonor: at a daemon start the
// restart policy starts a container that joins another's PID or IPC
// namespace after that one (Docker's may lose the race and stay exited).
func TestNamespaceJoinersComeBackAfterTheirDonor(t *testing.T) {
	w, d := startWorld(t)
	// Named so that the joiner comes first in any order by name.
	runDockerSleeper(t, w, "zdonor", "--ipc", "shareable", "--restart", "always")
	runDockerSleeper(t, w, "ajoiner", "--pid", "container:zdonor", "--ipc", "container:zdonor", "--restart", "always")
	var pids []int
	for _, name := range []string{"zdonor", "ajoiner"} {
		var pid int
		fmt.Sscan(dockerInspect(t, w, "{{.State.Pid}}", name), &pid)
		pids = append(pids, pid)
	}
	d.Kill()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	w.Start(t)
	for _, name := range []string{"zdonor", "ajoiner"} {
		if got := dockerInspect(t, w, "{{.State.Status}} {{.State.Error}}", name); got != "running" {
			t.Errorf("%s after the daemon's start: %q", name, got)
		}
	}
}
