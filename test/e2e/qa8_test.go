package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/bench/reliability"
	"github.com/berth-net/berth/internal/testworld"
)

// QA round 8's findings, through the docker CLI.

// TestEntrypointReset: an empty --entrypoint drops the entrypoint, as moby's
// mergeAndVerifyConfig, so the command runs on its own.
func TestEntrypointReset(t *testing.T) {
	w, _ := startWorld(t)
	if out := mustDocker(t, w, "run", "--rm", "--entrypoint", "", testworld.BusyboxImage, "echo", "c"); strings.TrimSpace(out) != "c" {
		t.Errorf("run --entrypoint '' busybox echo c printed %q", out)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--entrypoint", "", testworld.BusyboxImage); code != 125 || !strings.Contains(errOut, "no command specified") {
		t.Errorf("run --entrypoint '' with no command: exit %d, %q", code, errOut)
	}
}

// TestPrunes: docker container prune removes the stopped containers its
// filters select, docker volume ls and prune answer with nothing (berth
// has no volumes: Compose's down -p lists them first), and docker system
// prune gets through containers and networks before it reaches what
// berth does not have.
func TestPrunes(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "create", "--name", "keepme", "--label", "keep=1", testworld.BusyboxImage, "true")
	// old writes 100 KiB into its layer: what the prune reclaims (QA
	// round 27: it said 0B).
	mustDocker(t, w, "run", "--name", "old", testworld.BusyboxImage, "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=100")
	mustDocker(t, w, "run", "-d", "--name", "live", testworld.BusyboxImage, "sleep", "600")
	out := mustDocker(t, w, "container", "prune", "-f", "--filter", "label!=keep")
	oldID := dockerInspect(t, w, "{{.Id}}", "keepme")
	if !strings.Contains(out, "Deleted Containers:") || strings.Contains(out, oldID) || !strings.Contains(out, "Total reclaimed space: 102.4kB") {
		t.Errorf("container prune --filter label!=keep:\n%s\nwant old deleted, keepme kept, 102.4kB reclaimed", out)
	}
	if _, _, code := w.Docker(t, "inspect", "old"); code == 0 {
		t.Errorf("old is still there after the prune")
	}
	for _, name := range []string{"keepme", "live"} {
		if _, _, code := w.Docker(t, "inspect", name); code != 0 {
			t.Errorf("%s was pruned", name)
		}
	}
	if out := mustDocker(t, w, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("docker volume ls: %q", out)
	}
	if out := mustDocker(t, w, "volume", "prune", "-f"); !strings.Contains(out, "Total reclaimed space: 0B") {
		t.Errorf("docker volume prune: %q", out)
	}
	// An image no container uses goes with image prune -a, with its tag;
	// busybox, which containers use, stays.
	spare := filepath.Join(w.Dir, "spare.tar")
	writeTarOfOneFile(t, spare, "hello", "spare\n")
	mustDocker(t, w, "import", spare, "spare:v1")
	if out := mustDocker(t, w, "image", "prune", "-f"); !strings.Contains(out, "Total reclaimed space: 0B") {
		t.Errorf("image prune (dangling only, none): %q", out)
	}
	if out := mustDocker(t, w, "image", "prune", "-a", "-f"); !strings.Contains(out, "untagged: spare:v1") {
		t.Errorf("image prune -a: %q; want spare:v1 untagged", out)
	}
	mustDocker(t, w, "image", "inspect", testworld.BusyboxImage)
	mustDocker(t, w, "network", "create", "unused")
	if out := mustDocker(t, w, "system", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("docker system prune: %q", out)
	}
	if _, _, code := w.Docker(t, "inspect", "keepme"); code == 0 {
		t.Errorf("system prune left the stopped container keepme")
	}
	if _, _, code := w.Docker(t, "network", "inspect", "unused"); code == 0 {
		t.Errorf("system prune left the unused network")
	}
	if got := dockerInspect(t, w, "{{.State.Status}}", "live"); got != "running" {
		t.Errorf("live after the prunes: %q", got)
	}
}

