package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	nettypes "github.com/docker/docker/api/types/network"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

func TestNetworkInspectBridgeGolden(t *testing.T) {
	f := newFakeBackend()
	f.endpoints = map[string][]*network.Endpoint{} // the seed's bridge has no containers yet
	rec := call(t, newServer(f), http.MethodGet, "/v1.51/networks/32b93b141bae", "")
	wantStatus(t, rec, http.StatusOK)
	golden(t, "network-inspect-bridge.json", indentJSON(t, rec.Body.Bytes()))
}

func TestNetworkInspectContainers(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodGet, "/networks/bridge", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[struct {
		Containers map[string]map[string]string
	}](t, rec)
	want := map[string]map[string]string{
		hexID("4fea95f2e979"): {
			"Name": "test1", "EndpointID": hexID("e1"), "MacAddress": "02:42:ac:11:00:02",
			"IPv4Address": "172.17.0.2/16", "IPv6Address": "",
		},
	}
	if diff := cmp.Diff(want, got.Containers); diff != "" {
		t.Errorf("Containers (-want +got):\n%s", diff)
	}
}

func TestNetworkInspectNotFound(t *testing.T) {
	wantError(t, call(t, newServer(newFakeBackend()), http.MethodGet, "/networks/nope", ""),
		http.StatusNotFound, "network nope not found")
	wantError(t, call(t, newServer(newFakeBackend()), http.MethodGet, "/networks/bridge?scope=swarm", ""),
		http.StatusNotFound, "network bridge not found")
	wantStatus(t, call(t, newServer(newFakeBackend()), http.MethodGet, "/networks/bridge?scope=local&verbose=true", ""), http.StatusOK)
}

