package firewall

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// GoldenPorts are the published ports of testdata/ports.nft: every address
// and one address, TCP and UDP, given out of order.
var goldenPorts = []PortMapping{
	{Proto: UDP, HostPort: 5353, Addr: netip.MustParseAddr("172.17.0.3"), Port: 53},
	{Proto: TCP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, Addr: netip.MustParseAddr("172.17.0.3"), Port: 80},
	{Proto: TCP, HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80},
	{Proto: TCP, HostIP: netip.MustParseAddr("198.51.100.2"), HostPort: 8081, Addr: netip.MustParseAddr("172.17.0.4"), Port: 8000},
}

// GoldenPorts6 are the published ports of testdata/ports-dual-stack.nft,
// beside goldenPorts on the dual-stack default bridge: the same host ports
// over IPv6 (every address, one address, loopback), TCP and UDP.
var goldenPorts6 = []PortMapping{
	{Proto: UDP, HostPort: 5353, Addr: netip.MustParseAddr("fd49:efd7:54aa::3"), Port: 53},
	{Proto: TCP, HostIP: netip.IPv6Loopback(), HostPort: 8081, Addr: netip.MustParseAddr("fd49:efd7:54aa::3"), Port: 80},
	{Proto: TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: netip.MustParseAddr("fd49:efd7:54aa::2"), Port: 80},
	{Proto: TCP, HostIP: netip.MustParseAddr("2001:db8:1::2"), HostPort: 8081, Addr: netip.MustParseAddr("fd49:efd7:54aa::4"), Port: 8000},
}

func isInvalid(err error) bool  { return errdefs.Is(err, errdefs.KindInvalid) }
func isConflict(err error) bool { return errdefs.Is(err, errdefs.KindConflict) }

func TestBuildWithPortsGolden(t *testing.T) {
	rs, err := BuildWithPorts([]Network{defaultBridge}, goldenPorts)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "ports.nft"), rs.String())
}

func TestBuildWithPortsDualStackGolden(t *testing.T) {
	rs, err := BuildWithPorts([]Network{dualStack[0]}, append(slices.Clone(goldenPorts), goldenPorts6...))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "ports-dual-stack.nft"), rs.String())
}

// TestIPv6PortRules: the IPv6 DNAT rules follow Docker's ip6tables (moby
// iptabler): no link-local source ("! -s fe80::/10"), and in OUTPUT no
// ::1 ("! -d ::1/128"); each after the IPv4 rules, each a lookup of one
// IPv6 map with a destination register.
func TestIPv6PortRules(t *testing.T) {
	want := map[string][]string{
		ChainNatPrerouting: {
			"fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip",
			"meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @ports_any",
			"ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip",
			"ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6_any",
		},
		ChainNatOutput: {
			"fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip",
			"meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @ports_any",
			"ip6 daddr != ::1 ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip",
			"ip6 daddr != ::1 ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6_any",
		},
	}
	seen := 0
	for _, c := range Base().Chains {
		w, ok := want[c.Name]
		if !ok {
			continue
		}
		seen++
		var got []string
		for _, r := range c.Rules {
			got = append(got, r.String())
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("chain %s (-want +got):\n%s", c.Name, diff)
		}
	}
	if seen != len(want) {
		t.Errorf("Base has %d of the %d chains checked", seen, len(want))
	}
}

// TestPortElementsByFamily: each mapping's element goes to the map of its
// family and binding, with "::" spelt as every address.
func TestPortElementsByFamily(t *testing.T) {
	es, err := PortElements(append(slices.Clone(goldenPorts), goldenPorts6...))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Map+": "+e.KeyString()+" : "+e.DataString())
	}
	want := []string{
		"ports6_any: tcp . 8080 : fd49:efd7:54aa::2 . 80",
		"ports6_any: udp . 5353 : fd49:efd7:54aa::3 . 53",
		"ports6_ip: ::1 . tcp . 8081 : fd49:efd7:54aa::3 . 80",
		"ports6_ip: 2001:db8:1::2 . tcp . 8081 : fd49:efd7:54aa::4 . 8000",
		"ports_any: tcp . 8080 : 172.17.0.2 . 80",
		"ports_any: udp . 5353 : 172.17.0.3 . 53",
		"ports_ip: 127.0.0.1 . tcp . 8081 : 172.17.0.3 . 80",
		"ports_ip: 198.51.100.2 . tcp . 8081 : 172.17.0.4 . 8000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("elements (-want +got):\n%s", diff)
	}
}

