package testworld

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DockerBin is where the machines keep the real docker CLI that the
// compatibility tests drive; elsewhere docker is looked up on PATH.
const DockerBin = "/usr/local/bin/docker"

func dockerBinary() string {
	if _, err := os.Stat(DockerBin); err == nil {
		return DockerBin
	}
	if p, err := exec.LookPath("docker"); err == nil {
		return p
	}
	return DockerBin // so that the failure names the expected place
}

// commandLimit only stops a hung command from eating the whole go test
// timeout; commands in tests carry their own counts (ping -c, timeout N).
const commandLimit = 2 * time.Minute

// Berth runs the berth CLI against the world's daemon and returns what it
// printed and its exit code. The command and its output go to the test log.
func (w *World) Berth(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return w.run(t, nil, "berth", args, Binary(t), args, "BERTH_HOST=unix://"+w.Socket)
}

// BerthIn is Berth with stdin.
func (w *World) BerthIn(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return w.run(t, strings.NewReader(stdin), "berth", args, Binary(t), args, "BERTH_HOST=unix://"+w.Socket)
}

// MustBerth runs Berth and fails the test unless it exits 0; it returns stdout.
func (w *World) MustBerth(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := w.Berth(t, args...)
	if code != 0 {
		t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// Docker runs the real docker CLI against the world's daemon, with a
// config dir of its own so that nothing in ~/.docker matters.
func (w *World) Docker(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return w.run(t, nil, "docker", args, dockerBinary(), args,
		"DOCKER_HOST=unix://"+w.Socket,
		"DOCKER_CONFIG="+filepath.Join(w.Dir, "docker-config"),
		"DOCKER_CLI_HINTS=false", "DOCKER_BUILDKIT=0") // docker build: the legacy builder berth serves, even where buildx is installed
}

// DockerIn is Docker with stdin.
func (w *World) DockerIn(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return w.run(t, strings.NewReader(stdin), "docker", args, dockerBinary(), args, w.DockerEnv()...)
}

// DockerEnv is the environment (added to the test's own) under which
// Docker runs the CLI, for callers that start docker themselves (under a pty).
func (w *World) DockerEnv() []string {
	return []string{"DOCKER_HOST=unix://" + w.Socket,
		"DOCKER_CONFIG=" + filepath.Join(w.Dir, "docker-config"),
		"DOCKER_CLI_HINTS=false", "DOCKER_BUILDKIT=0"}
}

// DockerPath is the docker CLI the world runs.
func DockerPath() string { return dockerBinary() }

// InHost runs cmd in the host's mount and network namespaces, as the
// daemon sees them. nsenter, not `ip netns exec`: that remounts /sys and
// loses the cgroup mounts runc needs.
func (w *World) InHost(t testing.TB, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	args := append([]string{"-t", strconv.Itoa(w.holder.pid), "-m", "-n", "--"}, cmd...)
	return w.run(t, nil, "host", cmd, "nsenter", args)
}

// MustInHost runs InHost and fails the test unless cmd exits 0; it
// returns stdout.
func (w *World) MustInHost(t testing.TB, cmd ...string) string {
	t.Helper()
	out, errOut, code := w.InHost(t, cmd...)
	if code != 0 {
		t.Fatalf("host$ %s: exit %d\n%s%s", strings.Join(cmd, " "), code, out, errOut)
	}
	return out
}

// InHostWith is InHost with stdin and extra environment variables (a CNI
// plugin's call, say).
func (w *World) InHostWith(t testing.TB, stdin string, env []string, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	args := append([]string{"-t", strconv.Itoa(w.holder.pid), "-m", "-n", "--"}, cmd...)
	return w.run(t, strings.NewReader(stdin), "host", append(slices.Clone(env), cmd...), "nsenter", args, env...)
}

// InOutside runs cmd in the outside world's network namespace.
func (w *World) InOutside(t testing.TB, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	args := append([]string{"--net=" + w.OutsideNS, "--"}, cmd...)
	return w.run(t, nil, "outside", cmd, "nsenter", args)
}

// run executes bin and logs it as `label$ shown...`. A command that cannot
// be started at all fails the test and reads as exit code -1 (Errorf, not
// Fatalf: tests run commands from goroutines too, where FailNow must not
// be called); a non-zero exit is the caller's to judge.
func (w *World) run(t testing.TB, stdin io.Reader, label string, shown []string, bin string, args []string, env ...string) (string, string, int) {
	t.Helper()
	out, errOut, code, err := w.tryRun(t, stdin, label, shown, bin, args, env...)
	if err != nil {
		t.Errorf("%s$ %s: %v", label, strings.Join(shown, " "), err)
		return "", err.Error(), -1
	}
	return out, errOut, code
}

// tryRun is run without failing the test, for cleanup, which must go on
// to remove everything else whatever happens.
func (w *World) tryRun(t testing.TB, stdin io.Reader, label string, shown []string, bin string, args []string, env ...string) (string, string, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		return "", "", -1, err
	}
	if ctx.Err() != nil {
		t.Errorf("%s$ %s: still running after %v; killed", label, strings.Join(shown, " "), commandLimit)
	}
	t.Logf("%s$ %s\n%s%s(exit %d)", label, strings.Join(shown, " "), out.String(), errOut.String(), code)
	return out.String(), errOut.String(), code, nil
}
