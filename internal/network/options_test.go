package network

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// cmpNetip lets go-cmp compare netip values, which have unexported fields.
var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func TestParseBridgeOptionsDefaults(t *testing.T) {
	got, err := parseBridgeOptions(nil, "br-0123456789ab")
	if err != nil {
		t.Fatal(err)
	}
	want := &BridgeConfig{Name: "br-0123456789ab", EnableICC: true, EnableIPMasquerade: true,
		HostBindingIPv4: netip.MustParseAddr("0.0.0.0"), MTU: 1500}
	if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
}

func TestParseBridgeOptionsValues(t *testing.T) {
	got, err := parseBridgeOptions(map[string]string{
		OptBridgeName: "web0", OptEnableICC: "false", OptEnableMasq: "0",
		OptHostBindingIPv4: "127.0.0.1", OptMTU: "9000",
		OptHostIPv4: "198.51.100.42", OptHostIPv6: "2001:db8::42",
	}, "x")
	if err != nil {
		t.Fatal(err)
	}
	want := &BridgeConfig{Name: "web0", EnableICC: false, EnableIPMasquerade: false,
		HostBindingIPv4: netip.MustParseAddr("127.0.0.1"), MTU: 9000,
		HostIPv4: netip.MustParseAddr("198.51.100.42"), HostIPv6: netip.MustParseAddr("2001:db8::42")}
	if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// Options the driver does not know change nothing and are listed, sorted,
// as ignored; known and unsupported ones are not, and an unsupported one
// with the value that changes nothing is taken.
func TestUnknownBridgeOptionsAreIgnored(t *testing.T) {
	opts := map[string]string{"foo": "bar", "com.docker.network.bridge.nme": "x", OptMTU: "9000", "com.docker.network.bridge.inhibit_ipv4": "true"}
	if got, want := IgnoredOptions(opts), []string{"com.docker.network.bridge.nme", "foo"}; !slices.Equal(got, want) {
		t.Errorf("IgnoredOptions = %q, want %q", got, want)
	}
	got, err := parseBridgeOptions(map[string]string{"foo": "bar", "com.docker.network.bridge.nme": "x",
		// moby's options berth does not implement, with the values that change nothing.
		"com.docker.network.bridge.inhibit_ipv4": "false", "com.docker.network.bridge.default_bridge": "0",
		OptTrustedHostInterfaces: "::"}, "x")
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseBridgeOptions(nil, "x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
		t.Errorf("unknown options changed the config (-none +unknown):\n%s", diff)
	}
}

// TestTrustedHostInterfaces: moby's split at ':' (empty names dropped),
// each name or prefix ("veth+") kept, and handed to the firewall joined.
func TestTrustedHostInterfaces(t *testing.T) {
	bc, err := parseBridgeOptions(map[string]string{OptTrustedHostInterfaces: ":eth1::veth+:"}, "x")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"eth1", "veth+"}; !slices.Equal(bc.TrustedHostInterfaces, want) {
		t.Errorf("TrustedHostInterfaces = %q, want %q", bc.TrustedHostInterfaces, want)
	}
	r := newRig(t)
	n, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "trusting", Options: map[string]string{OptTrustedHostInterfaces: "eth1:veth+"}})
	if err != nil {
		t.Fatal(err)
	}
	if fn := r.c.firewallNetwork(n); fn.Trusted != "eth1:veth+" || !fn.OpensDirect(fn.GatewayMode4) || fn.DirectRouting {
		t.Errorf("firewall network %+v, want eth1:veth+ trusted, direct routing open in IPv4 and not allowed daemon-wide", fn)
	}
	if f := r.c.directFamilies(n); f != (portFamilies{v4: true}) {
		t.Errorf("direct families %+v, want IPv4 alone", f)
	}
}

