package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/testworld"
)

// hostState is what a container may leave behind in the host.
type hostState struct {
	Links []string // every link in the host
	Ports []string // the default bridge's ports
	Netns []string // files under <exec-root>/netns
	Rules string   // nft -s list table inet berth
}

// snapshot waits for the bridge driver's reaper first: veths that rm or
// stop cut off are deleted a little after the command returned.
func snapshot(t *testing.T, w *testworld.World) hostState {
	t.Helper()
	waitReaped(t, w)
	rules, errOut, code := w.InHost(t, "nft", "-s", "list", "table", "inet", "berth")
	if code != 0 {
		t.Fatalf("nft list table inet berth: exit %d: %s", code, errOut)
	}
	return hostState{
		Links: w.LinkNames(t, w.HostNS()),
		Ports: w.BridgePorts(t, defaultBridge),
		Netns: w.NetnsFiles(t),
		Rules: rules,
	}
}

// TestRemoveFreesEverything: `rm -f` of a running container removes its
// veth, its netns mount and its rules, and the next run gets its address.
func TestRemoveFreesEverything(t *testing.T) {
	w, _ := startWorld(t)
	runSleeper(t, w, "keep")
	before := snapshot(t, w)

	runSleeper(t, w, "gone")
	gone := containerIP(t, w, "gone")
	key := sandboxKey(t, w, "gone")
	pid := containerPID(t, w, "gone")
	if with := snapshot(t, w); len(with.Ports) != len(before.Ports)+1 || len(with.Netns) != len(before.Netns)+1 {
		t.Errorf("running gone added ports %q and netns %q, want one of each", with.Ports, with.Netns)
	}
	w.MustBerth(t, "rm", "-f", "gone")

	if diff := cmp.Diff(before, snapshot(t, w)); diff != "" {
		t.Errorf("host after rm -f differs from before run (-before +after):\n%s", diff)
	}
	if _, err := os.Stat(w.HostPath(key)); !os.IsNotExist(err) {
		t.Errorf("sandbox %s still exists after rm -f: %v", key, err)
	}
	if alive(pid) {
		t.Errorf("init %d of gone still running after rm -f", pid)
	}
	if _, _, code := w.Berth(t, "inspect", "gone"); code == 0 {
		t.Errorf("inspect gone succeeds after rm -f")
	}
	runSleeper(t, w, "next")
	if got := containerIP(t, w, "next"); got != gone {
		t.Errorf("next got %s, want the freed %s (lowest free address)", got, gone)
	}
}

