package network

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
)

// configOnlyRequest is `network create --config-only` with a subnet of
// each family, IPv6 on, an option, a label and an IPAM option.
func configOnlyRequest(name string) CreateRequest {
	return CreateRequest{
		Name: name, Driver: DriverBridge, ConfigOnly: true, EnableIPv6: true,
		IPAM: []IPAMRequest{
			{Subnet: mustPrefix("fd00:6::/64")},
			{Subnet: mustPrefix("10.6.0.0/24"), IPRange: mustPrefix("10.6.0.128/25"),
				AuxAddresses: map[string]netip.Addr{"printer": netip.MustParseAddr("10.6.0.5")}},
		},
		Options:     map[string]string{OptBridgeName: "br-cfg", OptMTU: "1400"},
		Labels:      map[string]string{"env": "test"},
		IPAMOptions: map[string]string{"k": "v"},
	}
}

// A configuration network is a record alone: driver null, no bridge, no
// rules, no address space, kept across a restart, and no endpoint.
func TestConfigOnlyNetworkIsARecordAlone(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	ruled := func() int { r.fw.mu.Lock(); defer r.fw.mu.Unlock(); return len(r.fw.nets) }
	bridges, rules := len(r.drv.bridges), ruled()
	n, err := r.c.CreateNetwork(ctx, configOnlyRequest("cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != DriverNull || !n.ConfigOnly || n.IPv4 != nil || n.IPv6 != nil || n.Bridge != nil || n.IsNone() {
		t.Fatalf("config network = %+v", n)
	}
	if len(r.drv.bridges) != bridges || ruled() != rules {
		t.Fatalf("a configuration network touched the kernel: bridges %v, networks with rules %d", r.drv.bridges, ruled())
	}
	r.restart(t)
	got, err := r.c.Network("cfg")
	if err != nil {
		t.Fatal(err)
	}
	want := configOnlyRequest("cfg")
	if diff := cmp.Diff(&NetworkConfig{IPv4: true, IPv6: true, IPAM: want.IPAM}, got.Config, cmpNetip); diff != "" {
		t.Errorf("config after restart (-want +got):\n%s", diff)
	}
	if !cmp.Equal(got.Options, want.Options) || !cmp.Equal(got.Labels, want.Labels) || !cmp.Equal(got.IPAMOptions, want.IPAMOptions) {
		t.Errorf("options %v, labels %v, IPAM options %v after restart", got.Options, got.Labels, got.IPAMOptions)
	}
	sb := r.sandbox(t, "x")
	if _, err := r.c.Join(ctx, sb.ID, "cfg", JoinRequest{Name: "x"}); !errdefs.Is(err, errdefs.KindForbidden) ||
		err.Error() != "cannot create endpoint on configuration-only network" {
		t.Fatalf("join a configuration network = %v", err)
	}
	if eps := r.c.Endpoints(got.ID); len(eps) != 0 {
		t.Fatalf("endpoints on a configuration network: %v", eps)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "cfg"}); !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("a network of a configuration network's name = %v", err)
	}
}