func TestParseBridgeOptionsBad(t *testing.T) {
	for _, tc := range []struct{ k, v string }{
		{"com.docker.network.bridge.inhibit_ipv4", "maybe"},
		{OptTrustedHostInterfaces, "eth1:a/b"},
		{OptTrustedHostInterfaces, "+"},
		{OptTrustedHostInterfaces, "a+b"},
		{OptTrustedHostInterfaces, "sixteen-bytes-xx"},
		{OptTrustedHostInterfaces, "eth 1"},
		{"com.docker.network.bridge.default_bridge", "1"},
		{OptBridgeName, "a-name-that-is-too-long"},
		{OptBridgeName, "has space"},
		{OptBridgeName, "a/b"},
		{OptBridgeName, ""},
		{OptEnableICC, "yes please"},
		{OptEnableMasq, ""},
		{OptHostBindingIPv4, "fe80::1%eth0"},
		{OptHostBindingIPv4, "300.1.1.1"},
		{OptMTU, "67"},
		{OptMTU, "65536"},
		{OptMTU, "big"},
		{OptHostIPv4, "nope"},
		{OptHostIPv4, "2001:db8::1"},
		{OptHostIPv6, "198.51.100.1"},
		{OptHostIPv6, "fe80::1%eth0"},
	} {
		_, err := parseBridgeOptions(map[string]string{tc.k: tc.v}, "x")
		if !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%s=%q: err = %v, want an invalid-parameter error", tc.k, tc.v, err)
		}
	}
	// moby's words for a value its bridge driver cannot parse.
	for _, tc := range []struct{ k, v, want string }{
		{OptMTU, "abc", `failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)`},
		{OptEnableICC, "maybe", `failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing "maybe": invalid syntax)`},
		{OptHostIPv4, "nope", "failed to parse com.docker.network.host_ipv4 value: nope (nil ip)"},
	} {
		if _, err := parseBridgeOptions(map[string]string{tc.k: tc.v}, "x"); err == nil || err.Error() != tc.want {
			t.Errorf("%s=%q: err = %v, want %q", tc.k, tc.v, err, tc.want)
		}
	}
}

// TestHostIPv4IsTheSourceAddress: a network's host_ipv4 and host_ipv6
// reach the firewall as its SNAT addresses, family by family.
func TestHostIPv4IsTheSourceAddress(t *testing.T) {
	r := newRig(t)
	n, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "out", EnableIPv6: true,
		Options: map[string]string{OptHostIPv4: "198.51.100.42", OptHostIPv6: "2001:db8::42"}})
	if err != nil {
		t.Fatal(err)
	}
	fn := r.c.firewallNetwork(n)
	if fn.SNAT4 != netip.MustParseAddr("198.51.100.42") || fn.SNAT6 != netip.MustParseAddr("2001:db8::42") {
		t.Errorf("firewall network %+v", fn)
	}
	r.restart(t)
	if n, err = r.c.Network("out"); err != nil || n.Bridge.HostIPv4 != netip.MustParseAddr("198.51.100.42") {
		t.Errorf("after a restart: %+v, %v", n.Bridge, err)
	}
}

// TestValidateNetworkName: any name Docker takes (anything not blank),
// except one with a control character; the predefined names are refused.
func TestValidateNetworkName(t *testing.T) {
	long := strings.Repeat("a", 10000)
	for _, ok := range []string{"web", "a", "my_net.1-x", "A9", "ci_build-1/abc", "..", "a b", "-x", "é", " x ", long} {
		if err := validateNetworkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "\t \u00a0", "a\x00b", "a\nb", "a\x1b[31mb", "a\u0085b", "\xff"} {
		if err := validateNetworkName(bad); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%q: err = %v, want invalid", bad, err)
		}
	}
	for _, predefined := range []string{"bridge", "host", "none", "default"} {
		if err := validateNetworkName(predefined); !errdefs.Is(err, errdefs.KindForbidden) {
			t.Errorf("%q: err = %v, want forbidden", predefined, err)
		}
	}
}

