package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/store"
)

type rig struct {
	c   *Controller
	st  store.Store
	drv *fakeDriver
	sbs *fakeSandboxes
	fw  *fakeFirewall
	ids func() string
	// tweak, if set, changes the Config of every (re)start.
	tweak func(*Config)
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{st: store.NewMemory(), drv: newFakeDriver(), sbs: newFakeSandboxes(), fw: newFakeFirewall(), ids: seqIDs()}
	r.restart(t)
	return r
}

// restart makes a new controller over the same store and "kernel", as a
// daemon restart would, and starts it.
func (r *rig) restart(t *testing.T) {
	t.Helper()
	if r.c != nil {
		r.c.Close()
	}
	cfg := Config{
		Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw,
		Nameservers: []netip.Addr{netip.MustParseAddr("10.255.255.53")},
		NewID:       r.ids,
		Now:         func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	}
	if r.tweak != nil {
		r.tweak(&cfg)
	}
	r.c = New(cfg)
	if err := r.c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func (r *rig) sandbox(t *testing.T, ctr string) *Sandbox {
	t.Helper()
	sb, err := r.c.CreateSandbox(context.Background(), ctr, false)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func (r *rig) join(t *testing.T, sb *Sandbox, net string, req JoinRequest) *Endpoint {
	t.Helper()
	ep, err := r.c.Join(context.Background(), sb.ID, net, req)
	if err != nil {
		t.Fatalf("Join %s: %v", net, err)
	}
	return ep
}

func (r *rig) snapshot(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := r.st.View(func(tx store.Tx) error {
		for _, b := range []string{store.BucketNetworks, store.BucketEndpoints, store.BucketSandboxes} {
			if err := tx.ForEach(b, func(k string, raw []byte) error {
				out[b] = append(out[b], k+"="+string(raw))
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestPredefinedNetworks(t *testing.T) {
	r := newRig(t)
	byName := map[string]*Network{}
	for _, n := range r.c.Networks() {
		byName[n.Name] = n
	}
	if len(byName) != 3 {
		t.Fatalf("networks = %v, want bridge, host, none", byName)
	}
	br := byName["bridge"]
	if br.Driver != "bridge" || br.IPv4.Subnet != mustPrefix("172.17.0.0/16") || br.IPv4.Gateway != netip.MustParseAddr("172.17.0.1") {
		t.Fatalf("bridge = %+v %+v", br, br.IPv4)
	}
	wantOpts := map[string]string{
		"com.docker.network.bridge.default_bridge":       "true",
		"com.docker.network.bridge.enable_icc":           "true",
		"com.docker.network.bridge.enable_ip_masquerade": "true",
		"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
		"com.docker.network.bridge.name":                 "berth0",
		"com.docker.network.driver.mtu":                  "1500",
	}
	for k, v := range wantOpts {
		if br.Options[k] != v {
			t.Errorf("bridge option %s = %q, want %q", k, br.Options[k], v)
		}
	}
	if byName["host"].Driver != "host" || byName["none"].Driver != "null" {
		t.Fatalf("host/none drivers wrong: %+v %+v", byName["host"], byName["none"])
	}
	if _, ok := r.drv.bridges["berth0"]; !ok || !r.fw.has("berth0") {
		t.Fatal("berth0 bridge or its rules missing")
	}
	before := r.snapshot(t)
	r.restart(t)
	if len(r.c.Networks()) != 3 || len(r.snapshot(t)[store.BucketNetworks]) != len(before[store.BucketNetworks]) {
		t.Fatal("restart duplicated the predefined networks")
	}
	for _, name := range []string{"bridge", "host", "none"} {
		if err := r.c.RemoveNetwork(context.Background(), name); !errdefs.Is(err, errdefs.KindForbidden) {
			t.Errorf("remove %s: err = %v, want forbidden", name, err)
		}
	}
}

// startOnHost starts a controller on a host with routes and
// nameservers, and returns it with its default bridge.
func startOnHost(t *testing.T, routes []netip.Prefix, nameservers ...netip.Addr) (*rig, *Network) {
	t.Helper()
	r := &rig{st: store.NewMemory(), drv: newFakeDriver(), sbs: newFakeSandboxes(), fw: newFakeFirewall(), ids: seqIDs()}
	r.drv.routes = routes
	r.c = New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, NewID: r.ids, Nameservers: nameservers})
	if err := r.c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	br, err := r.c.Network("bridge")
	if err != nil {
		t.Fatal(err)
	}
	return r, br
}

func TestDefaultBridgeAvoidsHostRoutesAndNameservers(t *testing.T) {
	_, br := startOnHost(t, []netip.Prefix{mustPrefix("172.17.5.0/24")}, netip.MustParseAddr("172.18.0.53"))
	if got := br.IPv4.Subnet; got != mustPrefix("172.19.0.0/16") {
		t.Fatalf("default bridge subnet = %s, want 172.19.0.0/16 (172.17 has a route, 172.18 a nameserver)", got)
	}
}

// A full-tunnel VPN's halves of the default route (0.0.0.0/1,
// 128.0.0.0/1) cover every pool, as the default route does: they are
// passed over, while a narrower route through the same tunnel is still
// avoided. The halves once made every pool overlap and the daemon's
// start fail.
func TestPoolsIgnoreCatchAllRoutes(t *testing.T) {
	r, br := startOnHost(t, []netip.Prefix{mustPrefix("0.0.0.0/1"), mustPrefix("128.0.0.0/1"), mustPrefix("172.16.0.0/7"), mustPrefix("172.17.0.0/16")})
	if got := br.IPv4.Subnet; got != mustPrefix("172.18.0.0/16") {
		t.Fatalf("default bridge subnet = %s, want 172.18.0.0/16 (172.17 has a route; the /1s and /7 are catch-alls)", got)
	}
	if w := r.c.NoteHostRoute(HostRoute{Dst: mustPrefix("128.0.0.0/1"), Dev: "tun0", Table: 254}); len(w) != 0 {
		t.Errorf("a catch-all route warned: %q", w)
	}
	if w := r.c.NoteHostRoute(HostRoute{Dst: mustPrefix("172.18.0.0/8"), Dev: "tun0", Table: 254}); len(w) != 1 {
		t.Errorf("a /8 over the bridge's subnet: warnings %q, want one", w)
	}
}

func TestCreateNetworkPicksNextPoolAndLookup(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	web, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web", Labels: map[string]string{"tier": "front"}})
	if err != nil {
		t.Fatal(err)
	}
	if web.IPv4.Subnet != mustPrefix("172.18.0.0/16") || web.IPv4.Gateway != netip.MustParseAddr("172.18.0.1") {
		t.Fatalf("web = %+v", web.IPv4)
	}
	if web.Bridge.Name != "br-"+web.ID[:12] || len(web.Options) != 0 {
		t.Fatalf("bridge name %q options %v", web.Bridge.Name, web.Options)
	}
	if _, ok := r.drv.bridges[web.Bridge.Name]; !ok || !r.fw.has(web.Bridge.Name) {
		t.Fatal("web's bridge or rules missing")
	}
	for _, ref := range []string{"web", web.ID, web.ID[:5]} {
		if n, err := r.c.Network(ref); err != nil || n.ID != web.ID {
			t.Errorf("Network(%q) = %v, %v", ref, n, err)
		}
	}
	if _, err := r.c.Network("nope"); !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "network nope not found" {
		t.Fatalf("Network(nope) err = %v", err)
	}
	db, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "db", IPAM: []IPAMRequest{{
		Subnet: mustPrefix("10.5.0.0/24"), IPRange: mustPrefix("10.5.0.128/25"), Gateway: netip.MustParseAddr("10.5.0.254")}},
		Internal: true, Options: map[string]string{OptEnableICC: "false", OptBridgeName: "db0"}})
	if err != nil {
		t.Fatal(err)
	}
	fw := r.fw.nets["db0"]
	if !fw.Internal || fw.ICC || fw.Masquerade || fw.Subnet != mustPrefix("10.5.0.0/24") {
		t.Fatalf("firewall view of db = %+v", fw)
	}
	if r.drv.bridges["db0"].Gateway != mustPrefix("10.5.0.254/24") {
		t.Fatalf("db0 gateway = %v", r.drv.bridges["db0"].Gateway)
	}
	// Internal: no default route; ip-range: first address from the range.
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "db", JoinRequest{ContainerID: "c1", Name: "c1"})
	if ep.Address != mustPrefix("10.5.0.128/24") || ep.Gateway.IsValid() {
		t.Fatalf("endpoint on internal network = %v gw %v", ep.Address, ep.Gateway)
	}
	_ = db
}

func TestCreateNetworkBadRequestsLeaveStateUnchanged(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "taken", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.9.0.0/16")}}}); err != nil {
		t.Fatal(err)
	}
	before := r.snapshot(t)
	for _, tc := range []struct {
		name string
		req  CreateRequest
		kind errdefs.Kind
	}{
		{"empty name", CreateRequest{}, errdefs.KindInvalid},
		{"blank name", CreateRequest{Name: " \t"}, errdefs.KindInvalid},
		{"line break in name", CreateRequest{Name: "a\nb"}, errdefs.KindInvalid},
		{"duplicate", CreateRequest{Name: "taken"}, errdefs.KindConflict},
		{"predefined (moby's PredefinedNetworkError)", CreateRequest{Name: "bridge"}, errdefs.KindForbidden},
		{"predefined default", CreateRequest{Name: "default"}, errdefs.KindForbidden},
		{"unknown driver", CreateRequest{Name: "x", Driver: "overlayish"}, errdefs.KindNotFound},
		{"second host", CreateRequest{Name: "x", Driver: "host"}, errdefs.KindForbidden},
		{"second null", CreateRequest{Name: "x", Driver: "null"}, errdefs.KindForbidden},
		{"two IPv6 subnets", CreateRequest{Name: "x", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:1::/64")}, {Subnet: mustPrefix("fd00:2::/64")}}}, errdefs.KindForbidden},
		{"ipam driver", CreateRequest{Name: "x", IPAMDriver: "dhcp"}, errdefs.KindInvalid},
		{"two subnets (moby: Forbidden)", CreateRequest{Name: "x", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.1.0.0/24")}, {Subnet: mustPrefix("10.2.0.0/24")}}}, errdefs.KindForbidden},
		{"overlap", CreateRequest{Name: "x", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.9.3.0/24")}}}, errdefs.KindForbidden},
		{"overlap default bridge", CreateRequest{Name: "x", IPAM: []IPAMRequest{{Subnet: mustPrefix("172.16.0.0/12")}}}, errdefs.KindForbidden},
		{"gateway outside", CreateRequest{Name: "x", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.2.0.1")}}}, errdefs.KindInvalid},
		{"range outside", CreateRequest{Name: "x", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.1.0.0/24"), IPRange: mustPrefix("10.1.1.0/25")}}}, errdefs.KindInvalid},
		{"gateway without subnet", CreateRequest{Name: "x", IPAM: []IPAMRequest{{Gateway: netip.MustParseAddr("10.2.0.1")}}}, errdefs.KindInvalid},
		{"moby option berth does not implement", CreateRequest{Name: "x", Options: map[string]string{"com.docker.network.bridge.default_bridge": "true"}}, errdefs.KindInvalid},
		{"unknown option with a value that is wrong", CreateRequest{Name: "x", Options: map[string]string{"com.docker.network.bridge.nme": "x", OptEnableICC: "maybe"}}, errdefs.KindInvalid},
		{"bad mtu", CreateRequest{Name: "x", Options: map[string]string{OptMTU: "9"}}, errdefs.KindInvalid},
		{"bridge name too long", CreateRequest{Name: "x", Options: map[string]string{OptBridgeName: "abcdefghijklmnop"}}, errdefs.KindInvalid},
		{"bridge name taken", CreateRequest{Name: "x", Options: map[string]string{OptBridgeName: "berth0"}}, errdefs.KindConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.c.CreateNetwork(ctx, tc.req)
			if err == nil || errdefs.KindOf(err) != tc.kind {
				t.Fatalf("err = %v (kind %v), want kind %v", err, errdefs.KindOf(err), tc.kind)
			}
			if strings.HasPrefix(tc.name, "overlap") && !strings.HasPrefix(err.Error(), "invalid pool request: Pool overlaps with other one on this address space: ") {
				t.Errorf("overlap error %q: want moby's words first", err)
			}
			after := r.snapshot(t)
			if len(after[store.BucketNetworks]) != len(before[store.BucketNetworks]) {
				t.Fatalf("store changed: %d networks, want %d", len(after[store.BucketNetworks]), len(before[store.BucketNetworks]))
			}
		})
	}
}

// Options the bridge driver does not know are taken and kept (inspect
// shows them, a restart keeps them) and have no effect, as in moby; the
// create's answer warns of each, by name and in order, and only it.
func TestUnknownNetworkOptionsAreKeptWithAWarning(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	opts := map[string]string{"com.docker.network.bridge.nme": "x", "a.b": "1", OptEnableICC: "false"}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`network option "a.b" is not one berth's bridge driver knows: it is kept and has no effect`,
		`network option "com.docker.network.bridge.nme" is not one berth's bridge driver knows: it is kept and has no effect`,
	}
	if !slices.Equal(n.Warnings, want) {
		t.Errorf("create's warnings %q, want %q", n.Warnings, want)
	}
	if n.Bridge.EnableICC || n.Bridge.Name == "x" {
		t.Errorf("bridge config %+v: want icc off (a known option) and the generated bridge name", n.Bridge)
	}
	r.restart(t)
	got, err := r.c.Network("web")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.Options, opts) {
		t.Errorf("options after a restart %v, want %v", got.Options, opts)
	}
	if len(got.Warnings) != 0 {
		t.Errorf("inspect's warnings %q, want none: the create's answer alone has them", got.Warnings)
	}
}

func TestJoinLeaveAddresses(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	sb1, sb2, sb3 := r.sandbox(t, "c1"), r.sandbox(t, "c2"), r.sandbox(t, "c3")
	ep1 := r.join(t, sb1, "bridge", JoinRequest{ContainerID: "c1", Name: "one"})
	ep2 := r.join(t, sb2, "bridge", JoinRequest{ContainerID: "c2", Name: "two"})
	if ep1.Address != mustPrefix("172.17.0.2/16") || ep2.Address != mustPrefix("172.17.0.3/16") {
		t.Fatalf("addresses %v %v, want .2 and .3", ep1.Address, ep2.Address)
	}
	if ep1.IfName != "eth0" || ep1.Gateway != netip.MustParseAddr("172.17.0.1") || ep1.State != EndpointReady {
		t.Fatalf("ep1 = %+v", ep1)
	}
	if ep1.MAC[0]&0x03 != 0x02 || len(ep1.HostIfName) != 11 || ep1.HostIfName[:4] != "veth" {
		t.Fatalf("MAC %v or host name %q not Docker's form", ep1.MAC, ep1.HostIfName)
	}
	if _, err := r.c.Join(ctx, sb1.ID, "bridge", JoinRequest{Name: "one"}); !errdefs.Is(err, errdefs.KindForbidden) {
		t.Fatalf("second join to bridge: %v", err)
	}
	if err := r.c.Leave(ctx, sb1.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	// lowest free first: .2 comes back
	ep3 := r.join(t, sb3, "bridge", JoinRequest{ContainerID: "c3", Name: "three"})
	if ep3.Address != mustPrefix("172.17.0.2/16") {
		t.Fatalf("after release got %v, want 172.17.0.2/16", ep3.Address)
	}
	// a second network becomes eth1
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.7.0.0/24")}}}); err != nil {
		t.Fatal(err)
	}
	ep4 := r.join(t, sb3, "web", JoinRequest{ContainerID: "c3", Name: "three", IPv4: netip.MustParseAddr("10.7.0.50"), MAC: "02:42:0a:07:00:32"})
	if ep4.IfName != "eth1" || ep4.Address != mustPrefix("10.7.0.50/24") || ep4.MAC.String() != "02:42:0a:07:00:32" {
		t.Fatalf("ep4 = %+v", ep4)
	}
	atts := r.c.Attachments(sb3.ID)
	if len(atts) != 2 || atts[0].Network.Name != "bridge" || atts[1].Network.Name != "web" {
		t.Fatalf("attachments = %+v", atts)
	}
	if got := r.c.Addresses(sb3.ID); len(got) != 2 || got[0] != ep3.Address.Addr() || got[1] != ep4.Address.Addr() {
		t.Fatalf("Addresses = %v, want %v then %v (interface order)", got, ep3.Address.Addr(), ep4.Address.Addr())
	}
	err := r.c.RemoveNetwork(ctx, "web")
	if want := fmt.Sprintf(`error while removing network: network web has active endpoints (name:"three" id:%q)`, ep4.ID[:12]); !errdefs.Is(err, errdefs.KindForbidden) || err.Error() != want {
		t.Fatalf("remove network with endpoint: %v, want %q (libnetwork's words)", err, want)
	}
	if err := r.c.DeleteSandbox(ctx, sb3.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.c.DeleteSandbox(ctx, sb3.ID); err != nil {
		t.Fatalf("second DeleteSandbox: %v", err)
	}
	if err := r.c.RemoveNetwork(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if names := r.drv.vethNames(); len(names) != 1 || names[0] != ep2.HostIfName {
		t.Fatalf("veths left = %v, want only %s", names, ep2.HostIfName)
	}
}

func TestJoinBadRequests(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "tiny", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.8.0.0/30")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "auto"}); err != nil {
		t.Fatal(err)
	}
	full := r.sandbox(t, "c0")
	r.join(t, full, "tiny", JoinRequest{Name: "c0"}) // takes 10.8.0.2, the only one
	before := r.snapshot(t)
	sb := r.sandbox(t, "c1")
	before = r.snapshot(t)
	for _, tc := range []struct {
		name string
		net  string
		req  JoinRequest
		kind errdefs.Kind
	}{
		{"ip on bridge", "bridge", JoinRequest{IPv4: netip.MustParseAddr("172.17.0.9")}, errdefs.KindInvalid},
		{"ip outside a subnet from the pools", "auto", JoinRequest{IPv4: netip.MustParseAddr("10.99.0.9")}, errdefs.KindInvalid},
		{"ip outside subnet", "tiny", JoinRequest{IPv4: netip.MustParseAddr("10.9.0.2")}, errdefs.KindInvalid},
		{"ip is gateway", "tiny", JoinRequest{IPv4: netip.MustParseAddr("10.8.0.1")}, 0},
		{"ip in use", "tiny", JoinRequest{IPv4: netip.MustParseAddr("10.8.0.2")}, 0},
		{"exhausted", "tiny", JoinRequest{}, 0},
		{"bad mac", "bridge", JoinRequest{MAC: "zz:zz"}, errdefs.KindInvalid},
		{"multicast mac", "bridge", JoinRequest{MAC: "01:00:5e:00:00:01"}, errdefs.KindInvalid},
		{"unknown network", "nope", JoinRequest{}, errdefs.KindNotFound},
		{"ip on host", "host", JoinRequest{IPv4: netip.MustParseAddr("1.2.3.4")}, errdefs.KindForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.c.Join(ctx, sb.ID, tc.net, tc.req)
			if err == nil || (tc.kind != 0 && errdefs.KindOf(err) != tc.kind) {
				t.Fatalf("err = %v (kind %v), want kind %v", err, errdefs.KindOf(err), tc.kind)
			}
			if after := r.snapshot(t); len(after[store.BucketEndpoints]) != len(before[store.BucketEndpoints]) {
				t.Fatal("a failed join left an endpoint record")
			}
		})
	}
	// A full network is refused in moby's words, with the space's own
	// error in the chain.
	tiny, err := r.c.Network("tiny")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.c.Join(ctx, sb.ID, "tiny", JoinRequest{})
	if want := "no available IPv4 addresses on this network's address pools: tiny (" + tiny.ID + ")"; err == nil || err.Error() != want || !errors.Is(err, ipam.ErrNoAddress) {
		t.Errorf("join of a full network: %v, want %q wrapping ipam.ErrNoAddress", err, want)
	}
	// Docker 29.1: a network whose subnet came from the default pools
	// takes a static address in it, held from later dynamic ones.
	auto, err := r.c.Network("auto")
	if err != nil {
		t.Fatal(err)
	}
	static := auto.IPv4.Subnet.Addr().Next().Next().Next()
	ep := r.join(t, sb, "auto", JoinRequest{Name: "c1", IPv4: static})
	if ep.Address.Addr() != static || !ep.StaticIP {
		t.Errorf("--ip %s on auto: address %v static %v", static, ep.Address, ep.StaticIP)
	}
	dyn := r.join(t, r.sandbox(t, "c2"), "auto", JoinRequest{Name: "c2"})
	dyn2 := r.join(t, r.sandbox(t, "c3"), "auto", JoinRequest{Name: "c3"})
	if dyn.Address.Addr() == static || dyn2.Address.Addr() == static {
		t.Errorf("dynamic joins got %v and %v, one of them the static %v", dyn.Address, dyn2.Address, static)
	}
}

func TestJoinDriverFailureReleasesAddress(t *testing.T) {
	r := newRig(t)
	sb := r.sandbox(t, "c1")
	r.drv.failJoin = errdefs.Invalid("boom")
	if _, err := r.c.Join(context.Background(), sb.ID, "bridge", JoinRequest{Name: "c1"}); err == nil {
		t.Fatal("join succeeded with a failing driver")
	}
	r.drv.failJoin = nil
	ep := r.join(t, sb, "bridge", JoinRequest{Name: "c1"})
	if ep.Address != mustPrefix("172.17.0.2/16") {
		t.Fatalf("address after failed join = %v, want .2 (released)", ep.Address)
	}
}

// refusingStore is a store whose Record fails while refuse is set.
type refusingStore struct {
	store.Store
	refuse atomic.Bool
}

func (s *refusingStore) Record(fn func(store.Tx) error) (store.Durable, error) {
	if s.refuse.Load() {
		return nil, errors.New("disk full")
	}
	return s.Store.Record(fn)
}

// A join whose intent the store refuses makes nothing, and leaves its
// address free.
func TestJoinWhoseIntentTheStoreRefusesLeavesNothing(t *testing.T) {
	st := &refusingStore{Store: store.NewMemory()}
	r := &rig{st: st, drv: newFakeDriver(), sbs: newFakeSandboxes(), fw: newFakeFirewall(), ids: seqIDs()}
	r.restart(t)
	sb := r.sandbox(t, "c1")
	st.refuse.Store(true)
	if _, err := r.c.Join(context.Background(), sb.ID, "bridge", JoinRequest{Name: "c1"}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Join with the store refusing = %v, want its error", err)
	}
	st.refuse.Store(false)
	if len(r.drv.veths) != 0 {
		t.Errorf("veths left after the refused intent: %v", r.drv.veths)
	}
	if at := r.c.Attachments(sb.ID); len(at) != 0 {
		t.Errorf("endpoints left in the sandbox: %v", at)
	}
	ep := r.join(t, sb, "bridge", JoinRequest{Name: "c1"})
	if ep.Address != mustPrefix("172.17.0.2/16") {
		t.Fatalf("address after the refused join = %v, want .2 (released)", ep.Address)
	}
}

func TestRestartRollsBackHalfDoneWorkAndRemovesOrphans(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	sb := r.sandbox(t, "c1")
	kept := r.join(t, sb, "bridge", JoinRequest{Name: "c1"})
	// A crash in the middle of a disconnect: the "deleting" record, the
	// veth still there.
	half := &Endpoint{ID: r.ids(), NetworkID: kept.NetworkID, SandboxID: sb.ID, HostIfName: "vethdeadbee", IfName: "eth1",
		Address: mustPrefix("172.17.0.3/16"), State: EndpointDeleting}
	if err := r.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketEndpoints, half.ID, half) }); err != nil {
		t.Fatal(err)
	}
	r.drv.veths["vethdeadbee"] = EndpointSpec{HostIfName: "vethdeadbee", Bridge: "berth0"}
	r.drv.owners["vethdeadbee"] = endpointOwner(half.ID)
	// An orphan veth and namespace no record knows; a link someone else owns.
	r.drv.veths["vethorphan1"] = EndpointSpec{HostIfName: "vethorphan1", Bridge: "berth0"}
	r.drv.owners["vethorphan1"] = endpointOwner("ffff")
	r.drv.owners["eth9"] = "someone-else"
	r.sbs.ids["orphan-ns"] = true
	// The kept endpoint's veth vanished (someone deleted it).
	delete(r.drv.veths, kept.HostIfName)
	delete(r.drv.owners, kept.HostIfName)

	r.restart(t)

	if got := r.drv.vethNames(); len(got) != 1 || got[0] != kept.HostIfName {
		t.Fatalf("veths after restart = %v, want only the re-made %s", got, kept.HostIfName)
	}
	if _, ok := r.drv.owners["eth9"]; !ok {
		t.Fatal("restart removed a link berth does not own")
	}
	if ids, _ := r.sbs.List(); len(ids) != 1 || ids[0] != sb.ID {
		t.Fatalf("namespaces after restart = %v", ids)
	}
	sb2 := r.sandbox(t, "c2")
	if ep := r.join(t, sb2, "bridge", JoinRequest{Name: "c2"}); ep.Address != mustPrefix("172.17.0.3/16") {
		t.Fatalf("next address = %v, want .3 (the rolled-back one, freed)", ep.Address)
	}
	if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	if got := r.c.allocated(kept.NetworkID); len(got) != 1 {
		t.Fatalf("allocated = %v", got)
	}
}

// A crash after a connect's "creating" record (and perhaps some of its
// kernel work), before its "ready" mark reached the journal: the restart
// finishes the endpoint in a sandbox that is still there, and rolls back
// one with published ports (whose ports only ready endpoints get back) and
// one whose sandbox is gone.
func TestRestartFinishesCreatingEndpoints(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	live := r.sandbox(t, "c1")
	gone := r.sandbox(t, "c2")
	first := r.join(t, live, "bridge", JoinRequest{Name: "c1"})
	appNet, err := r.c.Network("app")
	if err != nil {
		t.Fatal(err)
	}
	creating := func(sb *Sandbox, netID, host, ifName, addr string, ports []PortMapping) *Endpoint {
		ep := &Endpoint{ID: r.ids(), Name: sb.ContainerID, NetworkID: netID, SandboxID: sb.ID, HostIfName: host, IfName: ifName,
			Address: mustPrefix(addr), MAC: net.HardwareAddr{2, 0x42, 10, 0, 0, 9}, State: EndpointCreating, Ports: ports}
		if err := r.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketEndpoints, ep.ID, ep) }); err != nil {
			t.Fatal(err)
		}
		return ep
	}
	subnet := appNet.IPv4.Subnet.Addr().As4()
	appAddr := netip.PrefixFrom(netip.AddrFrom4([4]byte{subnet[0], subnet[1], subnet[2], 9}), appNet.IPv4.Subnet.Bits()).String()
	finished := creating(live, appNet.ID, "vethfinish1", "eth1", appAddr, nil)
	withPorts := creating(live, first.NetworkID, "vethports01", "eth2", "172.17.0.9/16",
		[]PortMapping{{Proto: "tcp", Port: 80, HostPort: 8080}})
	orphaned := creating(gone, appNet.ID, "vethgone001", "eth1", strings.Replace(appAddr, ".9/", ".10/", 1), nil)
	delete(r.sbs.ids, gone.ID)

	r.restart(t)

	eps := map[string]*Endpoint{}
	for _, a := range r.c.Attachments(live.ID) {
		eps[a.Endpoint.ID] = a.Endpoint
	}
	if ep := eps[finished.ID]; ep == nil || ep.State != EndpointReady {
		t.Fatalf("creating endpoint in a live sandbox after restart = %+v, want it finished and ready", ep)
	}
	if _, ok := r.drv.veths["vethfinish1"]; !ok {
		t.Errorf("the finished endpoint has no veth: %v", r.drv.vethNames())
	}
	if eps[withPorts.ID] != nil || eps[orphaned.ID] != nil {
		t.Errorf("endpoints after restart = %v, want the one with ports and the one without a sandbox rolled back", eps)
	}
	// The ready mark is in the store (a second restart would finish a
	// creating endpoint again, so only the record itself can tell).
	var stored Endpoint
	if err := r.st.View(func(tx store.Tx) error { return tx.Get(store.BucketEndpoints, finished.ID, &stored) }); err != nil {
		t.Fatalf("the finished endpoint's record: %v", err)
	}
	if stored.State != EndpointReady {
		t.Errorf("the finished endpoint's record is %s, want ready", stored.State)
	}
}

func TestRestartForgetsSandboxesWhoseNamespaceIsGone(t *testing.T) {
	r := newRig(t)
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "bridge", JoinRequest{Name: "c1"})
	delete(r.sbs.ids, sb.ID) // a reboot cleared /run
	r.restart(t)
	if _, err := r.c.Sandbox(sb.ID); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("sandbox still known: %v", err)
	}
	if len(r.drv.vethNames()) != 0 {
		t.Fatalf("veth %s left behind", ep.HostIfName)
	}
}

func TestRemoveNetworkCrashIsFinishedOnRestart(t *testing.T) {
	r := newRig(t)
	n, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	n.Removing = true
	if err := r.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketNetworks, n.ID, n) }); err != nil {
		t.Fatal(err)
	}
	r.restart(t)
	if _, err := r.c.Network("web"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("network still there: %v", err)
	}
	if _, ok := r.drv.bridges[n.Bridge.Name]; ok || r.fw.has(n.Bridge.Name) {
		t.Fatal("bridge or rules left behind")
	}
}