// TestDaemonRestart: SIGTERM and a new daemon keep networks, running
// containers (same PIDs), their addresses and their connectivity.
func TestDaemonRestart(t *testing.T) {
	w, d := startWorld(t)
	w.MustBerth(t, "network", "create", "--subnet", "10.98.0.0/24", "kept")
	runSleeper(t, w, "alpha")
	runSleeper(t, w, "bravo")
	runSleeper(t, w, "charlie", "--network", "kept")
	// Endpoints without a bridge: a start that took them for bridge
	// endpoints hung (session 31).
	runSleeper(t, w, "delta", "--network", "none")
	runSleeper(t, w, "echo", "--network", "host")
	addrs := map[string]netip.Addr{"alpha": containerIP(t, w, "alpha"), "bravo": containerIP(t, w, "bravo"), "charlie": networkIP(t, w, "charlie", "kept")}
	pids := map[string]int{"alpha": containerPID(t, w, "alpha"), "bravo": containerPID(t, w, "bravo"), "charlie": containerPID(t, w, "charlie"),
		"delta": containerPID(t, w, "delta"), "echo": containerPID(t, w, "echo")}
	networks := w.MustBerth(t, "network", "ls")
	before := snapshot(t, w)

	d.Stop()
	for name, pid := range pids {
		if !alive(pid) {
			t.Errorf("container %s (pid %d) died with the daemon", name, pid)
		}
	}
	w.Start(t)

	if got := w.MustBerth(t, "network", "ls"); got != networks {
		t.Errorf("network ls after restart:\n%s\nbefore:\n%s", got, networks)
	}
	checkPs(t, w, "alpha", "bravo", "charlie", "delta", "echo")
	got := map[string]netip.Addr{"alpha": containerIP(t, w, "alpha"), "bravo": containerIP(t, w, "bravo"), "charlie": networkIP(t, w, "charlie", "kept")}
	if diff := cmp.Diff(addrs, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("addresses after restart (-before +after):\n%s", diff)
	}
	for name, pid := range pids {
		if p := containerPID(t, w, name); p != pid {
			t.Errorf("State.Pid of %s = %d after restart, want %d", name, p, pid)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, w)); diff != "" {
		t.Errorf("host after restart (-before +after):\n%s", diff)
	}
	checkSandbox(t, w, "alpha", addrs["alpha"], bridgeSubnet, bridgeGateway)
	if !pings(t, w, "alpha", addrs["bravo"]) {
		t.Errorf("alpha cannot ping bravo after restart")
	}
	if got, want := fetchAnswer(t, w, "charlie"), "you are 198.51.100.2\n"; got != want {
		t.Errorf("charlie reached the outside as %q after restart, want %q", got, want)
	}
	runSleeper(t, w, "new")
	if ip := containerIP(t, w, "new"); ip == addrs["alpha"] || ip == addrs["bravo"] {
		t.Errorf("new container got %s, already held by alpha or bravo", ip)
	}
}

// TestKillDuringRun SIGKILLs the daemon while a loop of `run`s is going,
// restarts it, and checks that nothing leaked and no address is held twice:
// every veth on the bridge and every netns file belongs to a running
// container, and a new run still works. Each round kills at a different
// point after a run finished, so the kills land in different phases of the
// next run (create, wait, start, attach); what is checked holds wherever
// the kill lands, so the delays make no assertion about speed.
func TestKillDuringRun(t *testing.T) {
	w, d := startWorld(t)
	rules := snapshot(t, w).Rules // per network, so no run may change them for good
	for round, delay := range []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond} {
		finished := runLoopThenKill(t, w, d, round, delay)
		t.Logf("round %d: %d runs finished, killed %v after the last", round, finished, delay)
		d = w.Start(t)
		checkNoLeaks(t, w)
		if diff := cmp.Diff(rules, snapshot(t, w).Rules); diff != "" {
			t.Errorf("round %d: table inet berth after the restart (-before +after):\n%s", round, diff)
		}
	}
	runSleeper(t, w, "after")
	checkNoLeaks(t, w)
}

// runLoopThenKill runs containers one after the other until the daemon
// dies; once the first has finished it waits delay and SIGKILLs the daemon.
func runLoopThenKill(t *testing.T, w *testworld.World, d *testworld.Daemon, round int, delay time.Duration) int {
	t.Helper()
	progress, done := make(chan struct{}, 100), make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for i := 1; i <= 100; i++ {
			name := fmt.Sprintf("r%d-loop%d", round, i)
			if _, _, code := w.Berth(t, "run", "-d", "--name", name, testworld.BusyboxImage, "sleep", "3600"); code != 0 {
				return
			}
			n++
			progress <- struct{}{}
		}
	}()
	select {
	case <-progress:
	case n := <-done:
		t.Fatalf("round %d: the run loop stopped after %d runs, before the kill", round, n)
	}
	time.Sleep(delay)
	d.Kill()
	return <-done
}