func TestNetworkList(t *testing.T) {
	tests := []struct {
		name, filters string
		want          []string
	}{
		{"all", "", []string{"bridge", "host", "none", "web"}},
		{"name map form", `{"name":{"web":true}}`, []string{"web"}},
		{"name legacy list form", `{"name":["web"]}`, []string{"web"}},
		{"name is a substring match", `{"name":{"o":true}}`, []string{"host", "none"}},
		{"id prefix", `{"id":{"c363d9":true}}`, []string{"host"}},
		{"driver", `{"driver":{"bridge":true}}`, []string{"bridge", "web"}},
		{"label key", `{"label":{"env":true}}`, []string{"web"}},
		{"label key=value", `{"label":{"env=prod":true}}`, nil},
		{"type custom", `{"type":{"custom":true}}`, []string{"web"}},
		{"type builtin", `{"type":{"builtin":true}}`, []string{"bridge", "host", "none"}},
		{"scope local", `{"scope":{"local":true}}`, []string{"bridge", "host", "none", "web"}},
		{"dangling", `{"dangling":{"true":true}}`, nil},
	}
	for filters, want := range map[string]string{
		`{"dangling":{"maybe":true}}`:             `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`,
		`{"dangling":{"true":true,"false":true}}`: `got more than one value for filter key "dangling"`,
	} {
		wantError(t, call(t, newServer(newFakeBackend()), http.MethodGet, "/v1.51/networks?filters="+url.QueryEscape(filters), ""), http.StatusBadRequest, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1.51/networks"
			if tt.filters != "" {
				path += "?filters=" + url.QueryEscape(tt.filters)
			}
			rec := call(t, newServer(newFakeBackend()), http.MethodGet, path, "")
			wantStatus(t, rec, http.StatusOK)
			var got []string
			for _, n := range decode[[]map[string]any](t, rec) {
				got = append(got, n["Name"].(string))
				if c, ok := n["Containers"].(map[string]any); !ok || len(c) != 0 {
					t.Errorf("%s: Containers = %v, want {} in a list", n["Name"], n["Containers"])
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNetworkCreate(t *testing.T) {
	f := newFakeBackend()
	body := `{"Name":"app","Driver":"bridge","Internal":true,"CheckDuplicate":true,
		"IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/16","IPRange":"10.9.1.0/24","Gateway":"10.9.0.254"}]},
		"Options":{"com.docker.network.bridge.name":"br-app"},"Labels":{"a":"b"}}`
	rec := call(t, newServer(f), http.MethodPost, "/v1.51/networks/create", body)
	wantStatus(t, rec, http.StatusCreated)
	if diff := cmp.Diff(map[string]string{"Id": hexID("5e"), "Warning": ""}, decode[map[string]string](t, rec)); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	want := network.CreateRequest{
		Name: "app", Driver: "bridge", Internal: true, IPAMDriver: "default",
		IPAM: []network.IPAMRequest{{
			Subnet:  netip.MustParsePrefix("10.9.0.0/16"),
			IPRange: netip.MustParsePrefix("10.9.1.0/24"),
			Gateway: netip.MustParseAddr("10.9.0.254"),
		}},
		Options: map[string]string{"com.docker.network.bridge.name": "br-app"},
		Labels:  map[string]string{"a": "b"},
	}
	if diff := cmp.Diff(want, f.recorded().NetworkCreate, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("CreateRequest (-want +got):\n%s", diff)
	}
}

// TestNetworkCreateConfigOnly: --config-only reaches the backend with
// every --subnet triple, of a family that is off too (libnetwork keeps
// them); --config-from with the name alone, nothing dropped, so that the
// network package can refuse a subnet of either family.
func TestNetworkCreateConfigOnly(t *testing.T) {
	cmpNetip := cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})
	f := newFakeBackend()
	body := `{"Name":"cfg","Driver":"macvlan","ConfigOnly":true,"Options":{"parent":"eth0"},
		"IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24"},{"Subnet":"fd00:9::/64"}],"Options":{}}}`
	wantStatus(t, call(t, newServer(f), http.MethodPost, "/v1.51/networks/create", body), http.StatusCreated)
	want := network.CreateRequest{
		Name: "cfg", Driver: "macvlan", ConfigOnly: true, IPAMDriver: "default", IPAMOptions: map[string]string{},
		IPAM:    []network.IPAMRequest{{Subnet: netip.MustParsePrefix("10.9.0.0/24")}, {Subnet: netip.MustParsePrefix("fd00:9::/64")}},
		Options: map[string]string{"parent": "eth0"},
	}
	if diff := cmp.Diff(want, f.recorded().NetworkCreate, cmpNetip); diff != "" {
		t.Errorf("CreateRequest (-want +got):\n%s", diff)
	}
	body = `{"Name":"from-cfg","Driver":"bridge","ConfigFrom":{"Network":"cfg"},"IPAM":{"Driver":"default","Config":[{"Subnet":"fd00:8::/64"}],"Options":{}}}`
	wantStatus(t, call(t, newServer(f), http.MethodPost, "/v1.51/networks/create", body), http.StatusCreated)
	want = network.CreateRequest{
		Name: "from-cfg", Driver: "bridge", ConfigFrom: "cfg", IPAMDriver: "default", IPAMOptions: map[string]string{},
		IPAM: []network.IPAMRequest{{Subnet: netip.MustParsePrefix("fd00:8::/64")}},
	}
	if diff := cmp.Diff(want, f.recorded().NetworkCreate, cmpNetip); diff != "" {
		t.Errorf("CreateRequest (-want +got):\n%s", diff)
	}
}

// TestNetworkInspectConfigOnly: a configuration network shows its driver
// null, its families and its --subnet triples as given (IPv4 first, no
// gateway chosen), ConfigOnly; a network made from it names it.
func TestNetworkInspectConfigOnly(t *testing.T) {
	cfg := &network.Network{ID: hexID("c0"), Name: "cfg", Driver: network.DriverNull, ConfigOnly: true,
		Config: &network.NetworkConfig{IPv4: false, IPv6: true, IPAM: []network.IPAMRequest{
			{Subnet: netip.MustParsePrefix("fd00:9::/64"), Gateway: netip.MustParseAddr("fd00:9::fe")},
			{Subnet: netip.MustParsePrefix("10.9.0.0/24"), IPRange: netip.MustParsePrefix("10.9.0.0/25")},
		}}}
	got := networkResource(cfg, nil)
	want := []nettypes.IPAMConfig{{Subnet: "10.9.0.0/24", IPRange: "10.9.0.0/25"}, {Subnet: "fd00:9::/64", Gateway: "fd00:9::fe"}}
	if diff := cmp.Diff(want, got.IPAM.Config); diff != "" {
		t.Errorf("IPAM config (-want +got):\n%s", diff)
	}
	if got.Driver != "null" || !got.ConfigOnly || got.EnableIPv4 || !got.EnableIPv6 || got.ConfigFrom.Network != "" || got.Scope != "local" {
		t.Errorf("config network = %+v", got)
	}
	from := networkResource(&network.Network{ID: hexID("c1"), Name: "web", Driver: network.DriverBridge, ConfigFrom: "cfg",
		IPv4: &network.IPConfig{Subnet: netip.MustParsePrefix("10.9.0.0/24"), Gateway: netip.MustParseAddr("10.9.0.1")}}, nil)
	if from.ConfigFrom.Network != "cfg" || from.ConfigOnly || !from.EnableIPv4 {
		t.Errorf("network from cfg = %+v", from)
	}
}

// TestNetworkAuxAddresses: --aux-address reaches the backend parsed and
// comes back in inspect's IPAM config as AuxiliaryAddresses; one outside
// the subnet is moby's ValidateIPAM error, and moby's bridge-driver keys
// that reroute the containers' default gateway are refused by name.
func TestNetworkAuxAddresses(t *testing.T) {
	f := newFakeBackend()
	body := `{"Name":"aux","IPAM":{"Config":[{"Subnet":"10.9.0.0/24","AuxiliaryAddresses":{"router":"10.9.0.5"}}]}}`
	wantStatus(t, call(t, newServer(f), http.MethodPost, "/v1.51/networks/create", body), http.StatusCreated)
	if got := f.recorded().NetworkCreate.IPAM[0].AuxAddresses; len(got) != 1 || got["router"] != netip.MustParseAddr("10.9.0.5") {
		t.Errorf("AuxAddresses %v", got)
	}
	for body, want := range map[string]string{
		`{"Name":"x","IPAM":{"Config":[{"Subnet":"10.9.0.0/24","AuxiliaryAddresses":{"r":"10.8.0.5"}}]}}`:                  "invalid network config:\ninvalid auxiliary address r: parent subnet 10.9.0.0/24 doesn't contain this address",
		`{"Name":"x","IPAM":{"Config":[{"Subnet":"10.9.0.0/24","AuxiliaryAddresses":{"DefaultGatewayIPv4":"10.9.0.5"}}]}}`: "auxiliary address DefaultGatewayIPv4 (the containers' default gateway) is not supported by berth",
	} {
		wantError(t, call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/networks/create", body), http.StatusBadRequest, want)
	}
	for _, n := range f.networks {
		if n.Name == "web" {
			n.IPv4.AuxAddresses = map[string]netip.Addr{"router": netip.MustParseAddr("10.9.0.5")}
		}
	}
	type inspected struct {
		IPAM struct {
			Config []struct{ AuxiliaryAddresses map[string]string }
		}
	}
	got := decode[inspected](t, call(t, newServer(f), http.MethodGet, "/v1.51/networks/web", ""))
	if len(got.IPAM.Config) == 0 || got.IPAM.Config[0].AuxiliaryAddresses["router"] != "10.9.0.5" {
		t.Errorf("inspect's IPAM config %+v, want router=10.9.0.5", got.IPAM.Config)
	}
}

// TestNetworkCreateIPAMOptions: IPAM.Options reach the backend as sent —
// nil when absent, {} as the docker CLI sends without --ipam-opt — for
// Docker's default driver, which keeps options it does not use.
func TestNetworkCreateIPAMOptions(t *testing.T) {
	for _, tc := range []struct {
		name, ipam string
		want       map[string]string
	}{
		{"docker CLI --ipam-opt", `,"IPAM":{"Driver":"default","Config":[],"Options":{"foo":"bar"}}`, map[string]string{"foo": "bar"}},
		{"docker CLI without", `,"IPAM":{"Driver":"default","Config":[],"Options":{}}`, map[string]string{}},
		{"IPAM without Options", `,"IPAM":{"Driver":"default"}`, nil},
		{"no IPAM", ``, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeBackend()
			rec := call(t, newServer(f), http.MethodPost, "/v1.51/networks/create", `{"Name":"ipo"`+tc.ipam+`}`)
			wantStatus(t, rec, http.StatusCreated)
			got := f.recorded().NetworkCreate.IPAMOptions
			if diff := cmp.Diff(tc.want, got); diff != "" || (got == nil) != (tc.want == nil) {
				t.Errorf("IPAMOptions (-want +got):\n%s (got nil: %v)", diff, got == nil)
			}
		})
	}
}

// TestNetworkInspectIPAMOptions: inspect shows a network's IPAM options as
// stored: null for none (the predefined bridge, as the seed shows), {} for
// an empty set.
func TestNetworkInspectIPAMOptions(t *testing.T) {
	type inspected struct {
		IPAM struct{ Options json.RawMessage }
	}
	for _, tc := range []struct {
		opts map[string]string
		want string
	}{
		{nil, `null`},
		{map[string]string{}, `{}`},
		{map[string]string{"foo": "bar"}, `{"foo":"bar"}`},
	} {
		f := newFakeBackend()
		for _, n := range f.networks {
			if n.Name == "web" {
				n.IPAMOptions = tc.opts
			}
		}
		rec := call(t, newServer(f), http.MethodGet, "/v1.51/networks/web", "")
		wantStatus(t, rec, http.StatusOK)
		got := decode[inspected](t, rec)
		if string(got.IPAM.Options) != tc.want {
			t.Errorf("IPAM.Options of %v = %s, want %s", tc.opts, got.IPAM.Options, tc.want)
		}
	}
}

func TestNetworkCreateDuplicate(t *testing.T) {
	wantError(t, call(t, newServer(newFakeBackend()), http.MethodPost, "/networks/create", `{"Name":"web"}`),
		http.StatusConflict, "network with name web already exists")
}

func TestNetworkRemove(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodDelete, "/v1.51/networks/web", ""), http.StatusNoContent)
	wantError(t, call(t, s, http.MethodDelete, "/v1.51/networks/bridge", ""), http.StatusForbidden,
		"bridge is a pre-defined network and cannot be removed")
	wantError(t, call(t, s, http.MethodDelete, "/v1.51/networks/gone", ""), http.StatusNotFound, "network gone not found")
	if diff := cmp.Diff([]string{"RemoveNetwork web"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
}

func TestNetworkConnectDisconnect(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	body := `{"Container":"test1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.5.0.20"},"Aliases":["api"],"MacAddress":"02:00:00:00:00:01"}}`
	rec := call(t, s, http.MethodPost, "/v1.51/networks/web/connect", body)
	wantStatus(t, rec, http.StatusOK)
	want := container.EndpointRequest{IPv4Address: netip.MustParseAddr("10.5.0.20"), Aliases: []string{"api"}, MacAddress: "02:00:00:00:00:01"}
	if diff := cmp.Diff(want, f.recorded().Connect, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("EndpointRequest (-want +got):\n%s", diff)
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/networks/web/disconnect", `{"Container":"test1","Force":true}`), http.StatusOK)
	wantError(t, call(t, s, http.MethodPost, "/v1.51/networks/web/connect", `{"Container":"nope"}`), http.StatusNotFound, "No such container: nope")
	if diff := cmp.Diff([]string{"ConnectNetwork web test1", "DisconnectNetwork web test1 true"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
}

func TestNetworkPrune(t *testing.T) {
	f := newFakeBackend()
	rec := call(t, newServer(f), http.MethodPost, "/v1.51/networks/prune?filters="+url.QueryEscape(`{"label":{"env=test":true}}`), "")
	wantStatus(t, rec, http.StatusOK)
	if diff := cmp.Diff(`{"NetworksDeleted":["web"]}`+"\n", rec.Body.String()); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	// label! (docker network prune --filter label!=keep)
	rec = call(t, newServer(f), http.MethodPost, "/v1.51/networks/prune?filters="+url.QueryEscape(`{"label!":{"keep":true}}`), "")
	wantStatus(t, rec, http.StatusOK)
	// until (docker network prune --filter until=…, and docker system
	// prune --filter until=…, which asks for networks with it too)
	rec = call(t, newServer(f), http.MethodPost, "/v1.51/networks/prune?filters="+url.QueryEscape(`{"until":{"2026-01-02T03:04:05Z":true}}`), "")
	wantStatus(t, rec, http.StatusOK)
	if diff := cmp.Diff([]string{"PruneNetworks [env=test]", "PruneNetworks []", "PruneNetworks not [keep]", "PruneNetworks []", "PruneNetworks until 2026-01-02T03:04:05Z"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
	wantStatus(t, call(t, newServer(f), http.MethodPost, "/v1.51/networks/prune?filters="+url.QueryEscape(`{"until":{"yesterday":true}}`), ""), http.StatusBadRequest)
	wantError(t, call(t, newServer(f), http.MethodPost, "/v1.51/networks/prune?filters="+url.QueryEscape(`{"dangling":{"true":true}}`), ""), http.StatusBadRequest, "invalid filter 'dangling'")
}

func TestNetworkWarnings(t *testing.T) {
	f := newFakeBackend()
	const warn = `route 172.17.0.0/24 dev eth0 overlaps network "bridge" (172.17.0.0/16)`
	f.networks[0].Warnings = []string{warn}
	rec := call(t, newServer(f), http.MethodGet, "/v1.51/networks/bridge", "")
	wantStatus(t, rec, http.StatusOK)
	if diff := cmp.Diff([]string{warn}, decode[struct{ Warnings []string }](t, rec).Warnings); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
	rec = call(t, newServer(newFakeBackend()), http.MethodGet, "/v1.51/networks/bridge", "")
	if strings.Contains(rec.Body.String(), "Warnings") {
		t.Errorf("Warnings present without warnings: %s", rec.Body.String())
	}
	rec = call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/networks/create", `{"Name":"vpn"}`)
	wantStatus(t, rec, http.StatusCreated)
	want := `route 10.8.0.0/16 dev tun0 overlaps network "vpn" (10.8.0.0/16)`
	if got := decode[map[string]string](t, rec)["Warning"]; got != want {
		t.Errorf("create Warning = %q, want %q", got, want)
	}
}

// TestEndpointOptions: the interface's name and sysctls are checked as
// moby's validateEndpointSettings checks them (and as the kernel takes a
// name); other driver options mean nothing, as in moby's bridge driver; a
// gateway priority is taken.
func TestEndpointOptions(t *testing.T) {
	for _, tt := range []struct {
		es   nettypes.EndpointSettings
		want string
	}{
		{nettypes.EndpointSettings{GwPriority: -10}, ""},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.forwarding=1,net.ipv6.conf.ifname.accept_ra=0"}}, ""},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.ifname": "foo0"}}, ""},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.sysctls": "net.ipv4.conf.eth0.forwarding=1"}},
			"invalid endpoint settings:\nunrecognised network interface sysctl 'net.ipv4.conf.eth0.forwarding=1'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.sysctls": "kernel.IFNAME.x.y.z=1"}}, "invalid endpoint settings:\nunrecognised network interface sysctl"},
		// The families moby takes: ipv4, ipv6 and mpls, no other.
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.sysctls": "net.mpls.conf.IFNAME.input=1"}}, ""},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.sysctls": "net.core.conf.IFNAME.x=1"}}, "invalid endpoint settings:\nunrecognised network interface sysctl 'net.core.conf.IFNAME.x=1'"},
		// --link-local-ip: parsed as net.ParseIP would (no zone); whether
		// it is link-local is the join's to say, as moby's CreateEndpoint.
		{nettypes.EndpointSettings{IPAMConfig: &nettypes.EndpointIPAMConfig{LinkLocalIPs: []string{"169.254.0.5", "fe80::5", "10.0.0.5"}}}, ""},
		{nettypes.EndpointSettings{IPAMConfig: &nettypes.EndpointIPAMConfig{LinkLocalIPs: []string{"fe80::5%eth0"}}}, "invalid endpoint settings:\ninvalid link-local IP address: fe80::5%eth0"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.ifname": "a/b"}}, "invalid endpoint settings:\ncom.docker.network.endpoint.ifname: \"a/b\" is not a valid interface name"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.ifname": "sixteen-chars-xx"}}, "invalid endpoint settings:"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.ifname": "q%d"}}, "invalid endpoint settings:"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.ifname": "all"}}, "invalid endpoint settings:"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"com.docker.network.endpoint.ifname": "default"}}, "invalid endpoint settings:"},
		{nettypes.EndpointSettings{DriverOpts: map[string]string{"x": "y"}}, ""},
	} {
		es := tt.es
		_, err := endpointRequest(&es, "", true)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.es, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errdefs.Is(err, errdefs.KindInvalid)):
			t.Errorf("%+v: %v, want Invalid %q", tt.es, err, tt.want)
		}
	}
}

