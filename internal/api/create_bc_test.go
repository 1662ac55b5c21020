package api

import (
	"testing"

	ctypes "github.com/docker/docker/api/types/container"
	nettypes "github.com/docker/docker/api/types/network"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
)

// TestSysctlBC: moby's handleSysctlBC, case by case (its own test's
// cases): eth0's interface sysctls move to the mode network's endpoint
// before API 1.48, with a warning; other interfaces, and any from 1.48,
// are refused at create (they failed the start).
func TestSysctlBC(t *testing.T) {
	for _, tc := range []struct {
		name, version, mode string
		sysctls             map[string]string
		eps                 map[string]*nettypes.EndpointSettings
		wantSysctls         map[string]string
		wantOpts            map[string]string // the mode network's DriverOpts
		warning, err        string
	}{
		{name: "migrate to new endpoint", version: "1.46", mode: "mynet",
			sysctls:     map[string]string{"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.eth0.accept_ra": "2", "net.ipv6.conf.eth0.forwarding": "1"},
			wantSysctls: map[string]string{"net.ipv6.conf.all.disable_ipv6": "0"},
			wantOpts:    map[string]string{"com.docker.network.endpoint.sysctls": "net.ipv6.conf.IFNAME.accept_ra=2,net.ipv6.conf.IFNAME.forwarding=1"},
			warning:     `Migrated sysctl "net.ipv6.conf.eth0.accept_ra,net.ipv6.conf.eth0.forwarding" to DriverOpts{"com.docker.network.endpoint.sysctls":"net.ipv6.conf.IFNAME.accept_ra=2,net.ipv6.conf.IFNAME.forwarding=1"}.`},
		{name: "the endpoint's own come last", version: "1.47", mode: "mynet",
			sysctls:  map[string]string{"net.ipv4.conf.eth0.log_martians": "1"},
			eps:      map[string]*nettypes.EndpointSettings{"mynet": {DriverOpts: map[string]string{"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.log_martians=0"}}},
			wantOpts: map[string]string{"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.log_martians=1,net.ipv4.conf.IFNAME.log_martians=0"},
			warning:  `Migrated sysctl "net.ipv4.conf.eth0.log_martians" to DriverOpts{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.IFNAME.log_martians=1"}.`},
		{name: "migrate nothing", version: "1.46", mode: "mynet",
			sysctls: map[string]string{"net.ipv6.conf.all.disable_ipv6": "0"}, wantSysctls: map[string]string{"net.ipv6.conf.all.disable_ipv6": "0"}},
		{name: "migration disabled for newer api", version: "1.48", mode: "mynet",
			sysctls: map[string]string{"net.ipv6.conf.eth0.accept_ra": "2"},
			err:     `interface specific sysctl setting "net.ipv6.conf.eth0.accept_ra" must be supplied using driver option 'com.docker.network.endpoint.sysctls'`},
		{name: "only migrate eth0", version: "1.46", mode: "mynet",
			sysctls: map[string]string{"net.ipv6.conf.eth1.accept_ra": "2"},
			err:     "unable to determine network endpoint for sysctl net.ipv6.conf.eth1.accept_ra, use driver option 'com.docker.network.endpoint.sysctls' to set per-interface sysctls"},
		{name: "net name mismatch", version: "1.46", mode: "mynet",
			sysctls: map[string]string{"net.ipv6.conf.eth0.accept_ra": "2"},
			eps:     map[string]*nettypes.EndpointSettings{"shortid": {EndpointID: "epone"}},
			err:     "unable to find a network for sysctl net.ipv6.conf.eth0.accept_ra: HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"},
		{name: "host network untouched", version: "1.48", mode: "host",
			sysctls: map[string]string{"net.ipv4.conf.eth0.log_martians": "1"}, wantSysctls: map[string]string{"net.ipv4.conf.eth0.log_martians": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &ctypes.HostConfig{NetworkMode: ctypes.NetworkMode(tc.mode), Sysctls: tc.sysctls}
			nc := &nettypes.NetworkingConfig{EndpointsConfig: tc.eps}
			warning, err := sysctlBC(hc, nc, tc.version)
			if tc.err != "" {
				if !errdefs.Is(err, errdefs.KindInvalid) || err.Error() != tc.err {
					t.Fatalf("err = %v, want Invalid %q", err, tc.err)
				}
				return
			}
			if err != nil || warning != tc.warning {
				t.Fatalf("warning %q, err %v; want %q", warning, err, tc.warning)
			}
			if tc.wantSysctls == nil {
				tc.wantSysctls = map[string]string{}
			}
			if diff := cmp.Diff(tc.wantSysctls, hc.Sysctls); diff != "" {
				t.Errorf("sysctls (-want +got):\n%s", diff)
			}
			var opts map[string]string
			if es := nc.EndpointsConfig[tc.mode]; es != nil {
				opts = es.DriverOpts
			}
			if diff := cmp.Diff(tc.wantOpts, opts); diff != "" {
				t.Errorf("DriverOpts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMACAddressBC: the container-wide MacAddress of old clients: refused
// before 1.44 with a mode that has no endpoint of its own, deprecated
// (a warning) from 1.44 on.
func TestMACAddressBC(t *testing.T) {
	const mac = "02:42:ac:11:00:99"
	for _, tc := range []struct{ version, mode, warning, err string }{
		{"1.43", "host", "", "conflicting options: mac-address and the network mode"},
		{"1.43", "none", "", "conflicting options: mac-address and the network mode"},
		{"1.43", "default", "", ""},
		{"1.43", "web", "", ""},
		{"1.44", "bridge", "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", ""},
		{"1.51", "host", "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", ""},
	} {
		c := &ctypes.Config{MacAddress: mac} //nolint:staticcheck // the deprecated field is the point
		warning, err := macAddressBC(c, &ctypes.HostConfig{NetworkMode: ctypes.NetworkMode(tc.mode)}, tc.version)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if warning != tc.warning || got != tc.err {
			t.Errorf("%s %s: %q, %q; want %q, %q", tc.version, tc.mode, warning, got, tc.warning, tc.err)
		}
	}
	if w, err := macAddressBC(&ctypes.Config{}, &ctypes.HostConfig{NetworkMode: "host"}, "1.43"); w != "" || err != nil {
		t.Errorf("no MAC: %q, %v", w, err)
	}
}

// TestCreateBCWithoutNetworkMode: a raw API create without NetworkMode
// (the default network, as moby's decoder fills it in) has its eth0
// sysctl moved to the default network's endpoint, and the create goes on.
func TestCreateBCWithoutNetworkMode(t *testing.T) {
	req := ctypes.CreateRequest{
		Config:     &ctypes.Config{Image: "busybox"},
		HostConfig: &ctypes.HostConfig{Sysctls: map[string]string{"net.ipv4.conf.eth0.log_martians": "1"}},
	}
	warnings, err := createBC(&req, "1.47")
	if err != nil || len(warnings) != 1 {
		t.Fatalf("createBC: %q, %v", warnings, err)
	}
	cfg, err := createConfig(req, "1.47")
	if err != nil {
		t.Fatalf("createConfig after the migration: %v", err)
	}
	if got := cfg.Networks["bridge"].DriverOpts["com.docker.network.endpoint.sysctls"]; got != "net.ipv4.conf.IFNAME.log_martians=1" {
		t.Errorf("the bridge endpoint's sysctls: %q (networks %v)", got, cfg.Networks)
	}
}