func TestPruneNetworks(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, req := range []CreateRequest{
		{Name: "a", Labels: map[string]string{"env": "test"}},
		{Name: "b", Labels: map[string]string{"env": "prod"}},
		{Name: "c"},
	} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "x")
	r.join(t, sb, "c", JoinRequest{Name: "x"})
	got, err := r.c.PruneNetworks(ctx, PruneFilter{NotLabels: []string{"env"}})
	if err != nil || len(got) != 0 {
		t.Fatalf("prune label!=env = %v, %v (c, unlabelled, is in use)", got, err)
	}
	got, err = r.c.PruneNetworks(ctx, PruneFilter{Labels: []string{"env"}, NotLabels: []string{"env=prod"}})
	if err != nil || len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("prune label=env label!=env=prod = %v, %v", got, err)
	}
	got, err = r.c.PruneNetworks(ctx, PruneFilter{})
	if err != nil || len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("prune all = %v, %v (c is in use, predefined stay)", got, err)
	}
}

// until prunes only the networks created before it (moby's NetworksPrune).
func TestPruneNetworksUntil(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i, name := range []string{"old", "new"} {
		r.c.cfg.Now = func() time.Time { return t0.Add(time.Duration(i) * time.Hour) }
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.c.PruneNetworks(ctx, PruneFilter{Until: t0.Add(30 * time.Minute)})
	if err != nil || len(got) != 1 || got[0].Name != "old" {
		t.Fatalf("prune until=+30m = %v, %v, want old only", got, err)
	}
	got, err = r.c.PruneNetworks(ctx, PruneFilter{Until: t0.Add(time.Hour)})
	if err != nil || len(got) != 1 || got[0].Name != "new" {
		t.Fatalf("prune until=+1h = %v, %v, want new (created at that very time)", got, err)
	}
}

// JoinRequest.Record and LeaveAndRecord put the caller's record into the
// store with the endpoint's intent: present after a Join that got that far,
// absent when Join refuses the request before recording anything.
func TestJoinAndLeaveRecordCallersRecord(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	sb := r.sandbox(t, "c1")
	mark := func(v string) func(store.Tx) error {
		return func(tx store.Tx) error { return tx.Put(store.BucketContainers, "c1", v) }
	}
	stored := func() string {
		var v string
		if err := r.st.View(func(tx store.Tx) error { return tx.Get(store.BucketContainers, "c1", &v) }); err != nil {
			return ""
		}
		return v
	}
	if _, err := r.c.Join(ctx, sb.ID, "bridge", JoinRequest{ContainerID: "c1", IPv4: netip.MustParseAddr("172.17.0.9"), Record: mark("refused")}); err == nil {
		t.Fatal("a static address on bridge was accepted")
	}
	if got := stored(); got != "" {
		t.Fatalf("a refused Join recorded the caller's %q", got)
	}
	r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Record: mark("joined")})
	if got := stored(); got != "joined" {
		t.Fatalf("after Join the caller's record is %q, want joined", got)
	}
	if err := r.c.LeaveAndRecord(ctx, sb.ID, "bridge", mark("left")); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != "left" {
		t.Fatalf("after Leave the caller's record is %q, want left", got)
	}
}