// A network made --config-from takes the configuration's families,
// subnets, options, labels and IPAM options, and gets a bridge of its
// own; the configuration cannot go while it exists, and prune keeps it.
func TestConfigFromTakesTheConfiguration(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, configOnlyRequest("cfg")); err != nil {
		t.Fatal(err)
	}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web", ConfigFrom: "cfg", Internal: true, IPAMOptions: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if n.ConfigFrom != "cfg" || !n.Internal || n.Driver != DriverBridge || n.Bridge.Name != "br-cfg" || n.Bridge.MTU != 1400 {
		t.Fatalf("network from cfg = %+v, bridge %+v", n, n.Bridge)
	}
	if n.IPv4 == nil || n.IPv4.Subnet != mustPrefix("10.6.0.0/24") || n.IPv4.IPRange != mustPrefix("10.6.0.128/25") ||
		n.IPv4.AuxAddresses["printer"] != netip.MustParseAddr("10.6.0.5") || n.IPv6 == nil || n.IPv6.Subnet != mustPrefix("fd00:6::/64") {
		t.Fatalf("address spaces = %+v, %+v", n.IPv4, n.IPv6)
	}
	if n.Labels["env"] != "test" || n.IPAMOptions["k"] != "v" {
		t.Fatalf("labels %v, IPAM options %v", n.Labels, n.IPAMOptions)
	}
	if _, ok := r.drv.bridges["br-cfg"]; !ok {
		t.Fatal("no bridge made for the network")
	}
	sb := r.sandbox(t, "x")
	ep := r.join(t, sb, "web", JoinRequest{Name: "x"})
	if !n.IPv4.IPRange.Contains(ep.Address.Addr()) {
		t.Fatalf("address %v outside the configuration's range", ep.Address)
	}

	err = r.c.RemoveNetwork(ctx, "cfg")
	if !errdefs.Is(err, errdefs.KindForbidden) || err.Error() != `error while removing network: configuration network "cfg" is in use` {
		t.Fatalf("remove a configuration in use = %v", err)
	}
	if pruned, err := r.c.PruneNetworks(ctx, PruneFilter{}); err != nil || len(pruned) != 0 {
		t.Fatalf("prune = %v, %v (web is in use, cfg is a configuration)", pruned, err)
	}
	if err := r.c.Leave(ctx, sb.ID, "web"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.RemoveNetwork(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if pruned, err := r.c.PruneNetworks(ctx, PruneFilter{}); err != nil || len(pruned) != 0 {
		t.Fatalf("prune = %v, %v: a configuration network is kept", pruned, err)
	}
	if err := r.c.RemoveNetwork(ctx, "cfg"); err != nil {
		t.Fatalf("remove an unused configuration: %v", err)
	}
	r.restart(t)
	if _, err := r.c.Network("cfg"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("configuration network back after a restart: %v", err)
	}
}

// A create --config-from gives nothing of its own, names a configuration
// network by its name, and a configuration network depends on none
// (libnetwork's validateConfiguration, its words).
func TestConfigNetworkRules(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, configOnlyRequest("cfg")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "plain"}); err != nil {
		t.Fatal(err)
	}
	cfgID := r.c.mustNetwork(t, "cfg").ID
	userConfig := "user specified configurations are not supported if the network depends on a configuration network"
	operator := "configuration network can only contain network specific fields. Network operator fields like [ ingress | internal | attachable | scope ] are not supported."
	for _, tc := range []struct {
		name string
		req  CreateRequest
		kind errdefs.Kind
		err  string
	}{
		{"subnet", CreateRequest{ConfigFrom: "cfg", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.7.0.0/24")}}}, errdefs.KindForbidden, userConfig},
		{"ipv6", CreateRequest{ConfigFrom: "cfg", EnableIPv6: true}, errdefs.KindForbidden, userConfig},
		{"ipv4 off", CreateRequest{ConfigFrom: "cfg", NoIPv4: true}, errdefs.KindForbidden, userConfig},
		{"label", CreateRequest{ConfigFrom: "cfg", Labels: map[string]string{"a": "b"}}, errdefs.KindForbidden, userConfig},
		{"ipam option", CreateRequest{ConfigFrom: "cfg", IPAMOptions: map[string]string{"a": "b"}}, errdefs.KindForbidden, userConfig},
		{"option", CreateRequest{ConfigFrom: "cfg", Options: map[string]string{OptMTU: "1300"}}, errdefs.KindForbidden,
			"network driver options are not supported if the network depends on a configuration network"},
		{"no such", CreateRequest{ConfigFrom: "nope"}, errdefs.KindNotFound, `configuration network "nope" does not exist`},
		{"not a configuration", CreateRequest{ConfigFrom: "plain"}, errdefs.KindNotFound, `configuration network "plain" does not exist`},
		{"by ID", CreateRequest{ConfigFrom: cfgID}, errdefs.KindNotFound, `configuration network "` + cfgID + `" does not exist`},
		{"config from config", CreateRequest{ConfigOnly: true, ConfigFrom: "cfg"}, errdefs.KindForbidden, "a configuration network cannot depend on another configuration network"},
		{"internal config", CreateRequest{ConfigOnly: true, Internal: true}, errdefs.KindForbidden, operator},
		{"attachable config", CreateRequest{ConfigOnly: true, Attachable: true}, errdefs.KindForbidden, operator},
		{"predefined name", CreateRequest{ConfigOnly: true, Name: "none"}, errdefs.KindForbidden, "operation is not permitted on predefined none network "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Name == "" {
				tc.req.Name = "n"
			}
			_, err := r.c.CreateNetwork(ctx, tc.req)
			if !errdefs.Is(err, tc.kind) || err.Error() != tc.err {
				t.Fatalf("create = %v, want %v %q", err, tc.kind, tc.err)
			}
			if _, err := r.c.Network("n"); !errdefs.Is(err, errdefs.KindNotFound) {
				t.Fatalf("a refused create left a network: %v", err)
			}
		})
	}
}

