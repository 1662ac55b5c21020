package network

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/store"
)

func (r *rig) defaultBridge(t *testing.T) *Network {
	t.Helper()
	n, err := r.c.Network("bridge")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDefaultBridgeDaemonOptions: dockerd's --bip, --fixed-cidr, --mtu,
// --icc, --ip-masq and --ip make the default bridge, at its creation and
// at a later start that finds it empty; with containers on it nothing
// changes until they are gone.
func TestDefaultBridgeDaemonOptions(t *testing.T) {
	r := newRig(t)
	if n := r.defaultBridge(t); n.IPv4.Subnet != mustPrefix("172.17.0.0/16") || n.Bridge.MTU != DefaultMTU {
		t.Fatalf("without options: %+v MTU %d", n.IPv4, n.Bridge.MTU)
	}
	opts := map[string]string{OptEnableICC: "false", OptEnableMasq: "false", OptHostBindingIPv4: "127.0.0.1", OptMTU: "1400"}
	r.tweak = func(c *Config) {
		c.DefaultBridgeOptions = opts
		c.DefaultBridgeBIP = mustPrefix("10.66.0.1/24")
		c.DefaultBridgeFixedCIDR = mustPrefix("10.66.0.128/25")
	}
	r.restart(t)
	n := r.defaultBridge(t)
	if n.IPv4.Subnet != mustPrefix("10.66.0.0/24") || n.IPv4.Gateway != netip.MustParseAddr("10.66.0.1") || n.IPv4.IPRange != mustPrefix("10.66.0.128/25") || n.IPv4.UserSubnet {
		t.Errorf("--bip 10.66.0.1/24 --fixed-cidr 10.66.0.128/25: %+v", n.IPv4)
	}
	if b := n.Bridge; b.EnableICC || b.EnableIPMasquerade || b.HostBindingIPv4 != netip.MustParseAddr("127.0.0.1") || b.MTU != 1400 {
		t.Errorf("options not applied: %+v", b)
	}
	if n.Options[OptMTU] != "1400" || n.Options[OptEnableICC] != "false" || n.Options[OptHostBindingIPv4] != "127.0.0.1" {
		t.Errorf("inspect's options: %v", n.Options)
	}
	if spec := r.drv.bridges["berth0"]; spec.Gateway != mustPrefix("10.66.0.1/24") || spec.MTU != 1400 {
		t.Errorf("bridge spec %+v", spec)
	}
	if spec := r.drv.bridges["berth0"]; !slices.Equal(spec.StaleGateways, []netip.Prefix{mustPrefix("172.17.0.1/16")}) {
		t.Errorf("the old gateway is not taken off the bridge: spec %+v", spec)
	}
	if r.drv.deleted != nil {
		t.Errorf("a --bip change deleted %v; the device stays, its old address goes", r.drv.deleted)
	}
	if n := r.defaultBridge(t); n.StaleGateways != nil {
		t.Errorf("the record keeps the stale gateways %v after EnsureBridge took them off", n.StaleGateways)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "c1"})
	if ep.Address != mustPrefix("10.66.0.128/24") || ep.Gateway != netip.MustParseAddr("10.66.0.1") {
		t.Errorf("container on the bridge: %v via %v, want the range's first, 10.66.0.128/24", ep.Address, ep.Gateway)
	}

	// Containers on it: the bridge keeps what it has.
	r.tweak = func(c *Config) { c.DefaultBridgeBIP = mustPrefix("10.77.0.1/16") }
	r.restart(t)
	if got := r.defaultBridge(t); got.IPv4.Subnet != mustPrefix("10.66.0.0/24") || got.Bridge.MTU != 1400 {
		t.Errorf("with a container on it the bridge changed: %+v MTU %d", got.IPv4, got.Bridge.MTU)
	}
	for _, sb := range r.c.sandboxesOf("c1") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}
	r.restart(t)
	n = r.defaultBridge(t)
	if n.IPv4.Subnet != mustPrefix("10.77.0.0/16") || n.IPv4.Gateway != netip.MustParseAddr("10.77.0.1") || n.IPv4.IPRange.IsValid() {
		t.Errorf("--bip 10.77.0.1/16 once empty: %+v", n.IPv4)
	}
	if !n.Bridge.EnableICC || !n.Bridge.EnableIPMasquerade || n.Bridge.MTU != DefaultMTU || n.Options[OptMTU] != "1500" {
		t.Errorf("options back to Docker's defaults: %+v %v", n.Bridge, n.Options)
	}
	if spec := r.drv.bridges["berth0"]; spec.Gateway != mustPrefix("10.77.0.1/16") || !slices.Equal(spec.StaleGateways, []netip.Prefix{mustPrefix("10.66.0.1/24")}) {
		t.Errorf("the bridge after the change: %+v", spec)
	}
	ep = r.join(t, r.sandbox(t, "c2"), "bridge", JoinRequest{ContainerID: "c2", Name: "c2"})
	if ep.Address != mustPrefix("10.77.0.2/16") {
		t.Errorf("container after the change: %v", ep.Address)
	}
	for _, sb := range r.c.sandboxesOf("c2") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}

	// --bip gone: the bridge keeps the subnet it has, as dockerd keeps
	// docker0's address.
	r.drv.deleted = nil
	r.tweak = nil
	r.restart(t)
	if got := r.defaultBridge(t).IPv4; got.Subnet != mustPrefix("10.77.0.0/16") {
		t.Errorf("without --bip: %+v, want the bridge's subnet kept", got)
	}
	if r.drv.deleted != nil {
		t.Errorf("a start that changed nothing deleted %v", r.drv.deleted)
	}
	if spec := r.drv.bridges["berth0"]; spec.StaleGateways != nil {
		t.Errorf("a start that changed nothing still takes %v off the bridge", spec.StaleGateways)
	}
	// --fixed-cidr inside the bridge's subnet narrows the range only;
	// outside it, it is the subnet.
	r.tweak = func(c *Config) { c.DefaultBridgeFixedCIDR = mustPrefix("10.77.5.0/24") }
	r.restart(t)
	if got := r.defaultBridge(t).IPv4; got.Subnet != mustPrefix("10.77.0.0/16") || got.IPRange != mustPrefix("10.77.5.0/24") || got.Gateway != netip.MustParseAddr("10.77.0.1") {
		t.Errorf("--fixed-cidr inside: %+v", got)
	}
	r.tweak = func(c *Config) { c.DefaultBridgeFixedCIDR = mustPrefix("10.88.0.0/24") }
	r.restart(t)
	if got := r.defaultBridge(t).IPv4; got.Subnet != mustPrefix("10.88.0.0/24") || got.IPRange != got.Subnet || got.Gateway != netip.MustParseAddr("10.88.0.1") {
		t.Errorf("--fixed-cidr outside: %+v", got)
	}
}