// DeleteSandbox lets the driver drop what it holds in the namespace before
// the namespace file goes: a namespace the driver still held would outlive
// the container, with its veth ends.
func TestDeleteSandboxReleasesDriverHold(t *testing.T) {
	r := newRig(t)
	sb := r.sandbox(t, "c1")
	r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1"})
	if err := r.c.DeleteSandbox(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	r.drv.mu.Lock()
	defer r.drv.mu.Unlock()
	if !slices.Contains(r.drv.released, sb.Key) {
		t.Fatalf("DeleteSandbox released %q, want %q among them", r.drv.released, sb.Key)
	}
}

// A random host interface name that another endpoint already has is drawn
// again, not handed to the driver (which would refuse it).
func TestJoinDrawsAnotherHostIfNameOnARepeat(t *testing.T) {
	r := newRig(t)
	names := []string{"veth0000001", "veth0000001", "veth0000002"}
	r.c.mu.Lock()
	r.c.newIfName = func() string { n := names[0]; names = names[1:]; return n }
	r.c.mu.Unlock()
	ep1 := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1"})
	ep2 := r.join(t, r.sandbox(t, "c2"), "bridge", JoinRequest{ContainerID: "c2"})
	if ep1.HostIfName != "veth0000001" || ep2.HostIfName != "veth0000002" {
		t.Fatalf("host names %q and %q, want veth0000001 and the redrawn veth0000002", ep1.HostIfName, ep2.HostIfName)
	}
}

// An endpoint's "ready" mark reaches the journal with the next record the
// controller writes, or on its own after readyDelay, and never brings back
// an endpoint that left meanwhile.
func TestReadyMarkRidesOnTheNextRecord(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	stored := func(id string) EndpointState {
		t.Helper()
		var ep Endpoint
		err := r.st.View(func(tx store.Tx) error { return tx.Get(store.BucketEndpoints, id, &ep) })
		if errors.Is(err, store.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return ep.State
	}
	r.c.mu.Lock() // no flush by the timer while the first joins run
	r.c.ready.delay = time.Hour
	r.c.mu.Unlock()
	a := r.join(t, r.sandbox(t, "a"), "bridge", JoinRequest{Name: "a"})
	if got := stored(a.ID); got != EndpointCreating {
		t.Fatalf("right after Join the record says %q, want creating (the mark waits)", got)
	}
	b := r.join(t, r.sandbox(t, "b"), "bridge", JoinRequest{Name: "b"})
	if got := stored(a.ID); got != EndpointReady {
		t.Errorf("after the next Join the first record says %q, want ready", got)
	}
	r.c.flushReady()
	if got := stored(b.ID); got != EndpointReady {
		t.Errorf("after a flush the second record says %q, want ready", got)
	}
	// A leave right after the join: the queued mark must not resurrect it.
	csb := r.sandbox(t, "c")
	c := r.join(t, csb, "bridge", JoinRequest{Name: "c"})
	if err := r.c.Leave(ctx, csb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	r.c.flushReady()
	if got := stored(c.ID); got != "" {
		t.Errorf("an endpoint that left has record %q, want none", got)
	}
	// A mark still queued when its endpoint is gone or leaving (a record
	// that failed to carry it) is dropped, not written.
	gone := &Endpoint{ID: "gone", NetworkID: c.NetworkID, State: EndpointReady}
	leaving := r.join(t, r.sandbox(t, "e"), "bridge", JoinRequest{Name: "e"})
	r.c.mu.Lock()
	r.c.ready.pending[gone.ID] = gone
	r.c.endpoints[leaving.ID].State = EndpointDeleting
	r.c.mu.Unlock()
	r.c.flushReady()
	if got := stored(gone.ID); got != "" {
		t.Errorf("a queued mark of an endpoint no longer recorded wrote %q", got)
	}
	if got := stored(leaving.ID); got != EndpointCreating {
		t.Errorf("a queued mark of a leaving endpoint: record says %q, want creating (left to the Leave)", got)
	}
	r.c.mu.Lock()
	r.c.endpoints[leaving.ID].State = EndpointReady
	r.c.mu.Unlock()
	// On its own, the timer writes the mark.
	r.c.mu.Lock()
	r.c.ready.delay = readyDelay
	r.c.ready.timer.Reset(readyDelay)
	r.c.mu.Unlock()
	d := r.join(t, r.sandbox(t, "d"), "bridge", JoinRequest{Name: "d"})
	deadline := time.Now().Add(30 * time.Second)
	for stored(d.ID) != EndpointReady && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := stored(d.ID); got != EndpointReady {
		t.Errorf("readyDelay after a Join the record says %q, want ready", got)
	}
}

// An endpoint's MAC is 02:42 and its address unless the user gives one; a
// join announces itself (gratuitous ARP) only on a network where some
// endpoint ever had a MAC of its own, which is remembered across restarts.
func TestMACFromAddressAndAnnounce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	a := r.join(t, r.sandbox(t, "a"), "bridge", JoinRequest{Name: "a"})
	if a.Address != mustPrefix("172.17.0.2/16") || a.MAC.String() != "02:42:ac:11:00:02" || a.Announce {
		t.Errorf("first endpoint on bridge: %v %v announce=%v, want 172.17.0.2/16 02:42:ac:11:00:02 and no announcement", a.Address, a.MAC, a.Announce)
	}
	b := r.join(t, r.sandbox(t, "b"), "app", JoinRequest{Name: "b", MAC: "02:00:00:00:00:0b"})
	if b.MAC.String() != "02:00:00:00:00:0b" || !b.Announce {
		t.Errorf("endpoint with its own MAC: %v announce=%v, want 02:00:00:00:00:0b announced", b.MAC, b.Announce)
	}
	r.restart(t)
	c := r.join(t, r.sandbox(t, "c"), "app", JoinRequest{Name: "c"})
	if !bytes.Equal(c.MAC, MACFromAddress(c.Address.Addr())) || !c.Announce {
		t.Errorf("next endpoint on app after a restart: %v announce=%v, want the address's MAC, announced", c.MAC, c.Announce)
	}
	d := r.join(t, r.sandbox(t, "d"), "bridge", JoinRequest{Name: "d"})
	if d.Announce {
		t.Error("an endpoint on bridge (never a MAC of its own) is announced")
	}
	// A MAC given by hand that another endpoint of the network has is
	// refused; an address whose MAC was given by hand to another endpoint
	// gets a random MAC instead, announced.
	next := MACFromAddress(netip.MustParseAddr("172.17.0.5")) // d has .4
	if _, err := r.c.Join(ctx, r.sandbox(t, "x").ID, "bridge", JoinRequest{Name: "x", MAC: a.MAC.String()}); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("Join with a's MAC = %v, want a conflict", err)
	}
	hand := r.join(t, r.sandbox(t, "h"), "bridge", JoinRequest{Name: "h", MAC: next.String()})
	f := r.join(t, r.sandbox(t, "f"), "bridge", JoinRequest{Name: "f"})
	if f.Address.Addr() != netip.MustParseAddr("172.17.0.5") || bytes.Equal(f.MAC, next) || bytes.Equal(f.MAC, hand.MAC) || !f.Announce {
		t.Errorf("endpoint whose address's MAC was taken by hand: %v %v announce=%v, want .5, another MAC, announced", f.Address, f.MAC, f.Announce)
	}
	// A network recorded before berth derived MACs: every join announces.
	r.c.mu.Lock()
	for _, n := range r.c.networks {
		if n.Name == "bridge" {
			n.MACsFromAddresses = false
		}
	}
	r.c.mu.Unlock()
	if e := r.join(t, r.sandbox(t, "e"), "bridge", JoinRequest{Name: "e"}); !e.Announce {
		t.Error("an endpoint on a network without MACsFromAddresses is not announced")
	}
}

// A restart hands every endpoint it keeps whose pair exists to the
// driver's Adopt (which re-applies what Join leaves to after it returns),
// and counts no bridge's ports when every bridge is its network's (the
// count reads every link).
func TestRestartAdoptsKeptEndpoints(t *testing.T) {
	r := newRig(t)
	ep := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{Name: "c1"})
	r.drv.mu.Lock()
	r.drv.portCounts = 0
	r.drv.mu.Unlock()
	r.restart(t)
	if !slices.Contains(r.drv.adopted, ep.HostIfName) {
		t.Errorf("adopted after restart = %v, want %s", r.drv.adopted, ep.HostIfName)
	}
	r.drv.mu.Lock()
	defer r.drv.mu.Unlock()
	if r.drv.portCounts != 0 {
		t.Errorf("a restart with every bridge known counted ports %d times", r.drv.portCounts)
	}
}

