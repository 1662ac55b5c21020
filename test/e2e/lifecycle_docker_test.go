package e2e

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// TestLifecycleAsDocker: container life-cycle corners where berth did
// otherwise than Docker 28 (a review against moby, session 31).
func TestLifecycleAsDocker(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage

	// docker restart of an --rm container restarts it: the exit its stop
	// causes is not the end (moby's HasBeenManuallyRestarted). It was
	// removed, the restart reporting success.
	mustDocker(t, w, "run", "-d", "--rm", "--name", "rr", bb, "sleep", "100")
	mustDocker(t, w, "restart", "-t", "1", "rr")
	if got := dockerInspect(t, w, "{{.State.Running}}", "rr"); got != "true" {
		t.Errorf("an --rm container after docker restart: running %q, want true", got)
	}
	mustDocker(t, w, "rm", "-f", "rr")

	// A docker stop whose client goes away still stops the container
	// (moby's stop ignores the request's cancellation); it stayed up.
	mustDocker(t, w, "run", "-d", "--name", "deaf", bb, "sh", "-c", "trap '' TERM; while :; do sleep 1; done")
	cmd := exec.Command("timeout", "-s", "INT", "1", testworld.DockerPath(), "stop", "-t", "2", "deaf")
	cmd.Env = append(os.Environ(), w.DockerEnv()...)
	_ = cmd.Run() // cut off after 1 s
	if !retried(func() bool { return dockerInspect(t, w, "{{.State.Status}}", "deaf") == "exited" }) {
		t.Errorf("a stop whose client went away: the container is %s", dockerInspect(t, w, "{{.State.Status}}", "deaf"))
	}

	// A next-exit wait is answered when the container is removed before
	// it runs again (it never answered).
	mustDocker(t, w, "create", "--name", "nx", bb, "true")
	answer := make(chan string, 1)
	go func() {
		c := apiClient(w)
		c.Timeout = 20 * time.Second
		resp, err := c.Post("http://berth/containers/nx/wait?condition=next-exit", "application/json", nil)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- string(b)
	}()
	time.Sleep(300 * time.Millisecond) // the wait is in
	mustDocker(t, w, "rm", "nx")
	select {
	case got := <-answer:
		if !strings.Contains(got, `"StatusCode":0`) {
			t.Errorf("next-exit wait of a removed container answered %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Error("next-exit wait of a removed container got no answer")
	}

	// A restart by the policy that fails keeps the last run's exit code
	// (moby's SetStopped), not the start's 127.
	mustDocker(t, w, "run", "-d", "--name", "gone", "--restart", "always", "--entrypoint", "/bin/sh", bb, "-c", "rm /bin/sh; exit 3")
	if !retried(func() bool { return dockerInspect(t, w, "{{.State.Status}}", "gone") == "exited" }) {
		t.Fatalf("the container whose restart fails: %s", dockerInspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "gone"))
	}
	if got := dockerInspect(t, w, "{{.State.ExitCode}}", "gone"); got != "3" {
		t.Errorf("exit code after a failed policy restart: %s, want the run's 3", got)
	}

	// During a restart back-off, a signal that is not the container's
	// STOPSIGNAL leaves the restart to happen (moby's killWithSignal).
	mustDocker(t, w, "run", "-d", "--name", "bo", "--stop-signal", "USR1", "--restart", "always", bb, "sh", "-c", "sleep 0.2; exit 1")
	if !retried(func() bool { return dockerInspect(t, w, "{{.State.Status}}", "bo") == "restarting" }) {
		t.Fatalf("bo never restarting: %s", dockerInspect(t, w, "{{.State.Status}}", "bo"))
	}
	before, _ := strconv.Atoi(dockerInspect(t, w, "{{.RestartCount}}", "bo"))
	mustDocker(t, w, "kill", "-s", "HUP", "bo")
	if !retried(func() bool {
		n, _ := strconv.Atoi(dockerInspect(t, w, "{{.RestartCount}}", "bo"))
		return n > before
	}) {
		t.Errorf("a HUP during the back-off of a USR1-stopped container called its restart off: %s", dockerInspect(t, w, "{{.State.Status}} {{.RestartCount}}", "bo"))
	}
	mustDocker(t, w, "rm", "-f", "bo", "gone", "deaf")
}
