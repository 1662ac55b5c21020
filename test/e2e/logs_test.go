package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// TestLogRotation: --log-opt max-size and max-file (Compose's logging:
// block) bound a container's log as json-file does: the live file and at
// most max-file - 1 rotated ones (stdout.log.1, .2); docker logs reads
// them as one stream, --tail across them, and a docker logs -f that runs
// through the rotations sees every line once, in order. inspect shows the
// options; other drivers and options berth would ignore are refused.
func TestLogRotation(t *testing.T) {
	w, _ := startWorld(t)
	// 12 bursts of 400 lines (~16 KB each), a rotation check (250 ms)
	// between bursts: the log passes 20k several times.
	const bursts, perBurst = 12, 400
	script := fmt.Sprintf(`i=0; b=0; while [ $b -lt %d ]; do j=0; while [ $j -lt %d ]; do i=$((i+1)); echo "line $i ........................"; j=$((j+1)); done; b=$((b+1)); sleep 0.6; done`, bursts, perBurst)
	id := strings.TrimSpace(mustDocker(t, w, "create", "--name", "chatty", "--log-opt", "max-size=20k", "--log-opt", "max-file=3", testworld.BusyboxImage, "sh", "-c", script))
	if got := dockerInspect(t, w, "{{json .HostConfig.LogConfig}}", "chatty"); got != `{"Type":"json-file","Config":{"max-file":"3","max-size":"20k"}}` {
		t.Errorf("HostConfig.LogConfig = %s", got)
	}
	mustDocker(t, w, "start", "chatty")
	follow := make(chan string, 1)
	go func() { // from the first burst on, through the rotations
		out, _, _ := w.Docker(t, "logs", "-f", "chatty")
		follow <- out
	}()
	if code := strings.TrimSpace(mustDocker(t, w, "wait", "chatty")); code != "0" {
		t.Fatalf("chatty exited %s", code)
	}
	time.Sleep(2 * logCheck) // the rotator's look at the last burst

	dir := w.HostPath(filepath.Join(w.DataRoot, "containers", id))
	var total int64
	for _, name := range []string{"stdout.log", "stdout.log.1", "stdout.log.2"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		total += fi.Size()
	}
	if _, err := os.Stat(filepath.Join(dir, "stdout.log.3")); !os.IsNotExist(err) {
		t.Errorf("max-file 3 left stdout.log.3 (%v)", err)
	}
	// Three files of at most max-size plus what one burst adds before the
	// next check; the whole output is 12 bursts.
	if limit := int64(3 * (20_000 + 2*16_500)); total > limit {
		t.Errorf("the log files hold %d bytes, more than %d", total, limit)
	}

	all := lines(mustDocker(t, w, "logs", "chatty"))
	last := bursts * perBurst
	first := checkConsecutive(t, "docker logs", all, last)
	if first == 1 {
		t.Errorf("docker logs still has the first line: nothing was rotated away")
	}
	if tail := lines(mustDocker(t, w, "logs", "--tail", "3", "chatty")); len(tail) != 3 || lineNumber(tail[2]) != last || lineNumber(tail[0]) != last-2 {
		t.Errorf("docker logs --tail 3: %q", tail)
	}
	select {
	case out := <-follow:
		if checkConsecutive(t, "docker logs -f through the rotations", lines(out), last) != 1 {
			t.Errorf("docker logs -f did not see the first lines")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("docker logs -f did not end when chatty exited")
	}

	for _, c := range []struct{ args, want string }{
		{"--log-driver syslog", `log driver "syslog" (--log-driver) is not supported by berth`},
		{"--log-opt compress=true --log-opt max-file=2 --log-opt max-size=1m", "log opt 'compress' is not supported by berth"},
		{"--log-opt max-size=0", "max-size must be a positive number"},
		{"--log-opt max-days=2", "unknown log opt 'max-days' for json-file log driver"},
	} {
		args := append(append([]string{"run", "--rm"}, strings.Fields(c.args)...), testworld.BusyboxImage, "true")
		if _, errOut, code := w.Docker(t, args...); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want exit 125 saying %q", strings.Join(args, " "), code, errOut, c.want)
		}
	}
}