// checkNoLeaks: the host holds exactly lo, eth0, the bridge and one veth per
// running container; the netns dir exactly their sandboxes; their
// addresses are distinct and each is on its eth0.
func checkNoLeaks(t *testing.T, w *testworld.World) {
	t.Helper()
	waitReaped(t, w) // what the restart rolled back goes in the reaper's next batch
	running := strings.Fields(w.MustBerth(t, "ps", "-q"))
	seen := map[netip.Addr]string{}
	var keys []string
	for _, id := range running {
		ip := containerIP(t, w, id)
		if other, dup := seen[ip]; dup {
			t.Errorf("address %s held by both %s and %s", ip, other, id)
		}
		seen[ip] = id
		key := sandboxKey(t, w, id)
		keys = append(keys, key[strings.LastIndex(key, "/")+1:]+" (ns)")
		checkSandbox(t, w, id, ip, bridgeSubnet, bridgeGateway)
	}
	if got := w.NetnsFiles(t); !equal(got, sorted(keys)) {
		t.Errorf("netns dir = %q, want the %d running sandboxes %q", got, len(running), sorted(keys))
	}
	ports := w.BridgePorts(t, defaultBridge)
	if len(ports) != len(running) {
		t.Errorf("bridge ports %q, want one per running container (%d)", ports, len(running))
	}
	want := sorted(append([]string{"eth0", "lo", defaultBridge}, ports...))
	if got := w.LinkNames(t, w.HostNS()); !equal(got, want) {
		t.Errorf("host links = %q, want %q", got, want)
	}
}

// TestWorldReapsAfterCrash checks the harness itself with real containers:
// a world whose daemon was SIGKILLed with containers running still leaves
// no container process behind when its test ends.
func TestWorldReapsAfterCrash(t *testing.T) {
	var pids []int
	t.Run("world", func(t *testing.T) {
		w, d := startWorld(t)
		runSleeper(t, w, "orphan1")
		runSleeper(t, w, "orphan2")
		pids = []int{containerPID(t, w, "orphan1"), containerPID(t, w, "orphan2")}
		d.Kill()
	})
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("container init %d outlived its world", pid)
		}
	}
}

// alive reports whether pid is a process that still runs: a zombie is
// dead, only waiting for whichever ancestor adopted it to reap it.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold spaces.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// TestDaemonStaysInHostNamespace: however many container namespaces the
// daemon enters, /proc/<daemon>/ns/net (what `nsenter -t` and
// `ip netns identify` read) keeps naming the host's namespace.
func TestDaemonStaysInHostNamespace(t *testing.T) {
	w, d := startWorld(t)
	host, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", w.HolderPID()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := fmt.Sprintf("c%d", i)
		runSleeper(t, w, name)
		w.MustBerth(t, "network", "disconnect", "bridge", name)
		w.MustBerth(t, "network", "connect", "bridge", name)
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", d.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		if got != host {
			t.Fatalf("after %d containers the daemon's ns/net is %s, want the host's %s", i+1, got, host)
		}
	}
}

// waitInspect polls docker inspect --format format on name until it
// prints want, for up to 60 s.
func waitInspect(t *testing.T, w *testworld.World, format, name, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _, code := w.Docker(t, "inspect", "--format", format, name)
		if got = strings.TrimSpace(out); code == 0 && got == want {
			return
		}
	}
	t.Fatalf("docker inspect --format %q %s = %q, want %q", format, name, got, want)
}