// TestDefaultBridgeFromTheDaemonsPools: with address pools of its own
// and no --bip, the default bridge takes its subnet from them (dockerd
// deletes docker0 and picks again), and keeps one that is from them.
func TestDefaultBridgeFromTheDaemonsPools(t *testing.T) {
	r := newRig(t)
	pools := []ipam.Pool{{Base: mustPrefix("10.200.0.0/16"), Size: 24}}
	r.tweak = func(c *Config) { c.Pools = pools }
	r.restart(t)
	n := r.defaultBridge(t)
	if n.IPv4.Subnet != mustPrefix("10.200.0.0/24") {
		t.Fatalf("default bridge with pools %v: %+v", pools, n.IPv4)
	}
	web, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if web.IPv4.Subnet != mustPrefix("10.200.1.0/24") {
		t.Errorf("a new network from the pools: %v", web.IPv4.Subnet)
	}
	r.restart(t)
	if got := r.defaultBridge(t).IPv4.Subnet; got != mustPrefix("10.200.0.0/24") {
		t.Errorf("a restart with the same pools moved the bridge to %v", got)
	}
	// Back to Docker's pools: the bridge keeps its subnet.
	r.tweak = nil
	r.restart(t)
	if got := r.defaultBridge(t).IPv4.Subnet; got != mustPrefix("10.200.0.0/24") {
		t.Errorf("Docker's pools again moved the bridge to %v", got)
	}
}