func TestIfIndex(t *testing.T) {
	for name, want := range map[string]int{"eth0": 0, "eth1": 1, "eth12": 12, "eth": 1 << 30, "": 1 << 30, "eth99999999999999999999": 1 << 30} {
		if got := ifIndex(name); got != want {
			t.Errorf("ifIndex(%q) = %d, want %d", name, got, want)
		}
	}
}

// A leave whose intent the store refuses (a full disk) leaves the endpoint
// as it was: still ready, still listed on its network, its veth in place,
// its name resolving; and a later leave works.
func TestLeaveWhoseIntentTheStoreRefusesKeepsTheEndpoint(t *testing.T) {
	st := &refusingStore{Store: store.NewMemory()}
	r, sb, ep := joinedOnWeb(t, st)
	ctx := context.Background()
	st.refuse.Store(true)
	if err := r.c.Leave(ctx, sb.ID, "web"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Leave with the store refusing = %v, want its error", err)
	}
	st.refuse.Store(false)
	n, err := r.c.Network("web")
	if err != nil {
		t.Fatal(err)
	}
	if eps := r.c.Endpoints(n.ID); len(eps) != 1 || eps[0].ID != ep.ID || eps[0].State != EndpointReady {
		t.Errorf("endpoints of web after the refused leave = %+v, want c1's, ready", eps)
	}
	if len(r.drv.veths) != 1 {
		t.Errorf("veths after the refused leave: %v, want c1's", r.drv.veths)
	}
	if _, ok := r.c.Resolve(sb.ID, "c1"); !ok {
		t.Error("c1 no longer resolves after the refused leave")
	}
	if err := r.c.Leave(ctx, sb.ID, "web"); err != nil {
		t.Fatalf("Leave once the store takes writes: %v", err)
	}
	if len(r.drv.veths) != 0 {
		t.Errorf("veths after the leave: %v", r.drv.veths)
	}
}