// TestRestartPolicies: Docker's restart policies, with the networking a
// restarted container gets back (an address on its network, a name its
// neighbours resolve), the user's stop respected, and a daemon start that
// brings back what the policy wants running.
func TestRestartPolicies(t *testing.T) {
	w, d := startWorld(t)
	bb := testworld.BusyboxImage
	mustDocker(t, w, "network", "create", "web")
	runDockerSleeper(t, w, "peer", "--network", "web")

	// on-failure:2 gives up after two restarts.
	mustDocker(t, w, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", bb, "sh", "-c", "exit 3")
	waitInspect(t, w, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", "flaky", "exited 3 2")
	if got := dockerInspect(t, w, "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "flaky"); got != "on-failure:2" {
		t.Errorf("HostConfig.RestartPolicy = %s", got)
	}
	// on-failure leaves a clean exit alone.
	mustDocker(t, w, "run", "-d", "--name", "clean", "--restart", "on-failure", bb, "true")
	waitInspect(t, w, "{{.State.Status}} {{.RestartCount}}", "clean", "exited 0")

	// always: back on its network after each exit, and resolvable.
	mustDocker(t, w, "run", "-d", "--name", "phoenix", "--restart", "always", "--network", "web", bb, "sh", "-c", "sleep 4; exit 1")
	// (State.Running is true while it waits to restart too, as Docker's.)
	waitInspect(t, w, "{{.State.Status}} {{gt .RestartCount 0}}", "phoenix", "running true")
	ip := netip.MustParseAddr(dockerInspect(t, w, "{{.NetworkSettings.Networks.web.IPAddress}}", "phoenix"))
	wantLookup(t, w, "peer", "phoenix", ip)
	// Its back-off grows while it keeps failing; a stop while it waits
	// ends it for good.
	waitInspect(t, w, "{{.State.Status}}", "phoenix", "restarting")
	mustDocker(t, w, "stop", "-t", "1", "phoenix")
	count := dockerInspect(t, w, "{{.RestartCount}}", "phoenix")
	time.Sleep(3 * time.Second)
	if got := dockerInspect(t, w, "{{.State.Status}} {{.RestartCount}}", "phoenix"); got != "exited "+count {
		t.Errorf("after docker stop during its back-off: %q, want it exited with %s restarts", got, count)
	}
	if _, errOut, code := w.Docker(t, "rm", "phoenix"); code != 0 {
		t.Errorf("docker rm of the stopped phoenix: %s", errOut)
	}

	// A daemon start brings back always (even stopped by the user) but
	// not unless-stopped that the user stopped.
	runDockerSleeper(t, w, "a1", "--restart", "always", "--network", "web")
	runDockerSleeper(t, w, "a2", "--restart", "always")
	runDockerSleeper(t, w, "u1", "--restart", "unless-stopped")
	runDockerSleeper(t, w, "u2", "--restart", "unless-stopped")
	mustDocker(t, w, "stop", "a1", "a2", "u1")
	d.Kill()
	d = w.Start(t)
	// The daemon answers once those starts are done: nothing the user does
	// next can race them (an rm -f brought a removed container back).
	if got := dockerInspect(t, w, "{{.State.Status}}", "a1"); got != "running" {
		t.Errorf("a1 (always, stopped by the user) right after a daemon start: %s", got)
	}
	mustDocker(t, w, "rm", "-f", "a2")
	if got := dockerInspect(t, w, "{{.State.Status}}", "u1"); got != "exited" {
		t.Errorf("u1 (unless-stopped, stopped by the user) after a daemon start: %s", got)
	}
	if got := dockerInspect(t, w, "{{.State.Running}}", "u2"); got != "true" {
		t.Errorf("u2 (unless-stopped, running) after a daemon start: running = %s", got)
	}
	wantLookup(t, w, "peer", "a1", netip.MustParseAddr(dockerInspect(t, w, "{{.NetworkSettings.Networks.web.IPAddress}}", "a1")))
	d.Kill()
	d = w.Start(t)
	if out, _, _ := w.Docker(t, "ps", "-a", "--filter", "name=a2", "--format", "{{.Names}}"); strings.TrimSpace(out) != "" {
		t.Errorf("a2, removed after a daemon start, is back after the next: %q", out)
	}

	// unless-stopped heeds any kill by the user, even with a signal that
	// is not its stop signal and that it survives until it exits.
	mustDocker(t, w, "run", "-d", "--name", "trapper", "--restart", "unless-stopped", "--stop-signal", "USR1", bb,
		"sh", "-c", `trap "exit 9" HUP; trap "exit 0" USR1; echo started; while true; do sleep 1; done`)
	waitInspect(t, w, "{{.State.Status}}", "trapper", "running")
	mustDocker(t, w, "kill", "-s", "HUP", "trapper")
	waitInspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "trapper", "exited 9")
	time.Sleep(500 * time.Millisecond) // a restart would come 100 ms after the exit
	if got := dockerInspect(t, w, "{{.State.Status}} {{.RestartCount}}", "trapper"); got != "exited 0" {
		t.Errorf("unless-stopped after docker kill -s HUP: %q, want exited without a restart", got)
	}

	// docker wait on a container in its back-off waits for the restarted
	// run to exit (moby: Running is true while restarting). The first run
	// exits 7, the next 9 (its writable layer keeps the mark).
	mustDocker(t, w, "run", "-d", "--name", "twice", "--restart", "always", bb, "sh", "-c",
		`if [ -e /mark ]; then sleep 1; exit 9; fi; touch /mark; sleep 1; exit 7`)
	waitInspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "twice", "restarting 7")
	if got := strings.TrimSpace(mustDocker(t, w, "wait", "twice")); got != "9" {
		t.Errorf("docker wait during the back-off = %s, want 9 (the restarted run's exit)", got)
	}
	mustDocker(t, w, "rm", "-f", "twice")
}