func TestBuildWithoutPortsIsBuild(t *testing.T) {
	a, err := BuildWithPorts([]Network{defaultBridge}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build([]Network{defaultBridge})
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("BuildWithPorts without ports differs from Build")
	}
}

func TestValidatePortsRejects(t *testing.T) {
	ctr := netip.MustParseAddr("172.17.0.2")
	ok := PortMapping{Proto: TCP, HostPort: 8080, Addr: ctr, Port: 80}
	with := func(f func(*PortMapping)) PortMapping { m := ok; f(&m); return m }
	cases := []struct {
		name  string
		ports []PortMapping
		kind  func(error) bool
	}{
		{"sctp", []PortMapping{with(func(m *PortMapping) { m.Proto = 132 })}, isInvalid},
		{"host port 0", []PortMapping{with(func(m *PortMapping) { m.HostPort = 0 })}, isInvalid},
		{"container port 0", []PortMapping{with(func(m *PortMapping) { m.Port = 0 })}, isInvalid},
		{"no container address", []PortMapping{with(func(m *PortMapping) { m.Addr = netip.Addr{} })}, isInvalid},
		{"IPv6 host address, IPv4 container", []PortMapping{with(func(m *PortMapping) { m.HostIP = netip.MustParseAddr("::1") })}, isInvalid},
		{"IPv6 unspecified host address, IPv4 container", []PortMapping{with(func(m *PortMapping) { m.HostIP = netip.IPv6Unspecified() })}, isInvalid},
		{"IPv4 host address, IPv6 container", []PortMapping{with(func(m *PortMapping) {
			m.Addr, m.HostIP = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("127.0.0.1")
		})}, isInvalid},
		{"0.0.0.0, IPv6 container", []PortMapping{with(func(m *PortMapping) { m.Addr, m.HostIP = netip.MustParseAddr("fd00::2"), netip.IPv4Unspecified() })}, isInvalid},
		{"IPv4-mapped container", []PortMapping{with(func(m *PortMapping) { m.Addr = netip.MustParseAddr("::ffff:172.17.0.2") })}, isInvalid},
		{"IPv4-mapped host address", []PortMapping{with(func(m *PortMapping) {
			m.Addr, m.HostIP = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("::ffff:127.0.0.1")
		})}, isInvalid},
		{"zoned host address", []PortMapping{with(func(m *PortMapping) {
			m.Addr, m.HostIP = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fe80::1%eth0")
		})}, isInvalid},
		{"IPv6 port twice", []PortMapping{
			with(func(m *PortMapping) { m.Addr = netip.MustParseAddr("fd00::2") }),
			with(func(m *PortMapping) { m.Addr, m.HostIP = netip.MustParseAddr("fd00::3"), netip.IPv6Unspecified() }),
		}, isConflict},
		{"IPv6 any then one address", []PortMapping{
			with(func(m *PortMapping) { m.Addr = netip.MustParseAddr("fd00::2") }),
			with(func(m *PortMapping) {
				m.Addr, m.HostIP = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("2001:db8::1")
			}),
		}, isConflict},
		{"same port twice", []PortMapping{ok, with(func(m *PortMapping) { m.Port = 81 })}, isConflict},
		{"0.0.0.0 and empty", []PortMapping{ok, with(func(m *PortMapping) { m.HostIP = netip.IPv4Unspecified() })}, isConflict},
		{"any then one address", []PortMapping{ok, with(func(m *PortMapping) { m.HostIP = netip.MustParseAddr("127.0.0.1") })}, isConflict},
		{"one address then any", []PortMapping{with(func(m *PortMapping) { m.HostIP = netip.MustParseAddr("127.0.0.1") }), ok}, isConflict},
		{"same address twice", []PortMapping{
			with(func(m *PortMapping) { m.HostIP = netip.MustParseAddr("127.0.0.1") }),
			with(func(m *PortMapping) { m.HostIP = netip.MustParseAddr("127.0.0.1"); m.Port = 9 }),
		}, isConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePorts(tc.ports)
			if err == nil || !tc.kind(err) {
				t.Errorf("ValidatePorts = %v, want an error of the right kind", err)
			}
			if _, err := BuildWithPorts(nil, tc.ports); err == nil {
				t.Error("BuildWithPorts accepted what ValidatePorts rejects")
			}
		})
	}
}

