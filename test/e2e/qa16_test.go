package e2e

import (
	"fmt"
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
	// Caught waiting after its fourth exit: the next try is 1.6 s away
	// (Docker's delays double from 100 ms), time enough for the stop to
	// land in the wait; after the first exit, 100 ms was not, on a slow
	// VM (the restart came first and the stop killed it).
	if !retried(func() bool {
		out, _, _ := w.Docker(t, "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "flap")
		var status string
		var count int
		fmt.Sscanf(out, "%s %d", &status, &count)
		return status == "restarting" && count >= 4
	}) {
		t.Fatal("flap never waited to restart a fifth time")
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