// TestRemoveRacingRestart: an rm -f that answers success is final, even
// while a docker restart of the same container is under way: the start
// half of the restart fails, nothing of the container stays behind (its
// process, namespace, port, name), and a daemon restart does not bring it
// back. A --rm container that stops while the daemon is down is removed
// when the daemon starts, as Docker does.
func TestRemoveRacingRestart(t *testing.T) {
	w, d := startWorld(t)
	bb := testworld.BusyboxImage
	const n = 8
	for k := range n {
		name, port := "r"+strconv.Itoa(k), strconv.Itoa(19100+k)
		mustDocker(t, w, "run", "-d", "--name", name, "-p", port+":80", bb, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.Docker(t, "restart", "-t", "1", name) // may fail: the container is being removed
		}()
		time.Sleep(time.Duration(k%4+1) * 150 * time.Millisecond)
		mustDocker(t, w, "rm", "-f", name)
		<-done
	}
	if out := strings.TrimSpace(mustDocker(t, w, "ps", "-aq")); out != "" {
		t.Fatalf("containers left after rm -f of all: %q", out)
	}
	if files := w.NetnsFiles(t); len(files) != 0 {
		t.Errorf("namespaces left after rm -f of all: %v", files)
	}
	for k := range n {
		port := strconv.Itoa(19100 + k)
		mustDocker(t, w, "run", "-d", "--name", "again"+strconv.Itoa(k), "-p", port+":80", bb, "sleep", "60")
	}
	mustDocker(t, w, "rm", "-f", "again0", "again1", "again2", "again3", "again4", "again5", "again6", "again7")

	mustDocker(t, w, "run", "-d", "--rm", "--name", "brief", bb, "sleep", "2")
	d.Kill()
	time.Sleep(3 * time.Second) // brief exits while no daemon watches it
	w.Start(t)
	if out := strings.TrimSpace(mustDocker(t, w, "ps", "-aq")); out != "" {
		t.Errorf("after a daemon restart: containers %q, want none (the removed ones stay removed, --rm ones that stopped go)", out)
	}
}