// noteRefusingStore refuses Note (the journal's unsynced writes) while
// refuse is set, and Update while refuseUpdate is, as a full disk would.
type noteRefusingStore struct {
	store.Store
	refuse, refuseUpdate atomic.Bool
}

func (s *noteRefusingStore) Note(fn func(store.Tx) error) error {
	if s.refuse.Load() {
		return errors.New("disk full")
	}
	return s.Store.Note(fn)
}

func (s *noteRefusingStore) Update(fn func(store.Tx) error) error {
	if s.refuseUpdate.Load() {
		return errors.New("no space left on device")
	}
	return s.Store.Update(fn)
}

// A leave whose intent was recorded but whose final delete the store
// refuses still succeeds: the endpoint is gone from memory and the
// kernel, and the next start finishes its "deleting" record instead of
// bringing it back.
func TestLeaveWhoseDeleteTheStoreRefusesStillLeaves(t *testing.T) {
	st := &noteRefusingStore{Store: store.NewMemory()}
	r, sb, old := joinedOnWeb(t, st)
	ctx := context.Background()
	st.refuse.Store(true)
	if err := r.c.Leave(ctx, sb.ID, "web"); err != nil {
		t.Fatalf("Leave with the delete refused = %v, want it to succeed", err)
	}
	st.refuse.Store(false)
	n, _ := r.c.Network("web")
	if eps := r.c.Endpoints(n.ID); len(eps) != 0 {
		t.Errorf("endpoints of web after the leave: %+v", eps)
	}
	// The address went back and a new container gets it, while the old
	// record, still "deleting", holds it too.
	c2 := r.join(t, r.sandbox(t, "c2"), "web", JoinRequest{Name: "c2"})
	if c2.Address != old.Address {
		t.Fatalf("c2 got %v, want the address c1 gave back, %v", c2.Address, old.Address)
	}
	r.restart(t)
	n, _ = r.c.Network("web")
	if eps := r.c.Endpoints(n.ID); len(eps) != 1 || eps[0].ID != c2.ID {
		t.Errorf("endpoints of web after a restart: %+v, want c2's alone (the deleting record finished)", eps)
	}
	if len(r.drv.veths) != 1 {
		t.Errorf("veths after a restart: %v, want c2's", r.drv.veths)
	}
	// Finishing the old record left c2's address taken.
	if c3 := r.join(t, r.sandbox(t, "c3"), "web", JoinRequest{Name: "c3"}); c3.Address == c2.Address {
		t.Errorf("c3 got %v, which c2 holds", c3.Address)
	}
}