func TestValidatePortsAccepts(t *testing.T) {
	ctr := netip.MustParseAddr("172.17.0.2")
	ps := []PortMapping{
		{Proto: TCP, HostPort: 8080, Addr: ctr, Port: 80},
		{Proto: UDP, HostPort: 8080, Addr: ctr, Port: 80},                                                  // other protocol
		{Proto: TCP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 9000, Addr: ctr, Port: 80},        // two addresses,
		{Proto: TCP, HostIP: netip.MustParseAddr("198.51.100.2"), HostPort: 9000, Addr: ctr, Port: 81},     // same port
		{Proto: TCP, HostIP: netip.MustParseAddr("198.51.100.2"), HostPort: 9001, Addr: ctr, Port: 80},     // same target
		{Proto: TCP, HostIP: netip.MustParseAddr("198.51.100.2"), HostPort: 65535, Addr: ctr, Port: 65535}, // top of range
	}
	ctr6 := netip.MustParseAddr("fd00::2")
	ps = append(ps,
		PortMapping{Proto: TCP, HostPort: 8080, Addr: ctr6, Port: 80},                                             // both families
		PortMapping{Proto: UDP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: ctr6, Port: 80},            // ::
		PortMapping{Proto: TCP, HostIP: netip.IPv6Loopback(), HostPort: 9000, Addr: ctr6, Port: 80},               // two IPv6 addresses,
		PortMapping{Proto: TCP, HostIP: netip.MustParseAddr("2001:db8::1"), HostPort: 9000, Addr: ctr6, Port: 81}, // same port
	)
	if err := ValidatePorts(ps); err != nil {
		t.Fatal(err)
	}
}

func TestParseProto(t *testing.T) {
	for in, want := range map[string]Proto{"": TCP, "tcp": TCP, "TCP": TCP, "udp": UDP} {
		if got, err := ParseProto(in); err != nil || got != want {
			t.Errorf("ParseProto(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseProto("sctp"); !isInvalid(err) {
		t.Errorf("ParseProto(sctp) = %v, want invalid", err)
	}
}

func TestPortMappingString(t *testing.T) {
	m := PortMapping{Proto: UDP, HostPort: 53, Addr: netip.MustParseAddr("172.17.0.2"), Port: 5353}
	if got, want := m.String(), "0.0.0.0:53->172.17.0.2:5353/udp"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	m.Addr = netip.MustParseAddr("fd00::2")
	if got, want := m.String(), "[::]:53->[fd00::2]:5353/udp"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	m.HostIP = netip.MustParseAddr("2001:db8::1")
	if got, want := m.String(), "[2001:db8::1]:53->[fd00::2]:5353/udp"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestFakePorts(t *testing.T) {
	ctx := t.Context()
	f := NewFake()
	a := PortMapping{Proto: TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80}
	b := PortMapping{Proto: TCP, HostIP: netip.IPv4Unspecified(), HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.3"), Port: 80}
	if err := f.AddPorts(ctx, []PortMapping{a}); err != nil {
		t.Fatal(err)
	}
	if err := f.AddPorts(ctx, []PortMapping{a}); err != nil {
		t.Errorf("adding the same mapping again: %v", err)
	}
	if err := f.AddPorts(ctx, []PortMapping{b}); !isConflict(err) {
		t.Errorf("AddPorts of a taken host port = %v, want conflict", err)
	}
	if diff := cmp.Diff([]PortMapping{a}, f.Ports(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	f.Err = errors.New("boom")
	if err := f.DelPorts(ctx, []PortMapping{a}); err == nil {
		t.Error("DelPorts ignored Err")
	}
	if err := f.DelPorts(ctx, []PortMapping{a, b}); err != nil {
		t.Fatal(err)
	}
	if len(f.Ports()) != 0 {
		t.Errorf("ports left: %v", f.Ports())
	}
	// Both families on one host port, as the network side publishes a
	// dual-stack container's port; a second IPv6 claim is a conflict.
	a6 := PortMapping{Proto: TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: netip.MustParseAddr("fd00::2"), Port: 80}
	b6 := a6
	b6.Addr = netip.MustParseAddr("fd00::3")
	if err := f.AddPorts(ctx, []PortMapping{a, a6}); err != nil {
		t.Fatalf("one port for both families: %v", err)
	}
	if err := f.AddPorts(ctx, []PortMapping{b6}); !isConflict(err) {
		t.Errorf("AddPorts of a taken IPv6 host port = %v, want conflict", err)
	}
	a6.HostIP = netip.Addr{}
	if diff := cmp.Diff([]PortMapping{a6, a}, f.Ports(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.Ruleset().String(), "tcp . 8080 : fd00::2 . 80") {
		t.Errorf("the fake's ruleset lacks the IPv6 port:\n%s", f.Ruleset())
	}
}