// TestExitCodeAcrossDaemonCrash: exit codes survive a daemon that was
// SIGKILLed, as Docker's do (its shims keep them). One container ends
// while no daemon runs, and the next daemon reports how; another is
// re-adopted and ends afterwards, and `docker wait` gets its code. Both
// were lost before the reaper (255 and -1). A third, with
// --restart on-failure, succeeded meanwhile and so stays exited (a 255
// had it restarted).
func TestExitCodeAcrossDaemonCrash(t *testing.T) {
	w, d := startWorld(t)
	const trapper = `trap "exit 7" TERM; touch /tmp/ready; while :; do sleep 0.1; done`
	for _, name := range []string{"down", "later"} {
		w.MustBerth(t, "run", "-d", "--name", name, testworld.BusyboxImage, "sh", "-c", trapper)
	}
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "retry", "--restart", "on-failure:3", testworld.BusyboxImage,
		"sh", "-c", `trap "exit 0" TERM; touch /tmp/ready; while :; do sleep 0.1; done`); code != 0 {
		t.Fatalf("docker run retry: exit %d: %s", code, errOut)
	}
	pids := map[string]int{}
	for _, name := range []string{"down", "later", "retry"} {
		pids[name] = containerPID(t, w, name)
		// A TERM before the trap is set would be dropped: the shell is
		// the namespace's init, which ignores signals it has no handler for.
		eventually(t, name+" sets its trap", func() bool {
			_, _, code := w.Berth(t, "exec", name, "test", "-e", "/tmp/ready")
			return code == 0
		})
	}

	d.Kill()
	for _, name := range []string{"down", "retry"} {
		syscall.Kill(pids[name], syscall.SIGTERM)
	}
	eventually(t, "down and retry exit", func() bool { return !alive(pids["down"]) && !alive(pids["retry"]) })
	w.Start(t)

	if got := inspect(t, w, "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "down"); got != "exited 7" {
		t.Errorf("down after the daemon came back: %q, want \"exited 7\" and no error", got)
	}
	if got := inspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "retry"); got != "exited 0" {
		t.Errorf("retry after the daemon came back: %q, want \"exited 0\" (it succeeded: on-failure leaves it)", got)
	}
	if p := containerPID(t, w, "later"); p != pids["later"] {
		t.Fatalf("later: pid %d after the restart, want %d (re-adopted)", p, pids["later"])
	}
	w.MustBerth(t, "kill", "-s", "TERM", "later")
	if out, _, _ := w.Docker(t, "wait", "later"); strings.TrimSpace(out) != "7" {
		t.Errorf("docker wait later = %q, want 7", out)
	}
	if got := inspect(t, w, "{{.State.ExitCode}}", "later"); got != "7" {
		t.Errorf("later's exit code %q, want 7", got)
	}
}

// TestSecondDaemonRefusedBeforeTouchingAnything starts a second `berth
// daemon` in the network namespace of a running one, with a data-root of
// its own: once with the running one's socket, once with another. Each is
// refused before it reads or changes anything; before, the second went
// through its whole reconcile first and removed the first daemon's
// bridges, veths and table as its own leftovers (QA round 24).
func TestSecondDaemonRefusedBeforeTouchingAnything(t *testing.T) {
	w, _ := startWorld(t)
	runSleeper(t, w, "alpha")
	runSleeper(t, w, "bravo")
	before := snapshot(t, w)
	bravo := containerIP(t, w, "bravo")
	other := filepath.Join(w.Dir, "second")
	for _, sock := range []string{w.Socket, filepath.Join(other, "other.sock")} {
		_, errOut, code := w.InHost(t, testworld.Binary(t), "daemon",
			"--data-root", filepath.Join(other, "data"), "--exec-root", filepath.Join(other, "exec"), "--host", "unix://"+sock)
		if code == 0 || !strings.Contains(errOut, "another berth daemon runs in this network namespace") {
			t.Errorf("second daemon on %s: exit %d, stderr %q; want it refused", sock, code, errOut)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, w)); diff != "" {
		t.Errorf("host after the refused daemons (-before +after):\n%s", diff)
	}
	if !pings(t, w, "alpha", bravo) {
		t.Errorf("alpha cannot ping bravo after the refused daemons")
	}
	if _, err := os.Stat(filepath.Join(other, "data")); err == nil {
		t.Errorf("the refused daemon made its data-root")
	}
}