// joinedOnWeb is a rig on st with a network "web" and a sandbox "c1"
// joined to it.
func joinedOnWeb(t *testing.T, st store.Store) (*rig, *Sandbox, *Endpoint) {
	t.Helper()
	r := rigWithWeb(t, st)
	sb := r.sandbox(t, "c1")
	return r, sb, r.join(t, sb, "web", JoinRequest{Name: "c1"})
}

// rigWithWeb is a rig over st, started, with a network "web".
func rigWithWeb(t *testing.T, st store.Store) *rig {
	t.Helper()
	r := &rig{st: st, drv: newFakeDriver(), sbs: newFakeSandboxes(), fw: newFakeFirewall(), ids: seqIDs()}
	r.restart(t)
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRestartWithHostAndNoneContainers: containers on the host and none
// networks have endpoints without a bridge; a start re-checks every ready
// endpoint's veth pair, and must pass over theirs (it dereferenced the
// missing bridge under c.mu, and the daemon hung at start).
func TestRestartWithHostAndNoneContainers(t *testing.T) {
	r := newRig(t)
	hostSb, err := r.c.CreateSandbox(context.Background(), "c-host", true)
	if err != nil {
		t.Fatal(err)
	}
	r.join(t, hostSb, "host", JoinRequest{ContainerID: "c-host", Name: "h"})
	noneSb := r.sandbox(t, "c-none")
	r.join(t, noneSb, "none", JoinRequest{ContainerID: "c-none", Name: "n"})
	bridgeSb := r.sandbox(t, "c-bridge")
	r.join(t, bridgeSb, "bridge", JoinRequest{ContainerID: "c-bridge", Name: "b"})
	r.restart(t)
	for sb, want := range map[string]string{hostSb.ID: "host", noneSb.ID: "none", bridgeSb.ID: "bridge"} {
		if as := r.c.Attachments(sb); len(as) != 1 || as[0].Network.Name != want || as[0].Endpoint.State != EndpointReady {
			t.Errorf("after restart, sandbox on %s has %+v", want, as)
		}
	}
}

// TestRemoveNetworkWhoseMarkIsRefusedKeepsIt: when the store refuses the
// "removing" mark, the removal fails and the network stays, in memory as
// on disk and in the kernel; it was dropped from memory first, so a
// second network could take its name (two after a restart).
func TestRemoveNetworkWhoseMarkIsRefusedKeepsIt(t *testing.T) {
	st := &noteRefusingStore{Store: store.NewMemory()}
	r := rigWithWeb(t, st)
	ctx := context.Background()
	st.refuseUpdate.Store(true)
	err := r.c.RemoveNetwork(ctx, "web")
	st.refuseUpdate.Store(false)
	if err == nil {
		t.Fatal("RemoveNetwork succeeded with the store refusing its mark")
	}
	if _, err := r.c.Network("web"); err != nil {
		t.Errorf("after the refused removal, web is gone from memory: %v", err)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web"}); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("a second network named web: %v, want a conflict", err)
	}
	r.restart(t)
	if _, err := r.c.Network("web"); err != nil {
		t.Errorf("after a restart, web is gone: %v", err)
	}
	if err := r.c.RemoveNetwork(ctx, "web"); err != nil {
		t.Errorf("RemoveNetwork once the store writes again: %v", err)
	}
}

// TestFailedJoinWhoseDeleteIsRefusedHoldsNoAddressTwice: a connect whose
// driver failed, and whose record's delete the store then refused, gave
// its address back in memory; another connect took it. The next start
// must not finish the stale "creating" record in the sandbox that is
// still there: one address would be on two containers.
func TestFailedJoinWhoseDeleteIsRefusedHoldsNoAddressTwice(t *testing.T) {
	// Both ways the second connect's record can be found: ready, or still
	// "creating" (killed before its ready mark reached the disk).
	for _, c2State := range []EndpointState{EndpointReady, EndpointCreating} {
		t.Run(string(c2State), func(t *testing.T) {
			st := &noteRefusingStore{Store: store.NewMemory()}
			r := rigWithWeb(t, st)
			ctx := context.Background()
			sb1 := r.sandbox(t, "c1")
			r.drv.failJoin = errdefs.Invalid("boom")
			st.refuse.Store(true)
			if _, err := r.c.Join(ctx, sb1.ID, "web", JoinRequest{Name: "c1"}); err == nil {
				t.Fatal("join succeeded")
			}
			st.refuse.Store(false)
			r.drv.failJoin = nil
			c2 := r.join(t, r.sandbox(t, "c2"), "web", JoinRequest{Name: "c2"})
			r.c.Close()
			rec := cloneEndpoint(c2)
			rec.State = c2State
			if err := r.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketEndpoints, rec.ID, rec) }); err != nil {
				t.Fatal(err)
			}
			r.c = nil
			r.restart(t)
			n, err := r.c.Network("web")
			if err != nil {
				t.Fatal(err)
			}
			if eps := r.c.Endpoints(n.ID); len(eps) != 1 || eps[0].ID != c2.ID || eps[0].State != EndpointReady {
				t.Errorf("endpoints after restart %+v, want c2's alone, ready", eps)
			}
			if as := r.c.Attachments(sb1.ID); len(as) != 0 {
				t.Errorf("c1 is on %d networks after its failed connect was rolled back", len(as))
			}
		})
	}
}

