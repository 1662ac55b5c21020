package network

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

// TestEndpointIfnameAndSysctls: an endpoint's driver options name its
// interface (the next join still takes the lowest free ethN) and give
// it sysctls, which reach the driver with the name; a name the container
// already has, or a bad sysctl, fails the join and holds nothing.
func TestEndpointIfnameAndSysctls(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, name := range []string{"lan", "wan"} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "lan", JoinRequest{ContainerID: "c1", Name: "one", DriverOpts: map[string]string{
		OptEndpointIfname: "lan0", OptEndpointSysctls: "net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.IFNAME.accept_ra=0",
	}})
	if ep.IfName != "lan0" {
		t.Errorf("interface %q, want lan0", ep.IfName)
	}
	spec := r.drv.veths[ep.HostIfName]
	if spec.IfName != "lan0" || !slices.Equal(spec.Sysctls, []string{"net.ipv4.conf.IFNAME.log_martians=1", "net.ipv6.conf.IFNAME.accept_ra=0"}) {
		t.Errorf("driver spec: ifname %q, sysctls %q", spec.IfName, spec.Sysctls)
	}
	ep2 := r.join(t, sb, "wan", JoinRequest{ContainerID: "c1", Name: "one"})
	if ep2.IfName != "eth0" {
		t.Errorf("next interface %q, want eth0", ep2.IfName)
	}
	r.restart(t)
	if got := r.c.endpoints[ep.ID]; got == nil || got.IfName != "lan0" || len(got.Sysctls) != 2 {
		t.Errorf("after a restart the endpoint is %+v", got)
	}

	wan, err := r.c.Network("wan")
	if err != nil {
		t.Fatal(err)
	}
	wanID := wan.ID
	sb2 := r.sandbox(t, "c2")
	r.join(t, sb2, "lan", JoinRequest{ContainerID: "c2", Name: "two"})
	held := r.c.spaces[wanID].Free()
	_, err = r.c.Join(ctx, sb2.ID, "wan", JoinRequest{ContainerID: "c2", Name: "two", DriverOpts: map[string]string{OptEndpointIfname: "eth0"}})
	if !errdefs.Is(err, errdefs.KindForbidden) || !strings.Contains(err.Error(), "interface name eth0 is already in use") {
		t.Errorf("a name the container has: %v", err)
	}
	_, err = r.c.Join(ctx, sb2.ID, "wan", JoinRequest{ContainerID: "c2", Name: "two", DriverOpts: map[string]string{OptEndpointSysctls: "net.ipv4.conf.eth0.forwarding=1"}})
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("a sysctl naming eth0: %v, want invalid", err)
	}
	if got := r.c.spaces[wanID].Free(); got != held {
		t.Errorf("refused joins left %d addresses held", held-got)
	}
}