// writeTarOfOneFile writes a tar holding one file, name, with content.
func writeTarOfOneFile(t *testing.T, path, name, content string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMobysWords: the answers QA round 8 found worded or decided
// otherwise than Docker 28's, through the docker CLI.
func TestMobysWords(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "talker", testworld.BusyboxImage, "sh", "-c", "echo one; echo two; sleep 600")
	if !retried(func() bool {
		out, _, _ := w.Docker(t, "logs", "--tail", "abc", "talker")
		return out == "one\ntwo\n"
	}) {
		t.Errorf("logs --tail abc: want every line, as moby reads a tail that is not a number")
	}
	if _, errOut, code := w.Docker(t, "kill", "-s", "FOO", "talker"); code == 0 || !strings.Contains(errOut, "invalid signal: FOO") {
		t.Errorf("kill -s FOO: exit %d, %q", code, errOut)
	}
	for _, name := range []string{"host", "bridge", "default"} {
		if _, errOut, code := w.Docker(t, "network", "create", name); code == 0 || !strings.Contains(errOut, "operation is not permitted on predefined "+name+" network") {
			t.Errorf("network create %s: exit %d, %q", name, code, errOut)
		}
	}
	// gw-priority is taken now (gateway_test.go), and the endpoint
	// options that name the interface (epopts_test.go); a name the kernel
	// would not take as given is refused before anything is made.
	if _, errOut, code := w.Docker(t, "run", "--rm", "--network", "name=bridge,driver-opt=com.docker.network.endpoint.ifname=foo%d", testworld.BusyboxImage, "true"); code != 125 || !strings.Contains(errOut, `"foo%d" is not a valid interface name`) {
		t.Errorf("run --network driver-opt ifname=foo%%d: exit %d, %q", code, errOut)
	}
	// An exec -u that the container cannot resolve fails at create, as
	// moby's ContainerExecCreate: the CLI exits 1 (not 126, a start's).
	if _, errOut, code := w.Docker(t, "exec", "-u", "nosuchuser", "talker", "true"); code != 1 || !strings.Contains(errOut, "unable to find user nosuchuser: no matching entries in passwd file") {
		t.Errorf("exec -u nosuchuser: exit %d, %q", code, errOut)
	}
	// Errors that name a container by its ID, as moby's.
	talkerID := dockerInspect(t, w, "{{.Id}}", "talker")
	mustDocker(t, w, "network", "create", "lonely")
	if _, errOut, code := w.Docker(t, "network", "disconnect", "lonely", "talker"); code == 0 || !strings.Contains(errOut, "container "+talkerID+" is not connected to network lonely") {
		t.Errorf("disconnect from a network it is not on: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "create", "--name", "idle", testworld.BusyboxImage, "true")
	idleID := dockerInspect(t, w, "{{.Id}}", "idle")
	if _, errOut, code := w.Docker(t, "exec", "idle", "true"); code == 0 || !strings.Contains(errOut, "container "+idleID+" is not running") {
		t.Errorf("exec in a stopped container: exit %d, %q", code, errOut)
	}
	// A start that fails leaves moby's exit code: 127 for a missing command.
	mustDocker(t, w, "create", "--name", "nocmd", testworld.BusyboxImage, "no-such-command")
	if _, _, code := w.Docker(t, "start", "nocmd"); code == 0 {
		t.Errorf("start of a missing command succeeded")
	}
	if got := dockerInspect(t, w, "{{.State.ExitCode}}", "nocmd"); got != "127" {
		t.Errorf("ExitCode after a failed start: %s, want 127", got)
	}
	mustDocker(t, w, "rm", "nocmd")
	// ps filters moby accepts: berth's containers have no health check
	// (health none), are no swarm tasks and have no volumes.
	mustDocker(t, w, "run", "-d", "--name", "second", testworld.BusyboxImage, "sleep", "600")
	for _, c := range []struct{ filter, want string }{
		{"before=second", "talker"},
		{"since=talker", "second"},
		{"health=none", "second\ntalker"},
		{"health=healthy", ""},
		{"is-task=false", "second\ntalker"},
		{"volume=data", ""},
	} {
		if got := strings.TrimSpace(mustDocker(t, w, "ps", "--filter", c.filter, "--format", "{{.Names}}")); got != c.want {
			t.Errorf("ps --filter %s: %q, want %q", c.filter, got, c.want)
		}
	}
}

// TestHealthChecks: --health-cmd runs in the container as moby's health
// monitor does: starting, then healthy once the probe passes; unhealthy
// after --health-retries failures in a row; healthy again after one
// success; a probe past its timeout fails with moby's words. ps shows it
// in STATUS and filters on it, and each change is a health_status event
// (what Compose's depends_on: condition: service_healthy waits for).
func TestHealthChecks(t *testing.T) {
	w, _ := startWorld(t)
	since := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "date", "+%s"))
	mustDocker(t, w, "run", "-d", "--name", "doc", "--health-cmd", "test -e /tmp/ok && echo fine",
		"--health-interval", "100ms", "--health-retries", "2", testworld.BusyboxImage, "sleep", "600")
	status := func() string { return dockerInspect(t, w, "{{.State.Health.Status}}", "doc") }
	if got := status(); got != "starting" && got != "unhealthy" {
		t.Errorf("health right after the start: %q, want starting (or already unhealthy)", got)
	}
	if !retried(func() bool { return status() == "unhealthy" }) {
		t.Fatalf("health with a failing probe: %q, want unhealthy", status())
	}
	if got := strings.TrimSpace(mustDocker(t, w, "ps", "--filter", "health=unhealthy", "--format", "{{.Names}} {{.Status}}")); !strings.HasPrefix(got, "doc Up ") || !strings.HasSuffix(got, "(unhealthy)") {
		t.Errorf("ps --filter health=unhealthy: %q", got)
	}
	mustDocker(t, w, "exec", "doc", "touch", "/tmp/ok")
	if !retried(func() bool { return status() == "healthy" }) {
		t.Fatalf("health once the probe passes: %q, want healthy", status())
	}
	var h struct {
		FailingStreak int
		Log           []struct {
			ExitCode int
			Output   string
		}
	}
	if err := json.Unmarshal([]byte(dockerInspect(t, w, "{{json .State.Health}}", "doc")), &h); err != nil {
		t.Fatal(err)
	}
	if last := h.Log[len(h.Log)-1]; h.FailingStreak != 0 || last.ExitCode != 0 || last.Output != "fine\n" || len(h.Log) > 5 {
		t.Errorf("after a success: %+v, want streak 0 and the last result 0, \"fine\\n\", at most 5 kept", h)
	}
	if got := dockerInspect(t, w, "{{json .Config.Healthcheck}}", "doc"); got != `{"Test":["CMD-SHELL","test -e /tmp/ok && echo fine"],"Interval":100000000,"Retries":2}` {
		t.Errorf("Config.Healthcheck: %s", got)
	}
	until := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "sh", "-c", "sleep 1; date +%s"))
	events := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=doc", "--filter", "event=health_status", "--format", "{{.Action}}")
	if !strings.HasPrefix(events, "health_status: unhealthy\nhealth_status: healthy\n") {
		t.Errorf("health events:\n%s", events)
	}
	// Each probe is an exec, as moby's: exec_create, exec_start, then
	// exec_die with its exit code (a probe made no exec events).
	execs := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=doc", "--filter", "event=exec_die", "--format", "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
	if !strings.Contains(execs, "exec_die 1\n") || !strings.Contains(execs, "exec_die 0\n") {
		t.Errorf("the probes' exec_die events:\n%s", execs)
	}
	creates := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=doc", "--filter", "event=exec_create", "--format", "{{.Action}}")
	if !strings.HasPrefix(creates, "exec_create: /bin/sh -c test -e /tmp/ok && echo fine\n") {
		t.Errorf("the probes' exec_create events:\n%s", creates)
	}

	// A CMD-SHELL probe runs through the container's Config.Shell (an
	// API create's; moby's getShell), not /bin/sh -c.
	c := reliability.NewClient(w.Socket)
	if _, err := c.Want(http.MethodPost, "/containers/create?name=shelled", map[string]any{
		"Image": testworld.BusyboxImage, "Cmd": []string{"sleep", "600"}, "Shell": []string{"/bin/echo", "via"},
		"Healthcheck": map[string]any{"Test": []string{"CMD-SHELL", "hello"}, "Interval": 100_000_000, "Retries": 1},
	}, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, w, "start", "shelled")
	if !retried(func() bool { return dockerInspect(t, w, "{{.State.Health.Status}}", "shelled") == "healthy" }) {
		t.Fatalf("shelled: health %q, want healthy", dockerInspect(t, w, "{{.State.Health.Status}}", "shelled"))
	}
	if got := dockerInspect(t, w, "{{json .Config.Shell}} {{(index .State.Health.Log 0).Output}}", "shelled"); got != `["/bin/echo","via"] via hello` {
		t.Errorf("shelled: Config.Shell and the probe's output: %q", got)
	}
	mustDocker(t, w, "rm", "-f", "shelled")

	// A probe past its timeout is killed and counts as a failure.
	mustDocker(t, w, "run", "-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-interval", "100ms",
		"--health-timeout", "200ms", "--health-retries", "1", testworld.BusyboxImage, "sleep", "600")
	if !retried(func() bool { return dockerInspect(t, w, "{{.State.Health.Status}}", "slow") == "unhealthy" }) {
		t.Fatalf("a probe past its timeout did not make slow unhealthy")
	}
	// One entry per probe: more than one when the next probe (100 ms
	// later) also timed out before this inspect, on a slow machine.
	if got := dockerInspect(t, w, "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}|{{end}}", "slow"); got == "" || strings.Trim(strings.ReplaceAll(got, "-1 Health check exceeded timeout (200ms)|", ""), " ") != "" {
		t.Errorf("timed-out probes: %q, want each \"-1 Health check exceeded timeout (200ms)\"", got)
	}
	if out := mustDocker(t, w, "exec", "slow", "ps", "-o", "args"); strings.Count(out, "sleep 5") > 1 {
		t.Errorf("timed-out probes pile up in the container:\n%s", out)
	}

	// Bad settings are refused at create with moby's words.
	if _, errOut, code := w.Docker(t, "run", "--rm", "--health-cmd", "true", "--health-interval", "500us", testworld.BusyboxImage, "true"); code != 125 || !strings.Contains(errOut, "Interval in Healthcheck cannot be less than 1ms") {
		t.Errorf("--health-interval 500us: exit %d, %q", code, errOut)
	}
	// Stopped, the container shows unhealthy, as moby's (its stopped
	// monitor sets it "for compatibility reasons"), its results kept, and
	// a new start begins again at starting.
	mustDocker(t, w, "stop", "-t", "0", "doc")
	if got := status(); got != "unhealthy" {
		t.Errorf("health after a stop: %q, want unhealthy", got)
	}
	// A new start is starting again, with the last results kept (moby's
	// initHealthMonitor resets the status and the streak only).
	mustDocker(t, w, "start", "doc")
	if got := dockerInspect(t, w, "{{.State.Health.Status}} {{len .State.Health.Log}}", "doc"); got != "starting 5" && got != "healthy 5" {
		t.Errorf("health after a new start: %q, want starting with the 5 results kept", got)
	}
}

