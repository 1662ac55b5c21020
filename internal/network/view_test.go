package network

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/store"
)

// TestNetworkReadsDoNotWaitForWriters: listing and inspecting networks
// answer while a writer holds the controller's lock (as one does across a
// store write during a storm of runs).
func TestNetworkReadsDoNotWaitForWriters(t *testing.T) {
	r := newRig(t)
	r.c.mu.Lock()
	done := make(chan int)
	go func() {
		n, err := r.c.Network(NameBridge)
		if err != nil || n.Name != NameBridge {
			t.Errorf("Network(bridge) = %v, %v", n, err)
		}
		done <- len(r.c.Networks())
	}()
	select {
	case got := <-done:
		if got != 3 {
			t.Errorf("Networks() listed %d networks, want the 3 predefined", got)
		}
	case <-time.After(time.Minute): // a bound against a hang, not a speed assertion
		t.Error("Networks() waited for the writer's lock")
	}
	r.c.mu.Unlock()
}

// TestNetworkViewFollowsChanges: what was created, removed or warned
// about is what the next read shows.
func TestNetworkViewFollowsChanges(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Network("web"); err != nil {
		t.Errorf("Network(web) after create: %v", err)
	}
	names := func() []string {
		var out []string
		for _, n := range r.c.Networks() {
			out = append(out, n.Name)
		}
		return out
	}
	if got := names(); !equalStrings(got, []string{"bridge", "host", "none", "web"}) {
		t.Errorf("Networks() = %q after create", got)
	}
	// Copies handed out do not change the view.
	n, _ := r.c.Network("web")
	n.Name, n.Labels = "changed", map[string]string{"x": "y"}
	if _, err := r.c.Network("changed"); err == nil {
		t.Error("changing a returned network changed the controller's")
	}
	if err := r.c.RemoveNetwork(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Network("web"); err == nil {
		t.Error("Network(web) found it after remove")
	}
	if got := names(); !equalStrings(got, []string{"bridge", "host", "none"}) {
		t.Errorf("Networks() = %q after remove", got)
	}
	r.restart(t)
	if got := names(); !equalStrings(got, []string{"bridge", "host", "none"}) {
		t.Errorf("Networks() = %q after a restart", got)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRebuildFirewallWaitsForStart: a heal that comes before Start has
// loaded the records must not replace the table with an empty one.
func TestRebuildFirewallWaitsForStart(t *testing.T) {
	fw := &countingFirewall{Firewall: newFakeFirewall()}
	c := New(Config{Store: store.NewMemory(), Driver: newFakeDriver(), Sandboxes: newFakeSandboxes(), Firewall: fw})
	if err := c.RebuildFirewall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := fw.rebuilds(); n != 0 {
		t.Errorf("RebuildFirewall before Start rebuilt the table %d times", n)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := fw.rebuilds()
	if err := c.RebuildFirewall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fw.rebuilds() != before+1 {
		t.Errorf("RebuildFirewall after Start did not rebuild")
	}
}

// countingFirewall counts the rebuilds of the firewall it wraps.
type countingFirewall struct {
	firewall.Firewall
	mu sync.Mutex
	n  int
}

func (f *countingFirewall) Rebuild(ctx context.Context, nets []firewall.Network, ports ...firewall.PortMapping) error {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	return f.Firewall.Rebuild(ctx, nets, ports...)
}

func (f *countingFirewall) rebuilds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}
