package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestExecRunsAsTheContainersUser: an exec without -u runs as the
// container's --user, as moby's ContainerExecCreate does (it ran as root,
// whatever the container's user); -u still overrides it, and exec inspect
// shows the user the process got.
func TestExecRunsAsTheContainersUser(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "nobodys", "--user", "65534", "--workdir", "/tmp", testworld.BusyboxImage, "sleep", "600")
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "nobodys", "sh", "-c", "id -u; pwd")); got != "65534\n/tmp" {
		t.Errorf("exec without -u in a --user 65534 -w /tmp container: %q, want uid 65534 in /tmp", got)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "-u", "0", "nobodys", "id", "-u")); got != "0" {
		t.Errorf("exec -u 0: uid %q, want 0", got)
	}
}

// TestHostConfigShownAndNoHealthcheck: docker inspect shows the settings
// berth applies (--read-only, --cap-add, --cap-drop, --sysctl), as sent
// (the docker CLI sends capabilities as CAP_ names);
// --no-healthcheck (Compose's "healthcheck: disable: true") is accepted,
// since it asks for what berth does, while a real check is still refused.
func TestHostConfigShownAndNoHealthcheck(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "tight", "--read-only", "--cap-drop", "ALL", "--cap-add", "net_bind_service",
		"--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--no-healthcheck", testworld.BusyboxImage, "sleep", "600")
	got := dockerInspect(t, w, "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}} {{.HostConfig.Sysctls}}", "tight")
	if want := "true [CAP_NET_BIND_SERVICE] [ALL] map[net.ipv4.ip_unprivileged_port_start:0]"; got != want {
		t.Errorf("inspect: %q, want %q", got, want)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "tight", "sh", "-c", "grep CapEff /proc/self/status")); got != "CapEff:\t0000000000000400" {
		t.Errorf("the capabilities in force: %q, want only NET_BIND_SERVICE", got)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--health-cmd", "true", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "health checks") {
		t.Errorf("--health-cmd: exit %d, %q; want it refused by name", code, errOut)
	}
}
