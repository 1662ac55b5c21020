package firewall

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// directNets: a dual-stack network that trusts eth1 and every wg*
// interface, and one of a daemon that allows direct routing.
var directNets = []Network{
	{Bridge: "br-trust", Subnet: mustPrefix("172.22.0.0/16"), Gateway: mustAddr("172.22.0.1"),
		Subnet6: mustPrefix("fd00:22::/64"), Gateway6: mustAddr("fd00:22::1"), ICC: true, Masquerade: true, Trusted: "eth1:wg+"},
	{Bridge: "br-allow", Subnet: mustPrefix("172.23.0.0/16"), Gateway: mustAddr("172.23.0.1"), ICC: true, Masquerade: true, DirectRouting: true},
}

// directPorts: each network's published port and its container side.
var directPorts = []PortMapping{
	{Proto: TCP, HostPort: 8080, Addr: mustAddr("172.22.0.2"), Port: 80},
	{Proto: TCP, Addr: mustAddr("172.22.0.2"), Port: 80, Routed: true},
	{Proto: TCP, HostPort: 8081, Addr: mustAddr("172.23.0.2"), Port: 80},
	{Proto: TCP, Addr: mustAddr("172.23.0.2"), Port: 80, Routed: true},
}

func TestDirectRoutingGolden(t *testing.T) {
	rs, err := BuildWithPorts(directNets, directPorts)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "direct-routing.nft"), rs.String())
}

// TestExplainDirectRouting: a packet routed straight to a container's
// published port comes in on a trusted interface (a wildcard's too) and
// is accepted by the port's container side; an unpublished port is
// dropped as ever, and so is the same packet on an interface the network
// does not trust, in raw prerouting. With the daemon's direct routing,
// no interface is dropped there.
func TestExplainDirectRouting(t *testing.T) {
	_, r := explainWorld(t)
	rs, err := BuildWithPorts(append([]Network{{Bridge: "berth0", Subnet: mustPrefix("172.17.0.0/16"), Gateway: mustAddr("172.17.0.1"), ICC: true, Masquerade: true}}, directNets...), directPorts)
	if err != nil {
		t.Fatal(err)
	}
	r.bridges[mustPrefix("172.22.0.0/16")] = "br-trust"
	r.bridges[mustPrefix("172.23.0.0/16")] = "br-allow"
	for _, tc := range []struct {
		name, iif, dst string
		port           uint16
		outcome        Outcome
		chain, why     string
	}{
		// Not from another of berth's bridges: Docker 28's isolation
		// drops that before its per-port accepts.
		{"from another network", "berth0", "172.23.0.2", 80, Dropped, "fwd_in__br-allow", "ISOLATION"},
		{"from the trusting network", "br-trust", "172.23.0.2", 80, Dropped, "fwd_in__br-allow", "ISOLATION"},
		{"trusted, published", "eth1", "172.22.0.2", 80, Delivered, "fwd_in__br-trust", "DIRECTLY ROUTED PORTS"},
		{"trusted by a wildcard", "wg0", "172.22.0.2", 80, Delivered, "fwd_in__br-trust", "DIRECTLY ROUTED PORTS"},
		{"trusted, unpublished", "eth1", "172.22.0.2", 81, Dropped, "fwd_in__br-trust", "INBOUND DROP"},
		{"untrusted", "eth0", "172.22.0.2", 80, Dropped, "direct__br-trust", "DIRECT ACCESS DROP"},
		{"not quite the wildcard", "w0", "172.22.0.2", 80, Dropped, "direct__br-trust", "DIRECT ACCESS DROP"},
		{"allowed, published", "eth0", "172.23.0.2", 80, Delivered, "fwd_in__br-allow", "DIRECTLY ROUTED PORTS"},
		{"allowed, unpublished", "eth0", "172.23.0.2", 81, Dropped, "fwd_in__br-allow", "INBOUND DROP"},
		{"another network's port", "eth1", "172.22.0.2", 443, Dropped, "fwd_in__br-trust", "INBOUND DROP"},
	} {
		src := mustAddr("198.51.100.7")
		if tc.iif == "berth0" || tc.iif == "br-trust" {
			src = map[string]netip.Addr{"berth0": mustAddr("172.17.0.5"), "br-trust": mustAddr("172.22.0.9")}[tc.iif]
		}
		ex := Explain(rs, Packet{Proto: ProtoTCP, Src: src, Dst: mustAddr(tc.dst), Dport: tc.port, Iif: tc.iif}, r)
		if ex.Outcome != tc.outcome || ex.Decision == nil || ex.Decision.Chain != tc.chain || !strings.Contains(ex.Decision.Rule, tc.why) {
			t.Errorf("%s: %s by %+v, want %s by %s's %s", tc.name, ex.Outcome, ex.Decision, tc.outcome, tc.chain, tc.why)
		}
	}
}