// TestRemovalCutShortKeepsTheFiles: a docker rm that a crash cuts short
// after the container's files were moved aside and before its record was
// deleted leaves a container that is still listed; the next start gives
// it its files back (its writable layer, its log), where it emptied the
// trash and the container ran again on an empty layer.
func TestRemovalCutShortKeepsTheFiles(t *testing.T) {
	w, d := startWorld(t)
	script := "cat /kept 2>/dev/null || echo new; echo kept > /kept"
	id := strings.TrimSpace(mustDocker(t, w, "create", "--name", "cut", testworld.BusyboxImage, "sh", "-c", script))
	if out := mustDocker(t, w, "start", "-a", "cut"); out != "new\n" {
		t.Fatalf("first run printed %q", out)
	}
	d.Stop()
	// What DeleteLater leaves at the crash: the data directory in the
	// trash beside it, the record still there.
	trash := w.HostPath(filepath.Join(w.DataRoot, "containers-trash"))
	if err := os.MkdirAll(trash, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(w.HostPath(filepath.Join(w.DataRoot, "containers", id)), filepath.Join(trash, id)); err != nil {
		t.Fatal(err)
	}
	w.Start(t)
	if out := mustDocker(t, w, "start", "-a", "cut"); out != "kept\n" {
		t.Errorf("after the cut-short removal and a restart the container printed %q, want its file kept", out)
	}
	if out := mustDocker(t, w, "logs", "cut"); out != "new\nkept\n" {
		t.Errorf("logs after the restart: %q, want both runs", out)
	}
	mustDocker(t, w, "rm", "cut")
	if ents, err := os.ReadDir(trash); err != nil || len(ents) != 0 {
		t.Errorf("the trash after a rm: %v, %v", ents, err)
	}
}

// TestConsoleSizeAtStart: a tty container starts with the size the
// client's terminal had (HostConfig.ConsoleSize, which docker run -t
// sends), as moby's WithConsoleSize: it started at 0x0 until a resize,
// and a program reading it at once (stty, a TUI) saw none.
func TestConsoleSizeAtStart(t *testing.T) {
	w, _ := startWorld(t)
	body := `{"Image":"` + testworld.BusyboxImage + `","Cmd":["stty","size"],"Tty":true,"HostConfig":{"ConsoleSize":[40,100]}}`
	resp, err := apiClient(w).Post("http://berth/v1.51/containers/create?name=sized", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if got := dockerInspect(t, w, "{{json .HostConfig.ConsoleSize}}", "sized"); got != "[40,100]" {
		t.Errorf("HostConfig.ConsoleSize = %s, want [40,100]", got)
	}
	mustDocker(t, w, "start", "sized")
	mustDocker(t, w, "wait", "sized")
	if out := mustDocker(t, w, "logs", "sized"); strings.TrimSpace(out) != "40 100" {
		t.Errorf("stty size in the container: %q, want 40 100", out)
	}
}

// TestResizeAsDocker: a resize of a running container is a "resize" event
// with its height and width; of one that is not running, a 409, as
// moby's ContainerResize (berth logged nothing and answered 200).
func TestResizeAsDocker(t *testing.T) {
	w, _ := startWorld(t)
	since := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "date", "+%s"))
	mustDocker(t, w, "run", "-d", "-t", "--name", "tt", testworld.BusyboxImage, "sleep", "600")
	resize := func() int {
		resp, err := apiClient(w).Post("http://berth/v1.51/containers/tt/resize?h=30&w=100", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := resize(); code != 200 {
		t.Errorf("resize of a running container: %d", code)
	}
	mustDocker(t, w, "stop", "-t", "0", "tt")
	if code := resize(); code != 409 {
		t.Errorf("resize of a stopped container: %d, want 409", code)
	}
	until := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "sh", "-c", "sleep 1; date +%s"))
	out := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "event=resize", "--format", `{{.Action}} {{index .Actor.Attributes "height"}} {{index .Actor.Attributes "width"}}`)
	if out != "resize 30 100\n" {
		t.Errorf("resize events: %q", out)
	}
}