// TestDefaultBridgeOptionErrors: a --bip that another network holds
// stops the start of a daemon whose bridge is empty, as dockerd's does;
// an --mtu out of range too.
func TestDefaultBridgeOptionErrors(t *testing.T) {
	r := newRig(t)
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.9.0.0/16")}},
		Options: map[string]string{OptBridgeName: "br-web"}}); err != nil {
		t.Fatal(err)
	}
	r.c.Close()
	for name, tweak := range map[string]func(*Config){
		"bip overlaps":             func(c *Config) { c.DefaultBridgeBIP = mustPrefix("10.9.1.1/24") },
		"mtu":                      func(c *Config) { c.DefaultBridgeOptions = map[string]string{OptMTU: "20"} },
		"another network's bridge": func(c *Config) { c.DefaultBridgeName = "br-web" },
	} {
		cfg := Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, NewID: r.ids}
		tweak(&cfg)
		c := New(cfg)
		var se *SettingsError
		if err := c.Start(context.Background()); !errors.As(err, &se) {
			t.Errorf("%s: Start said %v, want a SettingsError (the daemon stops on it)", name, err)
		}
		c.Close()
	}
	r.c = nil
	r.tweak = nil
	r.restart(t)
	if got := r.defaultBridge(t).IPv4.Subnet; got != mustPrefix("172.17.0.0/16") {
		t.Errorf("after refused options the bridge is %v", got)
	}
}

// TestDefaultBridgeRenamed: a new --bridge-name makes the bridge under
// that name, and the old device goes (found by its owner tag, so a crash
// in between leaves it for the next start); an old device with ports
// that are not berth's was an administrator's bridge, and the start stops
// rather than take it apart.
func TestDefaultBridgeRenamed(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *Config) { c.DefaultBridgeName = "docker0" }
	r.restart(t)
	if n := r.defaultBridge(t); n.Bridge.Name != "docker0" || n.Options[OptBridgeName] != "docker0" {
		t.Errorf("renamed bridge: %+v %v", n.Bridge, n.Options)
	}
	if _, ok := r.drv.bridges["docker0"]; !ok || r.drv.deleted == nil || r.drv.deleted[0] != "berth0" {
		t.Errorf("bridges %v, deleted %v: want docker0 made and berth0 deleted", r.drv.bridges, r.drv.deleted)
	}

	// The administrator's bridge: adopted under its name, then given up.
	r.drv.foreignPorts = map[string]int{"docker0": 1}
	r.drv.deleted = nil
	r.tweak = nil
	r.c.Close()
	c := New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, NewID: r.ids})
	var se *SettingsError
	if err := c.Start(context.Background()); !errors.As(err, &se) {
		t.Errorf("renaming away from a bridge with a foreign port: %v, want a SettingsError", err)
	}
	c.Close()
	if r.drv.deleted != nil {
		t.Errorf("deleted %v, a bridge with a port that is not berth's", r.drv.deleted)
	}
	// What the error says to do works: the record still names docker0.
	r.c = nil
	r.tweak = func(c *Config) { c.DefaultBridgeName = "docker0" }
	r.restart(t)
	if n := r.defaultBridge(t); n.Bridge.Name != "docker0" {
		t.Errorf("with --bridge-name docker0 given again: %+v", n.Bridge)
	}
	r.tweak = nil
	r.c.Close()
	r.c = nil
	r.drv.foreignPorts = nil
	r.restart(t)
	if n := r.defaultBridge(t); n.Bridge.Name != "berth0" || r.drv.deleted[0] != "docker0" {
		t.Errorf("back to berth0: %+v, deleted %v", n.Bridge, r.drv.deleted)
	}
}

