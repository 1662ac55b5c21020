package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/bench/reliability"
)

// crashKillsEnv sets the number of kills of TestCrashStorm; CI uses the
// default, the full run 200 or more.
const crashKillsEnv = "BERTH_CRASH_KILLS"

// TestCrashStorm SIGKILLs the daemon at random points of a loop of run,
// connect, disconnect, rm -f, network create and network rm, restarting it
// each time. After every restart the store and the kernel must agree: no
// leaked veth, netns, nftables chain or element, runc container, and no
// address held twice. At the end everything is removed and the lowest
// addresses are handed out again: no allocation leaked.
func TestCrashStorm(t *testing.T) {
	kills := 15
	if s := os.Getenv(crashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashKillsEnv, s)
		}
		kills = n
	}
	w, d := startWorld(t)
	c := reliability.NewClient(w.Socket)
	d, rep := reliability.CrashStorm(t, w, d, reliability.StormConfig{
		Kills: kills, MaxDelay: 150 * time.Millisecond, Seed: uint64(time.Now().UnixNano()),
		Network: "storm", Subnet: "10.99.0.0/24",
	})
	var figures strings.Builder
	rep.Print(&figures)
	t.Log(figures.String())
	for _, l := range rep.Leaks {
		t.Error(l)
	}
	reliability.Cleanup(t, c)
	waitReaped(t, w) // Settled gives the kernel 5 s; the reaper may take longer on a loaded machine
	if _, leaks := reliability.Settled(t, w, c); len(leaks) > 0 {
		t.Errorf("after removing everything: %q", leaks)
	}
	if got := snapshot(t, w); got.Rules == "" || len(got.Ports) != 0 || len(got.Netns) != 0 {
		t.Errorf("after removing everything: ports %q, netns %q", got.Ports, got.Netns)
	}
	// Every address is free again: new containers get the lowest ones.
	for i, want := range []string{"172.17.0.2", "172.17.0.3"} {
		name := "after" + strconv.Itoa(i)
		runSleeper(t, w, name)
		if got := containerIP(t, w, name).String(); got != want {
			t.Errorf("%s got %s after the storm, want %s: an allocation leaked", name, got, want)
		}
	}
	runSleeper(t, w, "after-storm", "--network", "storm")
	if got := networkIP(t, w, "after-storm", "storm").String(); got != "10.99.0.2" {
		t.Errorf("after-storm got %s on storm, want 10.99.0.2: an allocation leaked", got)
	}
	d.Stop()
}
