package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

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

func snapshot(t *testing.T, w *testworld.World) hostState {
	t.Helper()
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
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
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
	runSleeper(t, w, "a")
	runSleeper(t, w, "b")
	runSleeper(t, w, "c", "--network", "kept")
	addrs := map[string]netip.Addr{"a": containerIP(t, w, "a"), "b": containerIP(t, w, "b"), "c": networkIP(t, w, "c", "kept")}
	pids := map[string]int{"a": containerPID(t, w, "a"), "b": containerPID(t, w, "b"), "c": containerPID(t, w, "c")}
	networks := w.MustBerth(t, "network", "ls")
	before := snapshot(t, w)

	d.Stop()
	for name, pid := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			t.Errorf("container %s (pid %d) died with the daemon: %v", name, pid, err)
		}
	}
	w.Start(t)

	if got := w.MustBerth(t, "network", "ls"); got != networks {
		t.Errorf("network ls after restart:\n%s\nbefore:\n%s", got, networks)
	}
	checkPs(t, w, "a", "b", "c")
	got := map[string]netip.Addr{"a": containerIP(t, w, "a"), "b": containerIP(t, w, "b"), "c": networkIP(t, w, "c", "kept")}
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
	checkSandbox(t, w, "a", addrs["a"], bridgeSubnet, bridgeGateway)
	if !canPing(t, w, "a", addrs["b"]) {
		t.Errorf("a cannot ping b after restart")
	}
	if got, want := fetch(t, w, "c"), "you are 198.51.100.2\n"; got != want {
		t.Errorf("c reached the outside as %q after restart, want %q", got, want)
	}
	runSleeper(t, w, "new")
	if ip := containerIP(t, w, "new"); ip == addrs["a"] || ip == addrs["b"] {
		t.Errorf("new container got %s, already held by a or b", ip)
	}
}

// TestKillDuringRun SIGKILLs the daemon while a loop of `run`s is going,
// restarts it, and checks that nothing leaked and no address is held twice:
// every veth on the bridge and every netns file belongs to a running
// container, and a new run still works.
func TestKillDuringRun(t *testing.T) {
	w, d := startWorld(t)
	progress, done := make(chan int, 20), make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for i := 1; i <= 20; i++ {
			args := []string{"run", "-d", "--name", fmt.Sprintf("loop%d", i), testworld.BusyboxImage, "sleep", "3600"}
			if _, _, code := w.Berth(t, args...); code != 0 {
				return
			}
			n++
			progress <- n
		}
	}()
	// Kill once two runs have finished, so that the third is in flight.
	var finished int
	for finished < 2 {
		select {
		case finished = <-progress:
		case finished = <-done:
			t.Fatalf("the run loop stopped after %d runs before the kill", finished)
		}
	}
	d.Kill()
	t.Logf("%d loop runs finished before the kill", <-done)

	w.Start(t)
	checkNoLeaks(t, w)
	runSleeper(t, w, "after")
	checkNoLeaks(t, w)
	checkSandbox(t, w, "after", containerIP(t, w, "after"), bridgeSubnet, bridgeGateway)
}

// checkNoLeaks: the host holds exactly lo, eth0, the bridge and one veth per
// running container; the netns dir exactly their sandboxes; their
// addresses are distinct and each is on its eth0.
func checkNoLeaks(t *testing.T, w *testworld.World) {
	t.Helper()
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