// TestDefaultBridgeNarrowedByPools: pools that cover the bridge's own
// subnet (a /16 cut into /24s) give it one of theirs; its own route is
// no host route in the way, as dockerd deletes docker0 before it picks.
func TestDefaultBridgeNarrowedByPools(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *Config) { c.Pools = []ipam.Pool{{Base: mustPrefix("172.17.0.0/16"), Size: 24}} }
	r.restart(t)
	n := r.defaultBridge(t)
	if n.IPv4.Subnet != mustPrefix("172.17.0.0/24") || n.IPv4.Gateway != netip.MustParseAddr("172.17.0.1") {
		t.Errorf("the bridge with pools of /24s in its /16: %+v", n.IPv4)
	}
	if spec := r.drv.bridges["berth0"]; spec.Gateway != mustPrefix("172.17.0.1/24") || !slices.Equal(spec.StaleGateways, []netip.Prefix{mustPrefix("172.17.0.1/16")}) {
		t.Errorf("bridge spec %+v: want 172.17.0.1/24, the /16 taken off", spec)
	}
}

// TestDefaultBridgeAfterAWipedDataRoot: a data-root wiped while the host
// kept its old default bridge (tagged for a network no record knows): the
// old device goes before the subnet is chosen, so the new bridge gets
// 172.17.0.0/16 again rather than being pushed off it by the old one's
// route (dockerd reuses docker0's address). An orphan with a port that
// is not berth's is an administrator's bridge, and stays.
func TestDefaultBridgeAfterAWipedDataRoot(t *testing.T) {
	r := newRig(t)
	r.c.Close()
	r.c = nil
	r.st = store.NewMemory() // the wiped data-root; the "kernel" keeps berth0
	r.drv.bridges["br-admin"] = BridgeSpec{Name: "br-admin", Gateway: mustPrefix("10.50.0.1/24")}
	r.drv.owners["br-admin"] = "network:" + strings.Repeat("ad", 32)
	r.drv.foreignPorts = map[string]int{"br-admin": 1}
	r.restart(t)
	if n := r.defaultBridge(t); n.IPv4.Subnet != mustPrefix("172.17.0.0/16") {
		t.Errorf("the default bridge after a wiped data-root: %v, want 172.17.0.0/16 again", n.IPv4.Subnet)
	}
	if !slices.Contains(r.drv.deleted, "berth0") || slices.Contains(r.drv.deleted, "br-admin") || !slices.Equal(r.drv.releasedBridges, []string{"br-admin"}) {
		t.Errorf("deleted %v, released %v: want the old berth0 deleted, the administrator's br-admin let go of", r.drv.deleted, r.drv.releasedBridges)
	}

	// The administrator's bridge was the default one (--bridge-name
	// br-admin): let go of, then adopted again by the new record.
	r.c.Close()
	r.c = nil
	r.st = store.NewMemory()
	r.drv.owners["br-admin"] = "network:" + strings.Repeat("ad", 32)
	r.tweak = func(c *Config) { c.DefaultBridgeName = "br-admin" }
	r.restart(t)
	n := r.defaultBridge(t)
	if r.drv.owners["br-admin"] != bridgeOwner(n.ID) {
		t.Errorf("br-admin after a wiped data-root is tagged %q, want the new default bridge's %q", r.drv.owners["br-admin"], bridgeOwner(n.ID))
	}
}