func TestTrustedInterfaceNames(t *testing.T) {
	for _, name := range []string{"eth1", "wg+", "a.b-c_d", "fifteen-bytes-x"} {
		if err := CheckTrustedName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"+", "sixteen-bytes-xx", "a/b", "a b", "a+b", "a\n", ".", "..", "eth*"} {
		if err := CheckTrustedName(name); err == nil {
			t.Errorf("%q taken", name)
		}
	}
	n, err := validate(Network{Bridge: "br-x", Subnet: mustPrefix("10.0.0.0/24"), Trusted: "::eth1::wg+:"})
	if err != nil || n.Trusted != "eth1:wg+" {
		t.Errorf("validate: trusted %q, %v; want eth1:wg+", n.Trusted, err)
	}
	if _, err := Build([]Network{{Bridge: "br-x", Subnet: mustPrefix("10.0.0.0/24"), Trusted: "eth1:a/b"}}); err == nil {
		t.Error("Build took a trusted name with a '/'")
	}
}

// fwmarkNets: dockerd's --bridge-accept-fwmark on a network without a
// mask (the whole mark), one with Tailscale's mark and mask, and an
// internal one, which takes nothing in whatever its mark.
var fwmarkNets = []Network{
	{Bridge: "br-mark", Subnet: mustPrefix("172.24.0.0/16"), Gateway: mustAddr("172.24.0.1"), ICC: true, Masquerade: true, AcceptMark: 2, AcceptMask: ^uint32(0)},
	{Bridge: "br-ts", Subnet: mustPrefix("172.25.0.0/16"), Gateway: mustAddr("172.25.0.1"), ICC: true, Masquerade: true, AcceptMark: 0x40000, AcceptMask: 0xff0000},
	{Bridge: "br-int", Subnet: mustPrefix("172.26.0.0/16"), Gateway: mustAddr("172.26.0.1"), ICC: true, Internal: true, AcceptMark: 2, AcceptMask: ^uint32(0)},
}

func TestAcceptFwMarkGolden(t *testing.T) {
	rs, err := Build(fwmarkNets)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "accept-fwmark.nft"), rs.String())
	_, chain, _ := strings.Cut(rs.String(), "chain fwd_in__br-int {")
	chain, _, _ = strings.Cut(chain, "}")
	if chain == "" || strings.Contains(chain, "meta mark") {
		t.Errorf("an internal network takes marked traffic in:\n%s", chain)
	}
}

// TestExplainAcceptFwMark: explain reads no marks, so a packet that the
// network's ALLOW FW MARK rule would take, had another firewall marked
// it, and that a later rule drops, is undecided, with the rule named;
// a published port's packet is delivered as ever, and a mark outside
// its mask is refused by Build.
func TestExplainAcceptFwMark(t *testing.T) {
	_, r := explainWorld(t)
	nets := []Network{{Bridge: "br-m", Subnet: mustPrefix("10.79.0.0/24"), Gateway: mustAddr("10.79.0.1"), ICC: true, Masquerade: true, Trusted: "eth0", AcceptMark: 2, AcceptMask: 3}}
	rs, err := BuildWithPorts(nets, []PortMapping{{Proto: TCP, Addr: mustAddr("10.79.0.2"), Port: 80, Routed: true}})
	if err != nil {
		t.Fatal(err)
	}
	r.bridges[mustPrefix("10.79.0.0/24")] = "br-m"
	p := Packet{Proto: ProtoTCP, Src: mustAddr("198.51.100.7"), Dst: mustAddr("10.79.0.2"), Dport: 81, Iif: "eth0"}
	ex := Explain(rs, p, r)
	if ex.Outcome != Undecided || ex.Decision == nil || !strings.Contains(ex.Decision.Rule, "INBOUND DROP") || !strings.Contains(ex.Decision.Effect, "ALLOW FW MARK") {
		t.Errorf("an unpublished port behind the mark rule: %s by %+v, want undecided", ex.Outcome, ex.Decision)
	}
	p.Dport = 80
	if ex := Explain(rs, p, r); ex.Outcome != Delivered {
		t.Errorf("a directly routed published port: %s by %+v", ex.Outcome, ex.Decision)
	}
	// Another table's drop after berth's accept holds, marked or not.
	r.dropsOut = "eth0"
	if ex := Explain(rs, p, r); ex.Outcome != Dropped || ex.Decision == nil || !strings.Contains(ex.Decision.Chain, "FORWARD") {
		t.Errorf("another table's forward drop: %s by %+v, want dropped there", ex.Outcome, ex.Decision)
	}
	r.dropsOut = ""
	nets[0].AcceptMask = 0
	if _, err := Build(nets); err == nil || !strings.Contains(err.Error(), "outside its mask") {
		t.Errorf("a mark with a zero mask: %v", err)
	}
}
