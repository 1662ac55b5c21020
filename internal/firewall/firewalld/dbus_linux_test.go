package firewalld

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/godbus/dbus/v5"
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

// eventually waits up to 15 s for iface to be in zone.
func eventually(t *testing.T, fwd *nstest.Firewalld, iface, zone, when string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if zoneOf(t, fwd, iface) == zone {
			return
		}
	}
	t.Errorf("%s: %s is in zone %q, want %q", when, iface, zoneOf(t, fwd, iface), zone)
}

// start runs a client and a zoner for ns against fwd until stop is
// called or the test ends.
func start(t *testing.T, fwd *nstest.Firewalld, ns string) (c *Client, z *Zoner, stop func()) {
	t.Helper()
	c, err := NewClient(fwd.Bus, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	z = NewZoner(firewall.NewFake(), c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go z.Run(ctx)
	go c.Run(ctx, z.Kick)
	return c, z, cancel
}

// TestFirewalldZones drives a real firewalld (its own bus, in the test's
// namespace): bridges are bound to the trusted zone and unbound with
// their network, an administrator's zone is left alone, a reload and a
// restart of firewalld (both forget runtime bindings) are followed by
// the bindings again, signals that any process can send change nothing,
// and a client for another namespace touches nothing.
func TestFirewalldZones(t *testing.T) {
	ns := nstest.New(t)
	fwd := nstest.StartFirewalld(t, ns)
	c, z, stop := start(t, fwd, ns)
	ctx := context.Background()
	fwd.MustCmd("--zone=internal", "--add-interface=br-adm")
	if err := z.Rebuild(ctx, nets("berth0", "br-adm")); err != nil {
		t.Fatal(err)
	}
	if err := z.AddNetwork(ctx, network("br-z")); err != nil {
		t.Fatal(err)
	}
	eventually(t, fwd, "berth0", Zone, "after the rebuild")
	eventually(t, fwd, "br-z", Zone, "after the network's add")
	if got := zoneOf(t, fwd, "br-adm"); got != "internal" {
		t.Errorf("br-adm in zone %q, want the administrator's internal", got)
	}
	if !c.Managed() {
		t.Error("a firewalld in the client's namespace is not managed")
	}

	// Anyone may emit a signal: a forged "firewalld went away" and a
	// forged reload from another connection are ignored.
	forger, err := dbus.Connect(fwd.Bus)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	if err := forger.Emit(dbus.ObjectPath("/org/freedesktop/DBus"), busDaemon+".NameOwnerChanged", busName, ":1.1", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if !c.Managed() {
		t.Error("a forged NameOwnerChanged from another connection made firewalld unmanaged")
	}

	fwd.MustCmd("--reload") // forgets runtime bindings, the administrator's too
	eventually(t, fwd, "br-z", Zone, "after a reload")
	eventually(t, fwd, "berth0", Zone, "after a reload")
	if c.ReloadedAt().IsZero() {
		t.Error("the reload was not recorded")
	}

	fwd.Stop()
	fwd.Start()
	eventually(t, fwd, "br-z", Zone, "after a restart")
	fwd.MustCmd("--reload") // the new firewalld's reloads are heard too
	eventually(t, fwd, "br-z", Zone, "after a reload of the restarted firewalld")

	if err := z.DelNetwork(ctx, network("br-z")); err != nil {
		t.Fatal(err)
	}
	eventually(t, fwd, "br-z", "", "after its network went")

	// A daemon started again (a new client and zoner) takes the bridges
	// in the trusted zone as its own, and unbinds them with their network.
	stop()
	_, z2, _ := start(t, fwd, ns)
	if err := z2.Rebuild(ctx, nets("berth0")); err != nil {
		t.Fatal(err)
	}
	if err := z2.DelNetwork(ctx, network("berth0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, fwd, "berth0", "", "after its network went, from a new daemon")

	// A daemon in another namespace leaves this firewalld alone.
	other, z3, _ := start(t, fwd, nstest.New(t))
	if err := z3.AddNetwork(ctx, network("br-other")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := zoneOf(t, fwd, "br-other"); got != "" || other.Managed() {
		t.Errorf("a client for another namespace bound br-other to %q (managed %v)", got, other.Managed())
	}
}

// TestBusThatNeverAnswers: a bus that takes the connection and says
// nothing holds up no network operation.
func TestBusThatNeverAnswers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bus")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	defer func() {
		l.Close()
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	c, err := NewClient("unix:path="+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	z := NewZoner(firewall.NewFake(), c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go z.Run(ctx)
	go c.Run(ctx, z.Kick)
	done := make(chan error, 1)
	go func() {
		err := z.Rebuild(ctx, nets("berth0"))
		if err == nil {
			err = z.AddNetwork(ctx, network("br-a"))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("network operations waited for a bus that never answers")
	}
	if c.Managed() {
		t.Error("managed, with no firewalld")
	}
}

// TestFirewalldFailedState: a firewalld whose configuration did not load
// runs on its stock configuration in state FAILED, still rejecting what
// comes from an interface in no zone: berth binds its bridges there too,
// and again after the administrator mends the configuration and reloads.
func TestFirewalldFailedState(t *testing.T) {
	ns := nstest.New(t)
	bad := ""
	fwd := nstest.StartFirewalld(t, ns, func(etc string) {
		bad = filepath.Join(etc, "policies", "bad.xml")
		if err := os.MkdirAll(filepath.Dir(bad), 0o750); err != nil {
			t.Fatal(err)
		}
		policy := `<?xml version="1.0" encoding="utf-8"?><policy target="CONTINUE"><ingress-zone name="nosuchzone"/><egress-zone name="HOST"/></policy>`
		if err := os.WriteFile(bad, []byte(policy), 0o640); err != nil {
			t.Fatal(err)
		}
	})
	if out, _ := fwd.Cmd("--state"); strings.TrimSpace(out) != "failed" {
		t.Fatalf("firewalld's state with a bad policy: %q, want failed", out)
	}
	_, z, _ := start(t, fwd, ns)
	if err := z.AddNetwork(context.Background(), network("br-f")); err != nil {
		t.Fatal(err)
	}
	eventually(t, fwd, "br-f", Zone, "in state failed")
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	fwd.MustCmd("--reload")
	if out, _ := fwd.Cmd("--state"); strings.TrimSpace(out) != "running" {
		t.Errorf("firewalld's state after the fix: %q", out)
	}
	eventually(t, fwd, "br-f", Zone, "after the fix and a reload")
}