// TestDefaultBridgeStaleGatewaysKept: a gateway given up at a start whose
// kernel work never ran (a crash) stays recorded through a further
// change, so the start that does run takes both off the bridge.
func TestDefaultBridgeStaleGatewaysKept(t *testing.T) {
	r := newRig(t)
	r.c.Close()
	r.drv.failEnsure = errors.New("cut off")
	c := New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, NewID: r.ids, DefaultBridgeBIP: mustPrefix("10.66.0.1/24")})
	if err := c.Start(context.Background()); err == nil {
		t.Fatal("Start with EnsureBridge failing: no error")
	}
	c.Close()
	r.c = nil
	r.drv.failEnsure = nil
	r.tweak = func(c *Config) { c.DefaultBridgeBIP = mustPrefix("10.77.0.1/24") }
	r.restart(t)
	want := []netip.Prefix{mustPrefix("172.17.0.1/16"), mustPrefix("10.66.0.1/24")}
	if spec := r.drv.bridges["berth0"]; spec.Gateway != mustPrefix("10.77.0.1/24") || !slices.Equal(spec.StaleGateways, want) {
		t.Errorf("bridge spec %+v: want 10.77.0.1/24 with %v taken off", spec, want)
	}
	if n := r.defaultBridge(t); n.StaleGateways != nil {
		t.Errorf("stale gateways %v kept after they were taken off", n.StaleGateways)
	}
}

// TestDefaultBridgeOneOptionAlone: each option alone, changed on an empty
// default bridge at a start, is applied (a change is found per option,
// not only beside another one).
func TestDefaultBridgeOneOptionAlone(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts map[string]string
		ok   func(*Network) bool
	}{
		{"--mtu", map[string]string{OptMTU: "1400"}, func(n *Network) bool { return n.Bridge.MTU == 1400 }},
		{"--icc", map[string]string{OptEnableICC: "false"}, func(n *Network) bool { return !n.Bridge.EnableICC }},
		{"--ip-masq", map[string]string{OptEnableMasq: "false"}, func(n *Network) bool { return !n.Bridge.EnableIPMasquerade }},
		{"--ip", map[string]string{OptHostBindingIPv4: "127.0.0.1"}, func(n *Network) bool {
			return n.Bridge.HostBindingIPv4 == netip.MustParseAddr("127.0.0.1")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.defaultBridge(t)
			r.tweak = func(c *Config) { c.DefaultBridgeOptions = tc.opts }
			r.restart(t)
			if n := r.defaultBridge(t); !tc.ok(n) {
				t.Errorf("%s alone not applied: %+v", tc.name, n.Bridge)
			}
		})
	}
}

