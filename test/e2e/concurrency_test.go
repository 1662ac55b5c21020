package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/bench/reliability"
	"github.com/berth-net/berth/internal/testworld"
)

// TestConcurrentRunsAndRemovals: 100 runs on one network at once through
// the API, then 100 removals at once: all succeed, the addresses are
// distinct, nothing leaks, and GET /networks keeps answering meanwhile.
// The latency is printed (bench/reliability asserts nothing about it either).
func TestConcurrentRunsAndRemovals(t *testing.T) {
	w, _ := startWorld(t)
	c := reliability.NewClient(w.Socket)
	w.MustBerth(t, "network", "create", "--subnet", "10.97.0.0/24", "conc")
	before := snapshot(t, w)
	rep := reliability.Concurrency(t, c, reliability.ConcurrencyConfig{Containers: 100, Network: "conc", Image: testworld.BusyboxImage})
	for _, e := range append(rep.RunErrors, rep.RemoveErrors...) {
		t.Error(e)
	}
	if len(rep.Addresses) != 100 || len(rep.Duplicates) > 0 {
		t.Errorf("got %d addresses, duplicates %q; want 100 distinct", len(rep.Addresses), rep.Duplicates)
	}
	if rep.ListErrors > 0 || len(rep.ListLatency) == 0 {
		t.Errorf("GET /networks failed %d times during the storm (%d answers)", rep.ListErrors, len(rep.ListLatency))
	}
	var figures strings.Builder
	rep.Print(&figures, 100)
	t.Log(figures.String())
	waitReaped(t, w) // Settled gives the kernel 5 s; the reaper's batches may take longer on a loaded machine
	if _, leaks := reliability.Settled(t, w, c); len(leaks) > 0 {
		t.Errorf("after the removals: %q", leaks)
	}
	after := snapshot(t, w)
	if after.Rules != before.Rules || len(after.Netns) != 0 || len(after.Ports) != 0 {
		t.Errorf("host after the storm: ports %q, netns %q, rules changed %v", after.Ports, after.Netns, after.Rules != before.Rules)
	}
}