// TestAmbiguousPrefixSaysHowMany: an ID prefix several networks share is
// refused with their number, in moby's FindNetwork words (it said "2
// matches found" whatever the number).
func TestAmbiguousPrefixSaysHowMany(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	prefix := r.c.Networks()[0].ID[:1]
	n := 0
	for _, nw := range r.c.Networks() {
		if strings.HasPrefix(nw.ID, prefix) {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("only %d networks share the prefix %q", n, prefix)
	}
	_, err := r.c.Network(prefix)
	want := fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", prefix, n)
	if err == nil || err.Error() != want || !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("Network(%q) = %v, want %q (invalid)", prefix, err, want)
	}
	var amb *AmbiguousError
	if !errors.As(err, &amb) || amb.InspectWords() != fmt.Sprintf("%d matches found based on ID prefix: network %s is ambiguous", n, prefix) {
		t.Errorf("inspect's words: %v", amb)
	}
}

// restoringFirewall is a fake firewall that restores what it applied.
type restoringFirewall struct {
	*fakeFirewall
	restores, rebuilds int
}

func (f *restoringFirewall) Restore(context.Context) error {
	f.restores++
	return nil
}

func (f *restoringFirewall) Rebuild(ctx context.Context, nets []firewall.Network, ports ...firewall.PortMapping) error {
	f.rebuilds++
	return f.fakeFirewall.Rebuild(ctx, nets, ports...)
}