// TestDefaultBridgeUserManaged: dockerd's --bridge NAME puts the
// default bridge network on the administrator's device, with its address
// as the --bip (the daemon reads it), and marks the device as theirs
// (External): leaving it for berth's own bridge lets go of it, as it
// is, and the default bridge takes a subnet of the pools again instead
// of keeping the one the administrator's address gave it.
func TestDefaultBridgeUserManaged(t *testing.T) {
	r := newRig(t)
	r.drv.foreign = map[string]bool{"br-admin": true}
	r.tweak = func(c *Config) {
		c.DefaultBridgeName, c.DefaultBridgeUserManaged = "br-admin", true
		c.DefaultBridgeBIP = mustPrefix("10.50.0.1/24")
	}
	r.restart(t)
	n := r.defaultBridge(t)
	if n.Bridge.Name != "br-admin" || !n.Bridge.External || n.IPv4.Subnet != mustPrefix("10.50.0.0/24") || n.IPv4.Gateway != netip.MustParseAddr("10.50.0.1") {
		t.Fatalf("--bridge br-admin: %+v %+v", n.Bridge, n.IPv4)
	}
	if !slices.Contains(r.drv.deleted, "berth0") {
		t.Errorf("berth's own berth0 was not deleted for the administrator's bridge: deleted %v", r.drv.deleted)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "c1"})
	if ep.Address != mustPrefix("10.50.0.2/24") || ep.Gateway != netip.MustParseAddr("10.50.0.1") {
		t.Errorf("a container on br-admin: %v via %v", ep.Address, ep.Gateway)
	}
	r.restart(t) // the same settings: nothing changes
	if got := r.defaultBridge(t); got.ID != n.ID || got.IPv4.Subnet != n.IPv4.Subnet || !got.Bridge.External {
		t.Errorf("a restart with the same --bridge: %+v %+v", got.Bridge, got.IPv4)
	}
	for _, sb := range r.c.sandboxesOf("c1") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}

	// The administrator's device gives another address (their order
	// changed, a --fixed-cidr picks another): the network follows it,
	// and berth takes none of theirs off the device.
	r.tweak = func(c *Config) {
		c.DefaultBridgeName, c.DefaultBridgeUserManaged = "br-admin", true
		c.DefaultBridgeBIP = mustPrefix("10.60.0.1/24")
	}
	r.restart(t)
	if got := r.defaultBridge(t); got.IPv4.Subnet != mustPrefix("10.60.0.0/24") || got.StaleGateways != nil || r.drv.bridges["br-admin"].StaleGateways != nil {
		t.Errorf("br-admin's other address: %+v, stale %v / %v; want 10.60.0.0/24 and none of the administrator's addresses taken off", got.IPv4, got.StaleGateways, r.drv.bridges["br-admin"].StaleGateways)
	}
	// Without an address on it (the administrator took it off), a subnet
	// of the pools, not the one recorded, as dockerd's selectBIP.
	r.tweak = func(c *Config) { c.DefaultBridgeName, c.DefaultBridgeUserManaged = "br-admin", true }
	r.restart(t)
	if got := r.defaultBridge(t); got.IPv4.Subnet != mustPrefix("172.17.0.0/16") {
		t.Errorf("br-admin without an address: %+v, want a subnet of the pools", got.IPv4)
	}

	// --bridge dropped, with the administrator's uplink on br-admin:
	// berth0 again, from the pools, br-admin let go of. The gateway berth
	// put on it stays with it, as dockerd leaves it, so its subnet is
	// routed there: berth0 takes the pools' next.
	r.drv.deleted = nil
	r.drv.foreignPorts = map[string]int{"br-admin": 1}
	r.tweak = nil
	r.restart(t)
	n = r.defaultBridge(t)
	if n.Bridge.Name != "berth0" || n.Bridge.External || n.IPv4.Subnet != mustPrefix("172.18.0.0/16") {
		t.Errorf("--bridge dropped: %+v %+v, want berth0 on 172.18.0.0/16", n.Bridge, n.IPv4)
	}
	if slices.Contains(r.drv.deleted, "br-admin") || !slices.Contains(r.drv.releasedBridges, "br-admin") {
		t.Errorf("deleted %v, released %v: want the administrator's br-admin let go of, not deleted", r.drv.deleted, r.drv.releasedBridges)
	}
}