// TestAttachShowsNewOutputOnly: docker attach (stream, no logs) shows
// what the container prints from then on, as moby's, not its whole run;
// docker start -a of a stopped container shows that run's output once.
func TestAttachShowsNewOutputOnly(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "talk", testworld.BusyboxImage, "sh", "-c", "echo early; sleep 2; echo late")
	if !retried(func() bool { out, _, _ := w.Docker(t, "logs", "talk"); return out == "early\n" }) {
		t.Fatalf("talk did not print early")
	}
	if out := mustDocker(t, w, "attach", "--sig-proxy=false", "talk"); out != "late\n" {
		t.Errorf("docker attach printed %q, want only what came after it: %q", out, "late\n")
	}
	if out := mustDocker(t, w, "start", "-a", "talk"); out != "early\nlate\n" {
		t.Errorf("docker start -a printed %q, want the new run's output once", out)
	}
}

// TestStopCutByADaemonCrash: docker stop records the user's stop before
// it signals, as moby's killWithSignal, so an unless-stopped container
// whose stop a daemon crash cut off stays stopped at the next start.
func TestStopCutByADaemonCrash(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "slowus", "--restart", "unless-stopped", testworld.BusyboxImage,
		"sh", "-c", `trap "touch /tmp/term; sleep 1; exit 0" TERM; touch /tmp/ready; while true; do sleep 0.2; done`)
	// A TERM before the trap is set would be dropped: the shell is the
	// namespace's init, which ignores signals it has no handler for.
	if !retried(func() bool { _, _, code := w.Docker(t, "exec", "slowus", "test", "-e", "/tmp/ready"); return code == 0 }) {
		t.Fatal("slowus never set its trap")
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.Docker(t, "stop", "-t", "10", "slowus") // cut off by the kill below
	}()
	if !retried(func() bool { _, _, code := w.Docker(t, "exec", "slowus", "test", "-e", "/tmp/term"); return code == 0 }) {
		t.Fatalf("the stop did not send its signal")
	}
	d.Kill()
	<-stopped
	time.Sleep(2 * time.Second) // the trap's sleep: slowus exits while no daemon runs
	w.Start(t)
	if !retried(func() bool { return dockerInspect(t, w, "{{.State.Status}}", "slowus") == "exited" }) {
		t.Fatalf("slowus after the restart: %s, want exited (the user stopped it)", dockerInspect(t, w, "{{.State.Status}}", "slowus"))
	}
	time.Sleep(time.Second) // a policy start would come at the daemon's start
	if got := dockerInspect(t, w, "{{.State.Status}} {{.RestartCount}}", "slowus"); got != "exited 0" {
		t.Errorf("slowus: %s, want it left stopped", got)
	}
}