// TestIPAMOptionsKept: a network keeps its IPAM options as given — nil and
// empty apart, as Docker shows null and {} — through the store and a
// restart; the default driver uses none of them and refuses none.
func TestIPAMOptionsKept(t *testing.T) {
	r := newPortRig(t)
	ctx := context.Background()
	want := map[string]map[string]string{"opts": {"foo": "bar"}, "empty": {}, "unset": nil}
	for name, opts := range want {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name, IPAMOptions: maps.Clone(opts)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for name, opts := range want {
			n, err := r.c.Network(name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(opts, n.IPAMOptions); diff != "" || (n.IPAMOptions == nil) != (opts == nil) {
				t.Errorf("%s %s: IPAMOptions %#v, want %#v", name, when, n.IPAMOptions, opts)
			}
		}
	}
	check("after create")
	r.restartWith(t, newFakeHolder())
	check("after restart")
	bridge, err := r.c.Network(NameBridge)
	if err != nil {
		t.Fatal(err)
	}
	if bridge.IPAMOptions != nil {
		t.Errorf("bridge IPAMOptions %#v, want nil (Docker shows null)", bridge.IPAMOptions)
	}
}

// TestContainerIfacePrefix: a network's com.docker.network.container_iface_prefix
// names its interface in a container, numbered per prefix as moby
// numbers them; other networks keep ethN.
func TestContainerIfacePrefix(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, name := range []string{"bds-a", "bds-b"} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name, Options: map[string]string{OptContainerIfacePrefix: "bds"}}); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "c1")
	var got []string
	for _, net := range []string{"bds-a", "bridge", "bds-b"} {
		got = append(got, r.join(t, sb, net, JoinRequest{ContainerID: "c1", Name: "c1"}).IfName)
	}
	if want := []string{"bds0", "eth0", "bds1"}; !slices.Equal(got, want) {
		t.Errorf("interface names %v, want %v", got, want)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "bad", Options: map[string]string{OptContainerIfacePrefix: "a-prefix-too-long"}}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("a 17-byte prefix: %v", err)
	}
}

// TestInhibitIPv4: Docker's inhibit_ipv4 gives the bridge no IPv4 address
// (the driver makes none) while the containers keep the
// subnet's gateway as theirs, a router of the user's on the bridge, whose
// neighbour entry the join does not seed with the bridge's MAC; on an
// internal network there is no gateway to hold (moby's GetSkipGwAlloc).
func TestInhibitIPv4(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "routed-by-them", Options: map[string]string{OptInhibitIPv4: "true"},
		IPAM: []IPAMRequest{{Subnet: mustPrefix("10.40.0.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	if spec := r.drv.bridges[n.Bridge.Name]; spec.Gateway.IsValid() {
		t.Errorf("bridge spec has the gateway %v", spec.Gateway)
	}
	// The firewall's direct-access drop still spares the gateway: the
	// host's when the administrator put it on the bridge.
	if fn := r.fw.nets[n.Bridge.Name]; fn.Gateway != netip.MustParseAddr("10.40.0.1") || fn.Subnet != mustPrefix("10.40.0.0/24") {
		t.Errorf("firewall network %+v", fn)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "routed-by-them", JoinRequest{Name: "c1"})
	if ep.Gateway != netip.MustParseAddr("10.40.0.1") || ep.Address.Addr() != netip.MustParseAddr("10.40.0.2") {
		t.Errorf("endpoint %v via %v, want 10.40.0.2 via 10.40.0.1", ep.Address, ep.Gateway)
	}
	if spec := r.drv.veths[ep.HostIfName]; !spec.ForeignGateway || spec.Gateway != ep.Gateway {
		t.Errorf("endpoint spec %+v", spec)
	}
	in, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "inner", Internal: true, Options: map[string]string{OptInhibitIPv4: "true"},
		IPAM: []IPAMRequest{{Subnet: mustPrefix("10.41.0.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	if in.IPv4.Gateway.IsValid() {
		t.Errorf("internal inhibit_ipv4 network holds the gateway %v", in.IPv4.Gateway)
	}
	if ep := r.join(t, r.sandbox(t, "c2"), "inner", JoinRequest{Name: "c2"}); ep.Address.Addr() != netip.MustParseAddr("10.41.0.1") {
		t.Errorf("first address on it %v, want 10.41.0.1", ep.Address)
	}
}

// TestDefaultGatewayAuxAddress: an auxiliary address named
// DefaultGatewayIPv4 (or IPv6, in its family's subnet) is the
// containers' gateway in place of the bridge's address, as moby's
// processIPAM reads it: the bridge keeps its own, the address is no
// container's, and the join does not seed its neighbour entry with the
// bridge's MAC. An internal network takes none, in moby's words.
func TestDefaultGatewayAuxAddress(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	gw4, gw6 := netip.MustParseAddr("10.42.0.254"), netip.MustParseAddr("fd00:42::fe")
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "via-router", EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("10.42.0.0/24"), AuxAddresses: map[string]netip.Addr{AuxDefaultGateway4: gw4}},
		{Subnet: mustPrefix("fd00:42::/64"), AuxAddresses: map[string]netip.Addr{AuxDefaultGateway6: gw6}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if spec := r.drv.bridges[n.Bridge.Name]; spec.Gateway != mustPrefix("10.42.0.1/24") || spec.Gateway6 != mustPrefix("fd00:42::1/64") {
		t.Errorf("bridge spec %v and %v, want the bridge's own addresses", spec.Gateway, spec.Gateway6)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "via-router", JoinRequest{Name: "c1"})
	if ep.Gateway != gw4 || ep.Gateway6 != gw6 {
		t.Errorf("endpoint gateways %v and %v, want %v and %v", ep.Gateway, ep.Gateway6, gw4, gw6)
	}
	if spec := r.drv.veths[ep.HostIfName]; !spec.ForeignGateway || !spec.ForeignGateway6 || spec.Gateway != gw4 || spec.Gateway6 != gw6 {
		t.Errorf("endpoint spec %+v", spec)
	}
	if ep, err := r.c.Join(ctx, r.sandbox(t, "c2").ID, "via-router", JoinRequest{Name: "c2", IPv4: gw4}); err == nil {
		t.Errorf("a container got the default gateway's address: %v", ep.Address)
	}
	// Not a foreign gateway on an ordinary network.
	plain := r.join(t, r.sandbox(t, "c3"), "bridge", JoinRequest{Name: "c3"})
	if spec := r.drv.veths[plain.HostIfName]; spec.ForeignGateway || spec.ForeignGateway6 {
		t.Errorf("the default bridge's endpoint spec has a foreign gateway: %+v", spec)
	}
	_, err = r.c.CreateNetwork(ctx, CreateRequest{Name: "inner", Internal: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("10.43.0.0/24"), AuxAddresses: map[string]netip.Addr{AuxDefaultGateway4: netip.MustParseAddr("10.43.0.254")}}}})
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "no gateway can be set on an internal bridge network") {
		t.Errorf("internal network with a default gateway: %v", err)
	}
	// moby checks IPv4 alone: an IPv6 one is taken (and unused there).
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "inner6", Internal: true, EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("10.44.0.0/24")},
		{Subnet: mustPrefix("fd00:44::/64"), AuxAddresses: map[string]netip.Addr{AuxDefaultGateway6: netip.MustParseAddr("fd00:44::fe")}}}}); err != nil {
		t.Errorf("internal network with an IPv6 default gateway: %v", err)
	}
}