// TestNoDefaultBridge: dockerd's --bridge none makes no default bridge
// network; one that exists goes at a start that finds no endpoint on it
// (with its device, berth's), and stays while a container is on it.
func TestNoDefaultBridge(t *testing.T) {
	r := &rig{st: store.NewMemory(), drv: newFakeDriver(), sbs: newFakeSandboxes(), fw: newFakeFirewall(), ids: seqIDs()}
	r.tweak = func(c *Config) { c.NoDefaultBridge = true }
	r.restart(t)
	if _, err := r.c.Network("bridge"); err == nil {
		t.Fatal("--bridge none on a first start made the default bridge network")
	}
	if _, err := r.c.Network("none"); err != nil {
		t.Errorf("--bridge none: %v; the none network is still made", err)
	}
	if len(r.drv.bridges) != 0 {
		t.Errorf("--bridge none made bridges %v", r.drv.bridges)
	}

	// Without it the network is made; with a container on it, --bridge
	// none leaves it until the container is gone.
	r.tweak = nil
	r.restart(t)
	id := r.defaultBridge(t).ID
	r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "c1"})
	r.tweak = func(c *Config) { c.NoDefaultBridge = true }
	r.restart(t)
	if n := r.defaultBridge(t); n.ID != id {
		t.Errorf("with a container on it the default bridge changed: %s", n.ID)
	}
	for _, sb := range r.c.sandboxesOf("c1") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}
	r.restart(t)
	if _, err := r.c.Network("bridge"); err == nil {
		t.Error("--bridge none: the empty default bridge network stayed")
	}
	if !slices.Contains(r.drv.deleted, "berth0") || r.fw.has("berth0") {
		t.Errorf("deleted %v, firewall has it %t: want berth0 and its rules gone", r.drv.deleted, r.fw.has("berth0"))
	}
	if err := r.st.View(func(tx store.Tx) error {
		var raw []byte
		return tx.Get(store.BucketNetworks, id, &raw)
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the default bridge's record: %v, want it gone", err)
	}

	// And back: a new default bridge network.
	r.tweak = nil
	r.restart(t)
	n := r.defaultBridge(t)
	if n.ID == id || n.IPv4.Subnet != mustPrefix("172.17.0.0/16") {
		t.Errorf("the default bridge made again: %s %+v", n.ID, n.IPv4)
	}

	// --bridge none's removal cut off after its mark (a crash): a start
	// without the option finishes it and makes the default bridge again.
	n.Removing = true
	if err := r.c.putNetwork(n); err != nil {
		t.Fatal(err)
	}
	r.restart(t)
	got := r.defaultBridge(t)
	if got.ID == n.ID || got.IPv4.Subnet != mustPrefix("172.17.0.0/16") {
		t.Errorf("after a cut-off removal: %s %+v, want a new default bridge on 172.17.0.0/16", got.ID, got.IPv4)
	}

	// A removal whose teardown fails again: no second default bridge on
	// the device that the next start's teardown deletes; that start
	// finishes it and makes a new one.
	got.Removing = true
	if err := r.c.putNetwork(got); err != nil {
		t.Fatal(err)
	}
	r.drv.failDelete = errors.New("device busy")
	r.c.Close()
	r.c = New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, NewID: r.ids})
	if err := r.c.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "device busy") {
		t.Errorf("a start whose removal failed: %v", err)
	}
	if _, err := r.c.Network("bridge"); err == nil {
		t.Error("a default bridge was made beside the one whose removal failed")
	}
	r.restart(t)
	if again := r.defaultBridge(t); again.ID == got.ID || r.drv.bridges["berth0"].Name != "berth0" {
		t.Errorf("the start after: %s, bridges %v", again.ID, r.drv.bridges)
	}
}

// TestUserManagedBridgeHostAccessFollowsTheRecord: the administrator's
// device is open to the host's services for as long as the default
// bridge is on it, a start that keeps it there for a container (the
// --bridge dropped, the change pending) included; berth's own bridge
// kept for a container while --bridge names another stays closed.
func TestUserManagedBridgeHostAccessFollowsTheRecord(t *testing.T) {
	r := newRig(t)
	r.drv.foreign = map[string]bool{"br-admin": true}
	admin := func(c *Config) {
		c.DefaultBridgeName, c.DefaultBridgeUserManaged = "br-admin", true
		c.DefaultBridgeBIP = mustPrefix("10.50.0.1/24")
	}
	// berth0 with a container; --bridge given: pending, still closed.
	r.join(t, r.sandbox(t, "c0"), "bridge", JoinRequest{ContainerID: "c0", Name: "c0"})
	r.tweak = admin
	r.restart(t)
	if n := r.defaultBridge(t); n.Bridge.Name != "berth0" || n.Bridge.HostAccess || r.fw.nets["berth0"].HostAccess {
		t.Errorf("berth0 kept for a container under --bridge br-admin: %+v, firewall %+v", n.Bridge, r.fw.nets["berth0"])
	}
	for _, sb := range r.c.sandboxesOf("c0") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}
	r.restart(t)
	r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "c1"})
	for name, tweak := range map[string]func(*Config){"--bridge dropped": nil, "--bridge none": func(c *Config) { c.NoDefaultBridge = true }} {
		r.tweak = tweak
		r.restart(t)
		n := r.defaultBridge(t)
		if n.Bridge.Name != "br-admin" || !n.Bridge.HostAccess || !r.fw.nets["br-admin"].HostAccess {
			t.Errorf("%s with a container on br-admin: %+v, firewall %+v; want it kept, open", name, n.Bridge, r.fw.nets["br-admin"])
		}
	}
}