// TestLogDrivers: --log-driver none keeps nothing for docker logs, which
// refuses as Docker does, while attach still shows the output and the
// files stay small; local takes its own options and defaults, and docker
// logs reads it.
func TestLogDrivers(t *testing.T) {
	w, _ := startWorld(t)
	if out := mustDocker(t, w, "run", "--rm", "--log-driver", "none", testworld.BusyboxImage, "echo", "attached"); strings.TrimSpace(out) != "attached" {
		t.Errorf("docker run --log-driver none (attached) printed %q, want the output", out)
	}
	// About 9.5 MB of output: once it is over, a rotation check has cut
	// the file back if it had passed 1 MiB.
	id := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--name", "quiet", "--log-driver", "none", testworld.BusyboxImage,
		"sh", "-c", `i=0; while [ $i -lt 100000 ]; do echo "line $i ...................................................................................."; i=$((i+1)); done; touch /tmp/finished; sleep 600`))
	if got := dockerInspect(t, w, "{{json .HostConfig.LogConfig}}", "quiet"); got != `{"Type":"none","Config":{}}` {
		t.Errorf("HostConfig.LogConfig = %s", got)
	}
	if _, errOut, code := w.Docker(t, "logs", "quiet"); code == 0 || !strings.Contains(errOut, "configured logging driver does not support reading") {
		t.Errorf("docker logs of a none container: exit %d, %q", code, errOut)
	}
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "quiet", "test", "-e", "/tmp/finished")
		return code == 0
	}) {
		t.Fatalf("quiet did not finish its output")
	}
	time.Sleep(3 * logCheck)
	dir := w.HostPath(filepath.Join(w.DataRoot, "containers", id))
	var total int64
	for _, name := range []string{"stdout.log", "stdout.log.1", "stdout.log.2"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			total += fi.Size()
		}
	}
	if total > 1<<20 {
		t.Errorf("none: the log files hold %d bytes after 9.5 MB of output, want at most 1 MiB", total)
	}

	mustDocker(t, w, "run", "-d", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=5m", testworld.BusyboxImage, "sh", "-c", "echo from-local; sleep 600")
	if got := dockerInspect(t, w, "{{json .HostConfig.LogConfig}}", "loc"); got != `{"Type":"local","Config":{"max-size":"5m"}}` {
		t.Errorf("local: HostConfig.LogConfig = %s", got)
	}
	if !retried(func() bool { out, _, _ := w.Docker(t, "logs", "loc"); return strings.TrimSpace(out) == "from-local" }) {
		t.Errorf("docker logs of a local container lacks its output")
	}
	for _, c := range []struct{ args, want string }{
		{"--log-driver local --log-opt max-file=1", "compression cannot be enabled when max file count is 1"},
		{"--log-driver local --log-opt tag=x", "unknown log opt 'tag' for log driver local"},
	} {
		args := append(append([]string{"run", "--rm"}, strings.Fields(c.args)...), testworld.BusyboxImage, "true")
		if _, errOut, code := w.Docker(t, args...); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want exit 125 saying %q", strings.Join(args, " "), code, errOut, c.want)
		}
	}
}

// logCheck is the daemon's rotation check interval (daemon.logRotateEvery).
const logCheck = 250 * time.Millisecond

// checkConsecutive checks that out is "line N …" lines numbered one after
// another up to last, and returns the first number.
func checkConsecutive(t *testing.T, what string, out []string, last int) int {
	t.Helper()
	if len(out) == 0 {
		t.Errorf("%s: no output", what)
		return 0
	}
	first := lineNumber(out[0])
	for i, l := range out {
		if n := lineNumber(l); n != first+i {
			t.Errorf("%s: line %d of the output is %q, want number %d (lost or repeated lines)", what, i, l, first+i)
			return first
		}
	}
	if got := lineNumber(out[len(out)-1]); got != last {
		t.Errorf("%s: ends at line %d, want %d", what, got, last)
	}
	return first
}

func lineNumber(l string) int {
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "line" {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return n
}