// TestHealRestoresWhatTheFirewallApplied: a heal asks a firewall that can
// restore its own applied state to do so, rather than rebuilding from a
// snapshot of the records, which raced connects, disconnects and network
// removals under way (a port being published dropped, one withdrawn put
// back, until the next heal).
func TestHealRestoresWhatTheFirewallApplied(t *testing.T) {
	r := newRig(t)
	fw := &restoringFirewall{fakeFirewall: r.fw}
	r.c.Close()
	r.c = New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: fw, NewID: r.ids,
		Nameservers: []netip.Addr{netip.MustParseAddr("10.255.255.53")}})
	if err := r.c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	rebuilds := fw.rebuilds // Start's, from the records
	if err := r.c.RebuildFirewall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fw.restores != 1 || fw.rebuilds != rebuilds {
		t.Errorf("heal: %d restores, %d rebuilds after start's %d; want the firewall's own restore", fw.restores, fw.rebuilds, rebuilds)
	}
}

// TestRemoveNetworkLeavesAnAdministratorsBridge: a network made on a
// bridge that was there before it (com.docker.network.bridge.name of an
// administrator's device) lets go of it when removed, as moby leaves a
// bridge it did not create (ifaceCreatedByUser); one berth made is
// deleted.
func TestRemoveNetworkLeavesAnAdministratorsBridge(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.drv.foreign = map[string]bool{"virbr0": true}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "lab", Options: map[string]string{OptBridgeName: "virbr0"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "own", Options: map[string]string{OptBridgeName: "br-own"}}); err != nil {
		t.Fatal(err)
	}
	r.restart(t) // the record keeps what it found
	for _, name := range []string{"lab", "own"} {
		if err := r.c.RemoveNetwork(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(r.drv.deleted, "virbr0") || !slices.Contains(r.drv.releasedBridges, "virbr0") {
		t.Errorf("the administrator's bridge: deleted %v, released %v; want it released, not deleted", r.drv.deleted, r.drv.releasedBridges)
	}
	if !slices.Contains(r.drv.deleted, "br-own") {
		t.Errorf("berth's own bridge not deleted: %v", r.drv.deleted)
	}
}

// TestEndpointsBySandboxIndex: the index of endpoints by sandbox agrees
// with the endpoints through joins, leaves, a sandbox's deletion and a
// restart (its lookups stand in for a walk of every endpoint).
func TestEndpointsBySandboxIndex(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		r.c.mu.RLock()
		defer r.c.mu.RUnlock()
		want := map[string]map[string]bool{}
		for id, ep := range r.c.endpoints {
			if want[ep.SandboxID] == nil {
				want[ep.SandboxID] = map[string]bool{}
			}
			want[ep.SandboxID][id] = true
		}
		got := map[string]map[string]bool{}
		for sb, m := range r.c.bySandbox {
			for id, ep := range m {
				if r.c.endpoints[id] != ep {
					t.Errorf("%s: the index holds a stale record of %s", when, id[:12])
				}
				if got[sb] == nil {
					got[sb] = map[string]bool{}
				}
				got[sb][id] = true
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: index (-endpoints +index):\n%s", when, diff)
		}
	}
	a, b := r.sandbox(t, "a"), r.sandbox(t, "b")
	r.join(t, a, "bridge", JoinRequest{Name: "a"})
	r.join(t, a, "app", JoinRequest{Name: "a"})
	r.join(t, b, "app", JoinRequest{Name: "b"})
	check("after joins")
	if err := r.c.Leave(ctx, a.ID, "app"); err != nil {
		t.Fatal(err)
	}
	check("after a leave")
	if err := r.c.DeleteSandbox(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	check("after a sandbox's deletion")
	r.restart(t)
	check("after a restart")
	if got := len(r.c.Attachments(a.ID)); got != 1 {
		t.Errorf("a's attachments after all that: %d, want 1", got)
	}
}