// A configuration removed, or removed and made again, between the
// create's reading of it and its record is not used: the create fails
// rather than leave a network made from a configuration that is gone, or
// recorded as made from the new one with the old one's settings.
func TestConfigFromItsConfigurationChangedMeanwhile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		again bool
		kind  errdefs.Kind
	}{{"removed", false, errdefs.KindNotFound}, {"made again", true, errdefs.KindConflict}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			if _, err := r.c.CreateNetwork(ctx, configOnlyRequest("cfg")); err != nil {
				t.Fatal(err)
			}
			req, id, err := r.c.withConfigFrom(CreateRequest{Name: "web", ConfigFrom: "cfg"})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.c.RemoveNetwork(ctx, "cfg"); err != nil {
				t.Fatal(err)
			}
			if tc.again {
				if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "cfg", ConfigOnly: true}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.c.planNetwork(req, false, id); !errdefs.Is(err, tc.kind) {
				t.Fatalf("plan = %v, want kind %v", err, tc.kind)
			}
		})
	}
}

// An IPv6-only configuration keeps its IPv4 triples (and shows them), but
// a network made from it counts its IPv6 ones alone.
func TestConfigFromIPv6OnlyWithIPv4Triples(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	req := CreateRequest{Name: "cfg6", ConfigOnly: true, NoIPv4: true, EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("10.1.0.0/24")}, {Subnet: mustPrefix("10.2.0.0/24")}, {Subnet: mustPrefix("fd00:9::/64")}}}
	if _, err := r.c.CreateNetwork(ctx, req); err != nil {
		t.Fatal(err)
	}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "v6", ConfigFrom: "cfg6"})
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv4 != nil || n.IPv6 == nil || n.IPv6.Subnet != mustPrefix("fd00:9::/64") {
		t.Errorf("network from an IPv6-only configuration: %+v, %+v", n.IPv4, n.IPv6)
	}
}

func (c *Controller) mustNetwork(t *testing.T, ref string) *Network {
	t.Helper()
	n, err := c.Network(ref)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A driver Docker has and berth has not is refused by name; any other is
// a plugin not found, in moby's words.
func TestUnknownNetworkDrivers(t *testing.T) {
	r := newRig(t)
	for driver, want := range map[string]struct {
		kind errdefs.Kind
		err  string
	}{
		"macvlan":   {errdefs.KindInvalid, `network driver "macvlan" is not supported by berth: use "bridge"`},
		"nosuchdrv": {errdefs.KindNotFound, `plugin "nosuchdrv" not found`},
	} {
		_, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "n", Driver: driver})
		if !errdefs.Is(err, want.kind) || err.Error() != want.err {
			t.Errorf("create -d %s = %v, want %q", driver, err, want.err)
		}
	}
}