// TestExitUnknownIs255: a container whose reaper (its parent, which
// records its exit) was killed while the daemon ran keeps its real code:
// it came to the daemon, a child subreaper. Only when the daemon died
// too, and the container ended while neither ran, is its exit one no one
// recorded: 255, as moby's for an exit status it cannot learn, never -1.
func TestExitUnknownIs255(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "orphan", testworld.BusyboxImage, "sleep", "600")
	killReaper := func() {
		t.Helper()
		// This world's reaper: "berth-reaper <dir>" with its dir in the world's.
		entries, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		reaper := 0
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if args := strings.Split(string(b), "\x00"); err == nil && len(args) >= 2 && args[0] == "berth-reaper" && strings.HasPrefix(args[1], w.Dir) {
				reaper = pid
			}
		}
		if reaper == 0 {
			t.Fatalf("this world's reaper was not found")
		}
		if err := unix.Kill(reaper, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	killReaper()
	mustDocker(t, w, "stop", "-t", "1", "orphan")
	if got := dockerInspect(t, w, "{{.State.ExitCode}}", "orphan"); got != "137" {
		t.Errorf("ExitCode of a container whose reaper died while the daemon ran: %s, want its own 137", got)
	}

	mustDocker(t, w, "start", "orphan")
	pid, err := strconv.Atoi(dockerInspect(t, w, "{{.State.Pid}}", "orphan"))
	if err != nil {
		t.Fatal(err)
	}
	d.Kill()
	killReaper()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w.Start(t)
	if got := dockerInspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "orphan"); got != "exited 255" {
		t.Errorf("a container that ended while neither its daemon nor its reaper ran: %s, want exited 255", got)
	}
}