// TestDaemonDefaultGateway: the daemon's --default-gateway (and -v6) is
// the default bridge's auxiliary address, its containers' gateway; a
// start without it takes it away, once the bridge is empty; one outside
// the bridge's subnet stops the daemon, in libnetwork's words.
func TestDaemonDefaultGateway(t *testing.T) {
	r := newRig(t)
	gw := netip.MustParseAddr("172.17.0.254")
	r.tweak = func(c *Config) { c.DefaultBridgeGateway4 = gw }
	r.restart(t)
	br, err := r.c.Network("bridge")
	if err != nil {
		t.Fatal(err)
	}
	if got := br.IPv4.AuxAddresses[AuxDefaultGateway4]; got != gw || br.IPv4.Gateway != netip.MustParseAddr("172.17.0.1") {
		t.Errorf("default bridge %+v, want gateway 172.17.0.1 and the default gateway %v", br.IPv4, gw)
	}
	sb := r.sandbox(t, "c1")
	if ep := r.join(t, sb, "bridge", JoinRequest{Name: "c1"}); ep.Gateway != gw {
		t.Errorf("endpoint gateway %v, want %v", ep.Gateway, gw)
	}
	if err := r.c.Leave(context.Background(), sb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	r.tweak = nil
	r.restart(t)
	if br, _ := r.c.Network("bridge"); len(br.IPv4.AuxAddresses) != 0 {
		t.Errorf("after a start without it: %+v", br.IPv4)
	}
	r.c.Close()
	r.c = New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, NewID: r.ids, DefaultBridgeGateway4: netip.MustParseAddr("10.99.0.1")})
	var se *SettingsError
	if err := r.c.Start(context.Background()); !errors.As(err, &se) || !strings.Contains(err.Error(), "must belong to the master pool") {
		t.Errorf("a default gateway outside the subnet: %v", err)
	}
}