// TestEndpointLinkLocalIPsKept: --link-local-ip's addresses are kept with
// the container's request and shown by inspect as given
// (IPAMConfig.LinkLocalIPs), with no address of either family beside them.
func TestEndpointLinkLocalIPsKept(t *testing.T) {
	req, err := endpointRequest(&nettypes.EndpointSettings{IPAMConfig: &nettypes.EndpointIPAMConfig{LinkLocalIPs: []string{"169.254.7.7", "fe80::7"}}}, "", true)
	if err != nil {
		t.Fatal(err)
	}
	want := &nettypes.EndpointIPAMConfig{LinkLocalIPs: []string{"169.254.7.7", "fe80::7"}}
	if diff := cmp.Diff(want, requestedEndpoint(req).IPAMConfig); diff != "" {
		t.Errorf("inspect IPAMConfig (-want +got):\n%s", diff)
	}
}

// TestEndpointDriverOptsKept: driver options berth takes are kept with the
// container's request and shown by inspect, as Docker shows them
// (NetworkSettings.Networks[…].DriverOpts).
func TestEndpointDriverOptsKept(t *testing.T) {
	req, err := endpointRequest(&nettypes.EndpointSettings{DriverOpts: map[string]string{"foo": "bar"}}, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := requestedEndpoint(req).DriverOpts; !cmp.Equal(got, map[string]string{"foo": "bar"}) {
		t.Errorf("inspect DriverOpts = %v, want map[foo:bar]", got)
	}
	req, err = endpointRequest(&nettypes.EndpointSettings{}, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := requestedEndpoint(req).DriverOpts; got != nil {
		t.Errorf("inspect DriverOpts = %v, want null as Docker shows none", got)
	}
}

// TestDualStackViews: a network with IPv6 shows EnableIPv6 and its IPv6
// IPAM entry after the IPv4 one, each endpoint's IPv6 address in
// Containers, and a container's endpoint the Global IPv6 fields and its
// --ip6 in IPAMConfig, as Docker's inspect does.
func TestDualStackViews(t *testing.T) {
	n := &network.Network{
		ID: hexID("d6"), Name: "dual", Driver: "bridge", Created: fakeTime,
		IPv4: &network.IPConfig{Subnet: netip.MustParsePrefix("10.7.0.0/24"), Gateway: netip.MustParseAddr("10.7.0.1")},
		IPv6: &network.IPConfig{Subnet: netip.MustParsePrefix("fd00:7::/64"), Gateway: netip.MustParseAddr("fd00:7::1"), UserSubnet: true},
	}
	ep := &network.Endpoint{
		ID: hexID("e6"), Name: "web", ContainerID: hexID("c6"), State: network.EndpointReady,
		Address: netip.MustParsePrefix("10.7.0.2/24"), Gateway: netip.MustParseAddr("10.7.0.1"),
		Address6: netip.MustParsePrefix("fd00:7::99/64"), Gateway6: netip.MustParseAddr("fd00:7::1"), StaticIP6: true,
	}
	got := networkResource(n, []*network.Endpoint{ep})
	if !got.EnableIPv6 || !got.EnableIPv4 {
		t.Errorf("EnableIPv4 %v EnableIPv6 %v", got.EnableIPv4, got.EnableIPv6)
	}
	want := []nettypes.IPAMConfig{{Subnet: "10.7.0.0/24", Gateway: "10.7.0.1"}, {Subnet: "fd00:7::/64", Gateway: "fd00:7::1"}}
	if diff := cmp.Diff(want, got.IPAM.Config); diff != "" {
		t.Errorf("IPAM.Config (-want +got):\n%s", diff)
	}
	if r := got.Containers[ep.ContainerID]; r.IPv6Address != "fd00:7::99/64" || r.IPv4Address != "10.7.0.2/24" {
		t.Errorf("Containers entry %+v", r)
	}
	c := &container.Container{ID: ep.ContainerID, Name: "web"}
	es := &nettypes.EndpointSettings{}
	fillEndpoint(es, c, n, ep)
	if es.GlobalIPv6Address != "fd00:7::99" || es.GlobalIPv6PrefixLen != 64 || es.IPv6Gateway != "fd00:7::1" {
		t.Errorf("endpoint IPv6 fields: %q /%d gw %q", es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway)
	}
	if es.IPAMConfig == nil || es.IPAMConfig.IPv6Address != "fd00:7::99" || es.IPAMConfig.IPv4Address != "" {
		t.Errorf("IPAMConfig %+v, want the --ip6 only", es.IPAMConfig)
	}
}

// TestEnableFamilyOptions: as moby's createNetwork, a field takes its
// option out of the network's options; an option without the field
// decides and stays.
func TestEnableFamilyOptions(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name     string
		body     nettypes.CreateRequest
		wantV6   bool
		wantNoV4 bool
		wantOpts map[string]string
	}{
		{"fields drop the options", nettypes.CreateRequest{Name: "a", CreateOptions: nettypes.CreateOptions{EnableIPv4: &yes, EnableIPv6: &yes,
			Options: map[string]string{network.OptEnableIPv4: "true", network.OptEnableIPv6: "false"}}}, true, false, map[string]string{}},
		{"options alone stay", nettypes.CreateRequest{Name: "a", CreateOptions: nettypes.CreateOptions{
			Options: map[string]string{network.OptEnableIPv4: "true", network.OptEnableIPv6: "1"}}}, true, false,
			map[string]string{network.OptEnableIPv4: "true", network.OptEnableIPv6: "1"}},
		{"neither", nettypes.CreateRequest{Name: "a"}, false, false, nil},
		{"IPv6-only by the fields", nettypes.CreateRequest{Name: "a", CreateOptions: nettypes.CreateOptions{EnableIPv4: &no, EnableIPv6: &yes}}, true, true, nil},
		{"IPv6-only by the options", nettypes.CreateRequest{Name: "a", CreateOptions: nettypes.CreateOptions{
			Options: map[string]string{network.OptEnableIPv4: "false", network.OptEnableIPv6: "true"}}}, true, true,
			map[string]string{network.OptEnableIPv4: "false", network.OptEnableIPv6: "true"}},
		{"the field over the option", nettypes.CreateRequest{Name: "a", CreateOptions: nettypes.CreateOptions{EnableIPv4: &yes,
			Options: map[string]string{network.OptEnableIPv4: "false"}}}, false, false, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := networkCreateRequest(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if req.EnableIPv6 != tc.wantV6 || req.NoIPv4 != tc.wantNoV4 {
				t.Errorf("EnableIPv6 = %v, NoIPv4 = %v; want %v, %v", req.EnableIPv6, req.NoIPv4, tc.wantV6, tc.wantNoV4)
			}
			if diff := cmp.Diff(tc.wantOpts, req.Options); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIPv6OnlyViews: an IPv6-only network shows EnableIPv4 false and its
// IPv6 IPAM entry alone, its endpoints no IPv4 address; host and none
// keep EnableIPv4 true, as Docker's do. An IPv4 --subnet given with IPv4
// off is checked and then left out, as libnetwork allocates no IPv4 pool.
func TestIPv6OnlyViews(t *testing.T) {
	n := &network.Network{
		ID: hexID("d6"), Name: "six", Driver: "bridge", Created: fakeTime,
		IPv6: &network.IPConfig{Subnet: netip.MustParsePrefix("fd00:6::/64"), Gateway: netip.MustParseAddr("fd00:6::1")},
	}
	ep := &network.Endpoint{
		ID: hexID("e6"), Name: "web", ContainerID: hexID("c6"), State: network.EndpointReady,
		Address6: netip.MustParsePrefix("fd00:6::2/64"), Gateway6: netip.MustParseAddr("fd00:6::1"),
	}
	got := networkResource(n, []*network.Endpoint{ep})
	if got.EnableIPv4 || !got.EnableIPv6 {
		t.Errorf("EnableIPv4 %v EnableIPv6 %v, want false and true", got.EnableIPv4, got.EnableIPv6)
	}
	if diff := cmp.Diff([]nettypes.IPAMConfig{{Subnet: "fd00:6::/64", Gateway: "fd00:6::1"}}, got.IPAM.Config); diff != "" {
		t.Errorf("IPAM.Config (-want +got):\n%s", diff)
	}
	if r := got.Containers[ep.ContainerID]; r.IPv4Address != "" || r.IPv6Address != "fd00:6::2/64" {
		t.Errorf("Containers entry %+v", r)
	}
	es := &nettypes.EndpointSettings{}
	fillEndpoint(es, &container.Container{ID: ep.ContainerID, Name: "web"}, n, ep)
	if es.IPAddress != "" || es.IPPrefixLen != 0 || es.Gateway != "" || es.GlobalIPv6Address != "fd00:6::2" || es.IPv6Gateway != "fd00:6::1" {
		t.Errorf("endpoint %q/%d gw %q, IPv6 %q gw %q", es.IPAddress, es.IPPrefixLen, es.Gateway, es.GlobalIPv6Address, es.IPv6Gateway)
	}
	if host := networkResource(&network.Network{ID: hexID("a1"), Name: "host", Driver: network.DriverHost}, nil); !host.EnableIPv4 {
		t.Error("host network: EnableIPv4 false")
	}

	no, yes := false, true
	req, err := networkCreateRequest(nettypes.CreateRequest{Name: "six", CreateOptions: nettypes.CreateOptions{
		EnableIPv4: &no, EnableIPv6: &yes, IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{
			{Subnet: "10.9.0.0/24"}, {Subnet: "fd00:9::/64"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.IPAM) != 2 || req.IPAM[1].Subnet != netip.MustParsePrefix("fd00:9::/64") {
		t.Errorf("IPAM requests %+v, want both (the network keeps the IPv4 one unused)", req.IPAM)
	}
	// Shown in inspect, as moby shows the triples it keeps.
	six := networkResource(&network.Network{ID: hexID("b6"), Name: "six", Driver: network.DriverBridge,
		IPv6:       &network.IPConfig{Subnet: netip.MustParsePrefix("fd00:9::/64"), Gateway: netip.MustParseAddr("fd00:9::1"), UserSubnet: true},
		UnusedIPAM: []network.IPAMRequest{{Subnet: netip.MustParsePrefix("10.9.0.0/24")}}}, nil)
	want6 := []nettypes.IPAMConfig{{Subnet: "10.9.0.0/24"}, {Subnet: "fd00:9::/64", Gateway: "fd00:9::1"}}
	if diff := cmp.Diff(want6, six.IPAM.Config); diff != "" || six.EnableIPv4 {
		t.Errorf("IPv6-only network's IPAM.Config (-want +got):\n%s (EnableIPv4 %v)", diff, six.EnableIPv4)
	}
	if _, err := networkCreateRequest(nettypes.CreateRequest{Name: "six", CreateOptions: nettypes.CreateOptions{
		EnableIPv4: &no, EnableIPv6: &yes, IPAM: &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: "10.9.0.1/24"}}},
	}}); err == nil {
		t.Error("an unmasked IPv4 subnet with IPv4 off: accepted (moby's ValidateIPAM refuses it)")
	}
}

// TestNetworkCreateDefaults: the daemon's default-network-opts go under a
// create's own options, before enable_ipv6 is read, as moby's
// createNetwork adds them; the create's own options win.
func TestNetworkCreateDefaults(t *testing.T) {
	f := newFakeBackend()
	f.networkDefaults = map[string]map[string]string{"bridge": {
		"com.docker.network.driver.mtu": "1400", "com.docker.network.enable_ipv6": "true", "com.docker.network.bridge.enable_icc": "false"}}
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/networks/create",
		`{"Name":"a","Options":{"com.docker.network.bridge.enable_icc":"true"}}`), http.StatusCreated)
	got := f.recorded().NetworkCreate
	want := map[string]string{"com.docker.network.driver.mtu": "1400", "com.docker.network.enable_ipv6": "true", "com.docker.network.bridge.enable_icc": "true"}
	if !got.EnableIPv6 || !maps.Equal(got.Options, want) {
		t.Errorf("with defaults: EnableIPv6 %t, options %v; want IPv6 on and %v", got.EnableIPv6, got.Options, want)
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/networks/create", `{"Name":"b","EnableIPv6":false}`), http.StatusCreated)
	if got := f.recorded().NetworkCreate; got.EnableIPv6 || got.Options["com.docker.network.driver.mtu"] != "1400" {
		t.Errorf("EnableIPv6 false with an IPv6 default: %+v", got)
	}
	f.networkDefaults = nil
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/networks/create", `{"Name":"c"}`), http.StatusCreated)
	if got := f.recorded().NetworkCreate; got.EnableIPv6 || len(got.Options) != 0 {
		t.Errorf("without defaults: %+v", got)
	}
}

// TestNetworkNameRoutes: a network's name may hold a "/" (Docker takes
// any name), which the docker CLI sends unescaped: every network route
// takes the whole name, as moby's {id:.*} routes do, and an action's
// name is what comes before the last segment ("a/connect" connects to
// the network "a/connect" when POSTed to ".../connect").
func TestNetworkNameRoutes(t *testing.T) {
	names := []string{"ci_build-1/abc", "a/connect", "x/y/z", "my net é"}
	tests := []struct {
		method, path, body string
		status             int
		want               []string
	}{
		{http.MethodPost, "/v1.51/networks/ci_build-1/abc/connect", `{"Container":"test1"}`, http.StatusOK, []string{"ConnectNetwork ci_build-1/abc test1"}},
		{http.MethodPost, "/v1.51/networks/ci_build-1%2Fabc/connect", `{"Container":"test1"}`, http.StatusOK, []string{"ConnectNetwork ci_build-1/abc test1"}},
		{http.MethodPost, "/v1.51/networks/a/connect/connect", `{"Container":"test1"}`, http.StatusOK, []string{"ConnectNetwork a/connect test1"}},
		{http.MethodPost, "/v1.51/networks/x/y/z/disconnect", `{"Container":"test1"}`, http.StatusOK, []string{"DisconnectNetwork x/y/z test1 false"}},
		{http.MethodPost, "/v1.51/networks/my%20net%20%C3%A9/disconnect", `{"Container":"test1"}`, http.StatusOK, []string{"DisconnectNetwork my net é test1 false"}},
		{http.MethodGet, "/v1.51/networks/a/connect", "", http.StatusOK, nil},
		{http.MethodGet, "/networks/x/y/z", "", http.StatusOK, nil},
		{http.MethodDelete, "/v1.51/networks/ci_build-1/abc", "", http.StatusNoContent, []string{"RemoveNetwork ci_build-1/abc"}},
		{http.MethodDelete, "/v1.51/networks/a/connect", "", http.StatusNoContent, []string{"RemoveNetwork a/connect"}},
		// No route: a POST to a name alone, an unknown action.
		{http.MethodPost, "/v1.51/networks/x/y/z", "", http.StatusNotFound, nil},
		{http.MethodPost, "/v1.51/networks/x/y/nosuchaction", "", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		f := newFakeBackend()
		for i, name := range names {
			f.networks = append(f.networks, &network.Network{ID: hexID(fmt.Sprintf("bb%02d", i)), Name: name, Driver: "bridge", Created: fakeTime})
		}
		rec := call(t, newServer(f), tt.method, tt.path, tt.body)
		if rec.Code != tt.status {
			t.Errorf("%s %s: status %d, want %d: %s", tt.method, tt.path, rec.Code, tt.status, rec.Body)
			continue
		}
		if diff := cmp.Diff(tt.want, f.Mutations()); diff != "" {
			t.Errorf("%s %s: mutations (-want +got):\n%s", tt.method, tt.path, diff)
		}
		if tt.method == http.MethodGet {
			name := strings.TrimPrefix(strings.TrimPrefix(tt.path, "/v1.51"), "/networks/")
			if got := decode[struct{ Name string }](t, rec).Name; got != name {
				t.Errorf("GET %s: inspected %q, want %q", tt.path, got, name)
			}
		}
	}
}
