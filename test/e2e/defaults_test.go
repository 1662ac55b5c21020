package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// TestContainerDefaults: dockerd's daemon options for what a container
// gets where its create says nothing (the CIS Docker Benchmark's
// no-new-privileges and default-ulimits among them) apply as Docker
// applies them, and the container's own options win: rlimits merged
// (inspect shows them merged), /dev/shm's size, the init, no new
// privileges unless --security-opt decides, the IPC mode; docker info
// lists no-new-privileges.
func TestContainerDefaults(t *testing.T) {
	w, _ := startWorld(t, "--default-ulimit", "nofile=1000:2000", "--default-ulimit", "nproc=500", "--default-shm-size", "32m",
		"--init", "--no-new-privileges", "--default-ipc-mode", "shareable", "--label", "env=prod", "--default-stop-timeout", "1")
	bb := testworld.BusyboxImage
	probe := `ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1 | awk '{print $2}'; grep NoNewPrivs /proc/self/status | tr -d '\t'; cat /proc/1/cmdline | tr '\0' ' ' | cut -d' ' -f1`
	out := mustDocker(t, w, "run", "--name", "plain", bb, "sh", "-c", probe)
	if got, want := strings.Fields(out), []string{"1000", "2000", "500", "32768", "NoNewPrivs:1", "/sbin/docker-init"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("defaults: %q, want %q", got, want)
	}
	wantInspected(t, w, "plain", map[string]string{
		"{{json .HostConfig.Ulimits}}": `[{"Name":"nofile","Hard":2000,"Soft":1000},{"Name":"nproc","Hard":500,"Soft":500}]`,
		"{{.HostConfig.ShmSize}}":      "33554432",
		"{{.HostConfig.IpcMode}}":      "shareable",
		"{{json .HostConfig.Init}}":    "null",
	})
	out = mustDocker(t, w, "run", "--name", "own", "--ulimit", "nofile=300:400", "--shm-size", "8m", "--init=false",
		"--security-opt", "no-new-privileges=false", "--ipc", "private", bb, "sh", "-c", probe)
	if got, want := strings.Fields(out), []string{"300", "400", "500", "8192", "NoNewPrivs:0", "sh"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the container's own: %q, want %q", got, want)
	}
	wantInspected(t, w, "own", map[string]string{
		"{{json .HostConfig.Ulimits}}": `[{"Name":"nofile","Hard":400,"Soft":300},{"Name":"nproc","Hard":500,"Soft":500}]`,
		"{{.HostConfig.IpcMode}}":      "private",
		"{{json .HostConfig.Init}}":    "false",
	})
	// No init in the host's PID namespace, by default as asked for
	// (moby's: an init only in a PID namespace of the container's own).
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--pid", "host", bb, "sh", "-c", "test -e /sbin/docker-init && echo mounted || echo none")); got != "none" {
		t.Errorf("--pid host with the daemon's --init: docker-init %s, want none", got)
	}
	if got := mustDocker(t, w, "info", "--format", "{{json .SecurityOptions}}"); !strings.Contains(got, `"name=no-new-privileges"`) {
		t.Errorf("docker info's SecurityOptions %s lack name=no-new-privileges", got)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "info", "--format", "{{json .Labels}}")); got != `["env=prod"]` {
		t.Errorf("docker info's Labels = %s, want the daemon's --label", got)
	}
	// A container that ignores SIGTERM is killed after the daemon's
	// default stop timeout (1 s here; Docker's 10 s would outlast the
	// 8 s this stop is given).
	mustDocker(t, w, "run", "-d", "--name", "stubborn", "--init=false", bb, "sh", "-c", "trap '' TERM; while true; do sleep 1; done")
	start := time.Now()
	mustDocker(t, w, "stop", "stubborn")
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("docker stop with --default-stop-timeout 1 took %v", took)
	}
	if got := dockerInspect(t, w, "{{.State.ExitCode}}", "stubborn"); got != "137" {
		t.Errorf("stubborn's exit code %s, want 137 (killed)", got)
	}
}

// wantInspected checks what docker inspect prints of name for each
// format.
func wantInspected(t *testing.T, w *testworld.World, name string, want map[string]string) {
	t.Helper()
	for format, v := range want {
		if got := dockerInspect(t, w, format, name); got != v {
			t.Errorf("%s: inspect %s = %s, want %s", name, format, got, v)
		}
	}
}
