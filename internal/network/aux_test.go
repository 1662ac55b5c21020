package network

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

// TestAuxAddresses: a network's auxiliary addresses (--aux-address) are
// held from its creation on, in its range or out of it, and across a
// restart: no container gets one, by allocation or by --ip; inspect keeps
// them. One outside the subnet, or one already taken (the gateway), fails
// the create in libnetwork's words.
func TestAuxAddresses(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	aux := map[string]netip.Addr{"host1": netip.MustParseAddr("10.77.0.2"), "far": netip.MustParseAddr("10.77.0.200")}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "auxnet", IPAM: []IPAMRequest{{
		Subnet: mustPrefix("10.77.0.0/24"), IPRange: mustPrefix("10.77.0.0/29"), AuxAddresses: aux,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.IPv4.AuxAddresses; len(got) != 2 || got["host1"] != aux["host1"] || got["far"] != aux["far"] {
		t.Errorf("recorded auxiliary addresses %v, want %v", got, aux)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "auxnet", JoinRequest{ContainerID: "c1", Name: "one"})
	if got := ep.Address.Addr(); got != netip.MustParseAddr("10.77.0.3") {
		t.Errorf("first container got %s, want 10.77.0.3 (.1 the gateway, .2 host1's)", got)
	}
	_, err = r.c.Join(ctx, r.sandbox(t, "c2").ID, "auxnet", JoinRequest{ContainerID: "c2", Name: "two", IPv4: aux["far"]})
	if err == nil || !strings.Contains(err.Error(), "already taken") {
		t.Errorf("--ip of an auxiliary address (outside the range): %v, want it taken", err)
	}
	r.restart(t)
	ep3 := r.join(t, r.sandbox(t, "c3"), "auxnet", JoinRequest{ContainerID: "c3", Name: "three"})
	if got := ep3.Address.Addr(); got != netip.MustParseAddr("10.77.0.4") {
		t.Errorf("after a restart a container got %s, want 10.77.0.4", got)
	}
	if _, err := r.c.Join(ctx, r.sandbox(t, "c4").ID, "auxnet", JoinRequest{ContainerID: "c4", Name: "four", IPv4: aux["host1"]}); err == nil || !strings.Contains(err.Error(), "already taken") {
		t.Errorf("after a restart, --ip of host1's address: %v, want it taken", err)
	}

	for _, tc := range []struct {
		name string
		aux  map[string]netip.Addr
		kind errdefs.Kind
		want string
	}{
		{"outside the subnet", map[string]netip.Addr{"x": netip.MustParseAddr("10.78.0.5")}, errdefs.KindForbidden,
			"auxiliary address: (x:10.78.0.5) must belong to the master pool: 10.78.1.0/24"},
		{"the gateway", map[string]netip.Addr{"gw": netip.MustParseAddr("10.78.1.1")}, errdefs.KindUnknown,
			"failed to allocate secondary ip address (gw:10.78.1.1)"},
	} {
		_, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "bad", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.78.1.0/24"), AuxAddresses: tc.aux}}})
		if err == nil || errdefs.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (kind %v), want %v %q", tc.name, err, errdefs.KindOf(err), tc.kind, tc.want)
		}
		if _, err := r.c.Network("bad"); err == nil {
			t.Errorf("%s: the refused network was made", tc.name)
		}
	}
}
