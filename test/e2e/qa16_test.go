package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestStopWhileRestartingSaysStop: docker stop of a container waiting for
// its restart policy's next try ends with moby's "stop" event, which
// Docker Compose's attached up waits for; without it, up never exited
// (QA round 16). No kill is logged: there is no process to signal.
func TestStopWhileRestartingSaysStop(t *testing.T) {
	w, _ := startWorld(t)
	since := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "date", "+%s"))
	mustDocker(t, w, "run", "-d", "--name", "flap", "--restart", "always", testworld.BusyboxImage, "sh", "-c", "sleep 0.3; exit 3")
	if !retried(func() bool {
		out, _, _ := w.Docker(t, "inspect", "-f", "{{.State.Status}}", "flap")
		return out == "restarting\n"
	}) {
		t.Fatal("flap never waited to restart")
	}
	mustDocker(t, w, "stop", "flap")
	until := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "sh", "-c", "sleep 1; date +%s"))
	out := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=flap", "--format", "{{.Action}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[len(lines)-1] != "stop" || strings.Contains(out, "kill") {
		t.Errorf("flap's events end %q, want a stop and no kill:\n%s", lines[len(lines)-1], out)
	}
	if got := dockerInspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "flap"); got != "exited 3" {
		t.Errorf("flap after the stop: %s", got)
	}
}