// TestBridgeDeletedWhileDaemonDown: a user network's bridge deleted while
// no daemon ran is made again at the next start, with the running
// containers' veths back on it: they reach each other and the gateway
// again.
func TestBridgeDeletedWhileDaemonDown(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "10.77.0.0/24", "-o", "com.docker.network.bridge.name=br-lost", "lost")
	mustDocker(t, w, "run", "-d", "--name", "l1", "--network", "lost", "--ip", "10.77.0.11", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "run", "-d", "--name", "l2", "--network", "lost", "--ip", "10.77.0.12", testworld.BusyboxImage, "sleep", "600")
	gw := netip.MustParseAddr("10.77.0.1")
	if !canPing(t, w, "l1", netip.MustParseAddr("10.77.0.12")) || !canPing(t, w, "l1", gw) {
		t.Fatalf("l1 cannot reach l2 and the gateway before the test")
	}
	d.Kill()
	if _, errOut, code := w.InHost(t, "ip", "link", "del", "br-lost"); code != 0 {
		t.Fatalf("delete br-lost: %s", errOut)
	}
	w.Start(t)
	if !retried(func() bool { return canPing(t, w, "l1", netip.MustParseAddr("10.77.0.12")) }) {
		out, _, _ := w.InHost(t, "ip", "-br", "link")
		t.Errorf("l1 cannot reach l2 after the restart; host links:\n%s", out)
	}
	// l1 still holds the gateway's MAC from before: the bridge made again
	// has the same one (it once drew a new one, and l1 was cut off from
	// the gateway until its neighbour entry failed, 15 to 45 s later;
	// three pings, six seconds at most, see the difference).
	reached := false
	for range 3 {
		if reached = canPing(t, w, "l1", gw); reached {
			break
		}
	}
	if !reached {
		out, _, _ := w.Docker(t, "exec", "l1", "ip", "neigh")
		t.Errorf("l1 cannot reach the gateway after the restart; its neighbours:\n%s", out)
	}
}

// TestAttachedRunsKeepAllOutput: docker run in the foreground of a
// container that prints and exits at once shows its output every time.
// The attach is set up before the upgrade's answer, after which the CLI
// starts the container: a container that had started, printed and exited
// before the attach looked was once followed from the end, its output
// lost.
func TestAttachedRunsKeepAllOutput(t *testing.T) {
	w, _ := startWorld(t)
	for i := 0; i < 20; i++ {
		want := fmt.Sprintf("run %d\n", i)
		if out := mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "echo", "run", strconv.Itoa(i)); out != want {
			t.Fatalf("docker run --rm echo: %q, want %q", out, want)
		}
	}
}
