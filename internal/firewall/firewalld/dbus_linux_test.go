package firewalld

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
)

// zoneOf asks the test's firewalld which zone iface is in ("no zone": "").
func zoneOf(t *testing.T, fwd *nstest.Firewalld, iface string) string {
	t.Helper()
	out, _ := fwd.Cmd("--get-zone-of-interface=" + iface)
	if out = strings.TrimSpace(out); out == "no zone" {
		return ""
	}
	return out
}

// eventually waits up to 10 s for iface to be in zone.
func eventually(t *testing.T, fwd *nstest.Firewalld, iface, zone, when string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if zoneOf(t, fwd, iface) == zone {
			return
		}
	}
	t.Errorf("%s: %s is in zone %q, want %q", when, iface, zoneOf(t, fwd, iface), zone)
}

// TestFirewalldZones drives a real firewalld (its own bus, in the test's
// namespace): bridges are bound to the trusted zone and unbound with
// their network, an administrator's zone is left alone, a reload and a
// restart of firewalld (both forget runtime bindings) are followed by
// the bindings again, and a client for another namespace touches
// nothing.
func TestFirewalldZones(t *testing.T) {
	ns := nstest.New(t)
	fwd := nstest.StartFirewalld(t, ns)
	c, err := Dial(fwd.Bus, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Managed() {
		t.Fatal("a firewalld in the client's namespace is not managed")
	}
	z := NewZoner(firewall.NewFake(), c, nil)
	c.OnChange(z.Resync)
	ctx := context.Background()
	fwd.MustCmd("--zone=internal", "--add-interface=br-adm")
	if err := z.Rebuild(ctx, nets("berth0", "br-adm")); err != nil {
		t.Fatal(err)
	}
	if err := z.AddNetwork(ctx, network("br-z")); err != nil {
		t.Fatal(err)
	}
	for iface, want := range map[string]string{"berth0": Zone, "br-z": Zone, "br-adm": "internal"} {
		if got := zoneOf(t, fwd, iface); got != want {
			t.Errorf("%s in zone %q, want %q", iface, got, want)
		}
	}
	if ruleset := fwd.MustCmd("--zone=trusted", "--list-interfaces"); !strings.Contains(ruleset, "br-z") {
		t.Errorf("trusted zone's interfaces: %q", ruleset)
	}

	fwd.MustCmd("--reload") // forgets runtime bindings, the administrator's too
	eventually(t, fwd, "br-z", Zone, "after a reload")
	eventually(t, fwd, "berth0", Zone, "after a reload")

	fwd.Stop()
	fwd.Start()
	eventually(t, fwd, "br-z", Zone, "after a restart")

	if err := z.DelNetwork(ctx, network("br-z")); err != nil {
		t.Fatal(err)
	}
	if got := zoneOf(t, fwd, "br-z"); got != "" {
		t.Errorf("br-z in zone %q after its network went", got)
	}

	// A daemon in another namespace leaves this firewalld alone.
	other, err := Dial(fwd.Bus, nstest.New(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Managed() {
		t.Error("a firewalld of another namespace is managed")
	}
	z2 := NewZoner(firewall.NewFake(), other, nil)
	if err := z2.AddNetwork(ctx, network("br-other")); err != nil {
		t.Fatal(err)
	}
	if got := zoneOf(t, fwd, "br-other"); got != "" {
		t.Errorf("a client for another namespace bound br-other to %q", got)
	}
}
