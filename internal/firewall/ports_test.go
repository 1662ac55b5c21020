package firewall

import (
	"errors"
	"net/netip"
	"path/filepath"
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

func isInvalid(err error) bool  { return errdefs.Is(err, errdefs.KindInvalid) }
func isConflict(err error) bool { return errdefs.Is(err, errdefs.KindConflict) }

func TestBuildWithPortsGolden(t *testing.T) {
	rs, err := BuildWithPorts([]Network{defaultBridge}, goldenPorts)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "ports.nft"), rs.String())
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
		{"IPv6 container", []PortMapping{with(func(m *PortMapping) { m.Addr = netip.MustParseAddr("fd00::2") })}, isInvalid},
		{"IPv6 host address", []PortMapping{with(func(m *PortMapping) { m.HostIP = netip.MustParseAddr("::1") })}, isInvalid},
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
}
