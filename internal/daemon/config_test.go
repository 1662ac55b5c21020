package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/network"
	"github.com/spf13/pflag"
)

// parseDaemonArgs parses args as `berth daemon` does, then reads a
// configuration file of body as --config-file.
func parseDaemonArgs(t *testing.T, body string, args ...string) (Config, error) {
	t.Helper()
	var cfg Config
	f := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	addFlags(f, &cfg)
	path := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Parse(append([]string{"--config-file", path}, args...)); err != nil {
		return cfg, err
	}
	warnings, err := loadConfigFile(f, cfg.ConfigFile)
	cfg.FileWarnings = warnings
	return cfg, err
}

func TestConfigFileSetsOptions(t *testing.T) {
	cfg, err := parseDaemonArgs(t, `{
		"bip": "10.20.0.1/24", "fixed-cidr": "10.20.0.128/25", "mtu": 1450, "ip": "127.0.0.1",
		"icc": false, "ip-masq": false, "ipv6": true, "fixed-cidr-v6": "fd00:20::/64",
		"default-address-pools": [{"base": "10.100.0.0/16", "size": 24}, {"base": "fd00:100::/48", "size": 64}],
		"default-network-opts": {"bridge": {"com.docker.network.driver.mtu": "1400"}},
		"dns": ["10.0.0.53", "10.0.1.53"], "dns-search": ["corp.example"], "dns-opts": ["ndots:2"],
		"hosts": ["unix:///run/b.sock"], "data-root": "/srv/berth", "group": 123, "debug": true,
		"userland-proxy": false, "allow-direct-routing": true,
		"default-gateway": "10.20.0.254", "default-gateway-v6": "fd00:20::fe",
		"iptables": true, "ip6tables": true, "ip-forward": true, "ip-forward-no-drop": true,
		"metrics-addr": "127.0.0.1:9323"
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		ConfigFile: cfg.ConfigFile, DataRoot: "/srv/berth", ExecRoot: "/run/berth", Host: "unix:///run/b.sock", BridgeName: "berth0",
		BIP: "10.20.0.1/24", FixedCIDR: "10.20.0.128/25", MTU: 1450, IP: "127.0.0.1", IPv6: true, FixedCIDRv6: "fd00:20::/64",
		Pools:              []ipam.Pool{{Base: netip.MustParsePrefix("10.100.0.0/16"), Size: 24}, {Base: netip.MustParsePrefix("fd00:100::/48"), Size: 64}},
		DefaultNetworkOpts: map[string]map[string]string{"bridge": {"com.docker.network.driver.mtu": "1400"}},
		DNS:                []string{"10.0.0.53", "10.0.1.53"}, DNSSearch: []string{"corp.example"}, DNSOptions: []string{"ndots:2"},
		Group: 123, LogDriver: "json-file", LiveRestore: true, Debug: true, LogLevel: "info", LogFormat: "text", UserlandProxy: false, IPForwardNoDrop: true, DefaultRuntime: "runc",
		DefaultStopTimeout: 10, AllowDirectRouting: true, DefaultGateway: "10.20.0.254", DefaultGateway6: "fd00:20::fe",
		MetricsAddr: "127.0.0.1:9323",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFileRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		args       []string
		want       string
	}{
		{"dockerd's keys berth lacks", `{"bip": "10.1.0.1/24", "storage-opts": ["size=1G"], "min-api-version": "1.24"}`, nil,
			"dockerd's options berth does not have: min-api-version, storage-opts"},
		{"unknown keys", `{"bip": "10.1.0.1/24", "storage_driver": "overlay2", "userns-remap": "default", "bridges": "br0"}`, nil,
			"dockerd's options berth does not have: userns-remap; the following directives don't match any configuration option of berth's: bridges, storage_driver"},
		{"a flag's name where the file has the plural", `{"dns-opt": ["ndots:1"]}`, nil, "dns-opt"},
		{"not in the file", `{"config-file": "/x"}`, nil, "don't match any configuration option of berth's: config-file"},
		{"flag and file", `{"mtu": 1400, "dns": ["1.1.1.1"]}`, []string{"--mtu", "1300", "--dns", "8.8.8.8"},
			"specified both as a flag and in the configuration file: dns: (from flag: [8.8.8.8], from file: [\"1.1.1.1\"]), mtu: (from flag: 1300, from file: 1400)"},
		{"pool without size", `{"default-address-pools": [{"base": "10.0.0.0/8"}]}`, nil, "no size"},
		{"pool with an unknown field", `{"default-address-pools": [{"base": "10.0.0.0/8", "size": 24, "x": 1}]}`, nil, "unknown field"},
		{"pool base with host bits", `{"default-address-pools": [{"base": "10.0.0.1/8", "size": 24}]}`, nil, "base should be 10.0.0.0/8"},
		{"two hosts", `{"hosts": ["unix:///a", "unix:///b"]}`, nil, "one socket"},
		{"a driver berth lacks", `{"default-network-opts": {"overlay": {"x": "y"}}}`, nil, "only network driver"},
		{"a bad bool", `{"icc": "maybe"}`, nil, `"icc"`},
		{"a string for a number", `{"mtu": "1400"}`, nil, `"mtu": want a whole number`},
		{"a string for a boolean", `{"icc": "false"}`, nil, `"icc": want a boolean`},
		{"a string for a list", `{"dns": "1.1.1.1"}`, nil, `"dns": want a list of strings`},
		{"a number for a string", `{"bip": 10}`, nil, `"bip": want a string`},
		{"not JSON", `{"mtu": }`, nil, "invalid character"},
		{"a proxy binary berth has none of", `{"userland-proxy-path": "/usr/bin/docker-proxy"}`, nil, "dockerd's options berth does not have: userland-proxy-path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDaemonArgs(t, tc.body, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestConfigFileNoEffectKeys: a Docker host's daemon.json, with keys for
// what berth does not do (pull, push, build, experimental features),
// starts berth; each such key is a warning, "experimental": false none.
// The daemon's labels and default stop timeout are taken.
func TestConfigFileNoEffectKeys(t *testing.T) {
	cfg, err := parseDaemonArgs(t, `{
		"registry-mirrors": ["https://mirror.example"], "insecure-registries": ["reg.example:5000"],
		"features": {"buildkit": true}, "experimental": false, "max-concurrent-downloads": 3,
		"builder": {"gc": {"enabled": true}}, "proxies": {"http-proxy": "http://proxy.example:3128"},
		"labels": ["env=prod", "team=net"], "default-stop-timeout": 30,
		"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": true}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`WARNING: daemon.json's "builder" has no effect: berth builds no images`,
		`WARNING: daemon.json's "features" has no effect: berth builds no images and has no optional features`,
		`WARNING: daemon.json's "insecure-registries" has no effect: berth pulls and pushes no images`,
		`WARNING: daemon.json's "max-concurrent-downloads" has no effect: berth pulls no images`,
		`WARNING: daemon.json's "proxies" has no effect: berth pulls no images`,
		`WARNING: daemon.json's "registry-mirrors" has no effect: berth pulls no images`,
	}
	if !reflect.DeepEqual(cfg.FileWarnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", cfg.FileWarnings, want)
	}
	if !reflect.DeepEqual(cfg.Labels, []string{"env=prod", "team=net"}) || cfg.DefaultStopTimeout != 30 {
		t.Errorf("labels %q, default-stop-timeout %d", cfg.Labels, cfg.DefaultStopTimeout)
	}
	if cfg, err := parseDaemonArgs(t, `{"experimental": true}`); err != nil || len(cfg.FileWarnings) != 1 {
		t.Errorf(`"experimental": true: %v, warnings %q; want one`, err, cfg.FileWarnings)
	}
	for _, body := range []string{`{"labels": ["nokey"]}`, `{"default-stop-timeout": -1}`} {
		cfg, err := parseDaemonArgs(t, body)
		if err == nil {
			_, err = cfg.containerDefaults()
		}
		if err == nil {
			t.Errorf("%s: no error", body)
		}
	}
}

// The userland proxy is on unless the flag or the file turns it off, as
// dockerd's --userland-proxy.
func TestUserlandProxyOption(t *testing.T) {
	for _, tc := range []struct {
		body string
		args []string
		want bool
	}{
		{"", nil, true},
		{"", []string{"--userland-proxy=false"}, false},
		{`{"userland-proxy": true}`, nil, true},
		{`{"userland-proxy": false}`, nil, false},
	} {
		cfg, err := parseDaemonArgs(t, tc.body, tc.args...)
		if err != nil || cfg.UserlandProxy != tc.want {
			t.Errorf("file %q, flags %q: userland proxy %v (%v), want %v", tc.body, tc.args, cfg.UserlandProxy, err, tc.want)
		}
	}
}

func TestConfigFileMissing(t *testing.T) {
	var cfg Config
	f := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	addFlags(f, &cfg)
	missing := filepath.Join(t.TempDir(), "none.json")
	if _, err := loadConfigFile(f, missing); err != nil {
		t.Errorf("the default file missing: %v", err)
	}
	if err := f.Parse([]string{"--config-file", missing}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfigFile(f, cfg.ConfigFile); err == nil {
		t.Error("a --config-file that is missing was no error")
	}
	if _, err := parseDaemonArgs(t, " \n"); err != nil {
		t.Errorf("an empty file: %v", err)
	}
}

func TestDefaultAddressPoolFlag(t *testing.T) {
	cfg, err := parseDaemonArgs(t, "", "--default-address-pool", "base=10.10.0.0/16,size=24", "--default-address-pool", "Base=fd00:1::/48,Size=64")
	if err != nil {
		t.Fatal(err)
	}
	want := []ipam.Pool{{Base: netip.MustParsePrefix("10.10.0.0/16"), Size: 24}, {Base: netip.MustParsePrefix("fd00:1::/48"), Size: 64}}
	if !reflect.DeepEqual(cfg.Pools, want) {
		t.Errorf("pools %v, want %v", cfg.Pools, want)
	}
	for _, bad := range []string{"base=10.0.0.0/8", "10.0.0.0/8", "base=10.0.0.0/8,size=x", "base=10.0.0.0/8,size=4", "base=10.0.0.0/8,size=24,extra=1"} {
		if _, err := parseDaemonArgs(t, "", "--default-address-pool", bad); err == nil {
			t.Errorf("--default-address-pool %s: no error", bad)
		}
	}
}

func TestNetworkSettings(t *testing.T) {
	base := func() Config {
		return Config{IP: "0.0.0.0", MTU: 1500, ICC: true, IPMasq: true, BridgeName: "berth0"}
	}
	cfg := base()
	s, err := cfg.networkSettings("engine")
	if err != nil {
		t.Fatal(err)
	}
	if s.pools != nil || !reflect.DeepEqual(s.pools6, []ipam.Pool{ipam.ULAPool("engine")}) {
		t.Errorf("no pools given: %v %v, want Docker's and the ULA pool", s.pools, s.pools6)
	}
	wantOpts := map[string]string{network.OptEnableICC: "true", network.OptEnableMasq: "true", network.OptHostBindingIPv4: "0.0.0.0", network.OptMTU: "1500"}
	if !reflect.DeepEqual(s.bridgeOptions, wantOpts) {
		t.Errorf("bridge options %v", s.bridgeOptions)
	}

	cfg = base()
	cfg.BIP, cfg.FixedCIDR, cfg.DNS = "10.20.0.1/16", "10.20.5.7/24", []string{"10.0.0.53"}
	cfg.Pools = []ipam.Pool{{Base: netip.MustParsePrefix("fd00:9::/48"), Size: 64}}
	if s, err = cfg.networkSettings("engine"); err != nil {
		t.Fatal(err)
	}
	if s.bip != netip.MustParsePrefix("10.20.0.1/16") || s.fixedCIDR != netip.MustParsePrefix("10.20.5.0/24") || !reflect.DeepEqual(s.dns, []string{"10.0.0.53"}) {
		t.Errorf("settings %+v", s)
	}
	if s.pools == nil || len(s.pools) != 0 || len(s.pools6) != 1 || s.pools6[0].Base != netip.MustParsePrefix("fd00:9::/48") {
		t.Errorf("IPv6 pools alone: %v %v, want no IPv4 pool and no ULA one", s.pools, s.pools6)
	}

	for name, tweak := range map[string]func(*Config){
		"bip without a length":     func(c *Config) { c.BIP = "10.20.0.1" },
		"bip IPv6":                 func(c *Config) { c.BIP = "fd00::1/64" },
		"bip network address":      func(c *Config) { c.BIP = "10.20.0.0/24" },
		"bip broadcast":            func(c *Config) { c.BIP = "10.20.0.255/24" },
		"fixed-cidr outside bip":   func(c *Config) { c.BIP, c.FixedCIDR = "10.20.0.1/24", "10.21.0.0/24" },
		"fixed-cidr wider than it": func(c *Config) { c.BIP, c.FixedCIDR = "10.20.0.1/24", "10.20.0.0/16" },
		"fixed-cidr IPv6":          func(c *Config) { c.FixedCIDR = "fd00::/64" },
		"fixed-cidr-v6 IPv4":       func(c *Config) { c.FixedCIDRv6 = "10.0.0.0/8" },
		"ip":                       func(c *Config) { c.IP = "localhost" },
		"dns":                      func(c *Config) { c.DNS = []string{"dns.example"} },
		"dns-search":               func(c *Config) { c.DNSSearch = []string{"a b"} },
		"dns-opt":                  func(c *Config) { c.DNSOptions = []string{""} },
		"host-gateway-ip name":     func(c *Config) { c.HostGatewayIPs = []string{"host.example"} },
		"two IPv4 host gateways":   func(c *Config) { c.HostGatewayIPs = []string{"10.0.0.1", "10.0.0.2"} },
		"two IPv6 host gateways":   func(c *Config) { c.HostGatewayIPs = []string{"fd00::1", "fd00::2"} },
		"bip6 IPv4":                func(c *Config) { c.BIP6 = "10.0.0.1/24" },
		"bip6 without a length":    func(c *Config) { c.BIP6 = "fd00::1" },
		"default-gateway IPv6":     func(c *Config) { c.DefaultGateway = "fd00::1" },
		"default-gateway a name":   func(c *Config) { c.DefaultGateway = "router" },
		"default-gateway-v6 IPv4":  func(c *Config) { c.DefaultGateway6 = "10.0.0.1" },
		"fixed-cidr-v6 outside bip6": func(c *Config) {
			c.BIP6, c.FixedCIDRv6 = "fd00:1::1/64", "fd00:2::/80"
		},
	} {
		cfg := base()
		tweak(&cfg)
		if _, err := cfg.networkSettings("engine"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestHostGatewayIPs: dockerd's --host-gateway-ip, its file's list
// ("host-gateway-ips") and older single key ("host-gateway-ip"), but not
// both keys at once; one address of each family at most.
func TestHostGatewayIPs(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		args       []string
		want       []string
		err        string
	}{
		{"flags", `{}`, []string{"--host-gateway-ip", "192.0.2.1", "--host-gateway-ip", "2001:db8::1"}, []string{"192.0.2.1", "2001:db8::1"}, ""},
		{"file list", `{"host-gateway-ips": ["192.0.2.1", "2001:db8::1"]}`, nil, []string{"192.0.2.1", "2001:db8::1"}, ""},
		{"file single", `{"host-gateway-ip": "192.0.2.1"}`, nil, []string{"192.0.2.1"}, ""},
		{"both keys", `{"host-gateway-ip": "192.0.2.1", "host-gateway-ips": ["192.0.2.2"]}`, nil, nil,
			"host-gateway-ip and host-gateway-ips must not both be specified in the config file"},
		{"flag and file", `{"host-gateway-ips": ["192.0.2.2"]}`, []string{"--host-gateway-ip", "192.0.2.1"}, nil,
			"specified both as a flag and in the configuration file: host-gateway-ips"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseDaemonArgs(t, tc.body, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want it to say %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.HostGatewayIPs, tc.want) {
				t.Errorf("HostGatewayIPs %q, want %q", cfg.HostGatewayIPs, tc.want)
			}
			cfg.IP, cfg.MTU, cfg.BridgeName = "0.0.0.0", 1500, "berth0"
			s, err := cfg.networkSettings("engine")
			if err != nil {
				t.Fatal(err)
			}
			if len(s.hostGateway) != len(tc.want) {
				t.Errorf("settings' host gateways %v", s.hostGateway)
			}
		})
	}
}

func TestLogDefaults(t *testing.T) {
	cfg, err := parseDaemonArgs(t, `{"log-driver": "local", "log-opts": {"max-size": "5m", "max-file": "2"}, "log-level": "warn", "live-restore": true}`)
	if err != nil {
		t.Fatal(err)
	}
	def, err := cfg.logDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if want := (container.LogConfig{Type: "local", Config: map[string]string{"max-size": "5m", "max-file": "2"}}); !reflect.DeepEqual(def, want) {
		t.Errorf("defaults %+v, want %+v", def, want)
	}
	if lvl, err := cfg.logLevel(); err != nil || lvl != slog.LevelWarn {
		t.Errorf("log-level warn: %v %v", lvl, err)
	}
	for _, tc := range []struct {
		name     string
		lc, want container.LogConfig
	}{
		{"no driver: the default's, with its options", container.LogConfig{}, def},
		{"the default driver: its options under the container's",
			container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m"}},
			container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "2"}}},
		{"json-file given: json-file, none of the defaults",
			container.LogConfig{Type: "json-file"}, container.LogConfig{Type: "json-file"}},
		{"another driver: none of the defaults",
			container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
			container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}}},
	} {
		if got := withLogDefaults(tc.lc, def); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}

	// Docker's documentation's daemon.json for json-file, word for word.
	cfg, err = parseDaemonArgs(t, `{"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3", "labels": "production_status", "env": "os,customer"}}`)
	if err == nil {
		_, err = cfg.logDefaults()
	}
	if err != nil {
		t.Errorf("Docker's example of json-file's options: %v", err)
	}
	for name, body := range map[string]string{
		"a driver berth lacks": `{"log-driver": "syslog"}`,
		"a bad label pattern":  `{"log-opts": {"labels-regex": "("}}`,
		"a bad option":         `{"log-opts": {"max-size": "lots"}}`,
		"live-restore false":   `{"live-restore": false}`,
	} {
		cfg, err := parseDaemonArgs(t, body)
		if err == nil {
			_, err = cfg.logDefaults()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if cfg, _ := parseDaemonArgs(t, `{"log-level": "loud"}`); func() error { _, err := cfg.logLevel(); return err }() == nil {
		t.Error("log-level loud: no error")
	}
	if cfg, _ := parseDaemonArgs(t, `{"debug": true, "log-level": "error"}`); func() slog.Level { l, _ := cfg.logLevel(); return l }() != slog.LevelDebug {
		t.Error("debug did not win over log-level")
	}
}

func TestNetworkSettingsCheckBridgeOptions(t *testing.T) {
	for name, tweak := range map[string]func(*Config){
		"mtu -1":      func(c *Config) { c.MTU = -1 },
		"mtu 70000":   func(c *Config) { c.MTU = 70000 },
		"bridge name": func(c *Config) { c.BridgeName = "bad/name" },
		"default-network-opt unsupported": func(c *Config) {
			c.DefaultNetworkOpts = map[string]map[string]string{"bridge": {"com.docker.network.bridge.default_bridge": "true"}}
		},
		"default-network-opt mtu":   func(c *Config) { c.DefaultNetworkOpts = map[string]map[string]string{"bridge": {network.OptMTU: "x"}} },
		"firewall-backend iptables": func(c *Config) { c.FirewallBackend = "iptables" },
		"bip in 0.0.0.0/24":         func(c *Config) { c.BIP = "0.0.0.1/24" },
		"fixed-cidr 0.0.0.0/24":     func(c *Config) { c.FixedCIDR = "0.0.0.0/24" },
		"fixed-cidr-v6 ::/64":       func(c *Config) { c.FixedCIDRv6 = "::/64" },
		"firewall-backend other":    func(c *Config) { c.FirewallBackend = "ebtables" },
	} {
		cfg := Config{IP: "0.0.0.0", MTU: 1500, ICC: true, IPMasq: true, BridgeName: "berth0"}
		tweak(&cfg)
		if _, err := cfg.networkSettings("engine"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A daemon.json of Docker 29's that chose nftables starts berth.
	cfg, err := parseDaemonArgs(t, `{"firewall-backend": "nftables"}`)
	if err == nil {
		cfg.IP, cfg.MTU, cfg.BridgeName = "0.0.0.0", 1500, "berth0"
		_, err = cfg.networkSettings("engine")
	}
	if err != nil || cfg.FirewallBackend != "nftables" {
		t.Errorf(`firewall-backend "nftables": %v (%q)`, err, cfg.FirewallBackend)
	}
}

// log-level is read as dockerd reads it, and a SIGHUP reads debug and
// log-level again from the file, a flag given on the command line
// keeping its value.
func TestLogLevelAndItsReload(t *testing.T) {
	for level, want := range map[string]slog.Level{"trace": slog.LevelDebug, "DEBUG": slog.LevelDebug, "Warn": slog.LevelWarn, "panic": slog.LevelError} {
		if got, err := (&Config{LogLevel: level}).logLevel(); err != nil || got != want {
			t.Errorf("log-level %q: %v, %v; want %v", level, got, err, want)
		}
	}
	conf := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(conf, []byte(`{"log-level": "error"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	f := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	addFlags(f, &cfg)
	lv := new(slog.LevelVar)
	if what, err := reloadLogLevel(f, conf, lv); err != nil || lv.Level() != slog.LevelError || !strings.Contains(what, "ERROR") {
		t.Errorf("reload: %q, %v, level %v; want error", what, err, lv.Level())
	}
	if err := os.WriteFile(conf, []byte(`{"debug": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reloadLogLevel(f, conf, lv); err != nil || lv.Level() != slog.LevelDebug {
		t.Errorf("reload with debug: %v, level %v", err, lv.Level())
	}
	if err := f.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(`{"log-level": "error"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reloadLogLevel(f, conf, lv); err != nil || lv.Level() != slog.LevelWarn {
		t.Errorf("reload with --log-level warn given: %v, level %v; want the flag's", err, lv.Level())
	}
	if err := os.WriteFile(conf, []byte(`{"log-level": "loud"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reloadLogLevel(f, conf, lv); err == nil || lv.Level() != slog.LevelWarn {
		t.Errorf("a broken file: %v, level %v; want an error and the level kept", err, lv.Level())
	}
}

// TestBridgeOption: dockerd's --bridge (daemon.json "bridge") names the
// administrator's device or "none", refused beside --bip, --bip6 and
// another --bridge-name in dockerd's words; its addresses make the
// default bridge's (fromUserBridge).
func TestBridgeOption(t *testing.T) {
	cfg, err := parseDaemonArgs(t, `{"bridge": "br-lan"}`)
	if err != nil {
		t.Fatal(err)
	}
	cfg.IP, cfg.MTU = "0.0.0.0", 1500
	s, err := cfg.networkSettings("engine")
	if err != nil || s.bridgeName != "br-lan" || !s.userBridge || s.noBridge {
		t.Errorf(`"bridge": "br-lan": %v, %+v`, err, s)
	}
	cfg.Bridge = "none"
	if s, err = cfg.networkSettings("engine"); err != nil || s.bridgeName != "berth0" || s.userBridge || !s.noBridge {
		t.Errorf("--bridge none: %v, %+v", err, s)
	}
	cfg.Bridge = "berth0" // berth's own device: as without --bridge
	if s, err = cfg.networkSettings("engine"); err != nil || s.bridgeName != "berth0" || s.userBridge || s.noBridge {
		t.Errorf("--bridge berth0: %v, %+v", err, s)
	}
	for name, tc := range map[string]struct {
		tweak func(*Config)
		want  string
	}{
		"bip":         {func(c *Config) { c.BIP = "10.1.0.1/24" }, "You specified -b & --bip, mutually exclusive options"},
		"bip6":        {func(c *Config) { c.BIP6 = "fd00:1::1/64" }, "You specified -b & --bip6, mutually exclusive options"},
		"bridge-name": {func(c *Config) { c.BridgeName = "docker0" }, "both name the default bridge's device"},
		"bad name":    {func(c *Config) { c.Bridge = "bad/name" }, "bad/name"},
		"none, bip":   {func(c *Config) { c.Bridge, c.BIP = "none", "10.1.0.1/24" }, "mutually exclusive"},
	} {
		c := Config{IP: "0.0.0.0", MTU: 1500, BridgeName: "berth0", Bridge: "br-lan"}
		tc.tweak(&c)
		if _, err := c.networkSettings("engine"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

func TestFromUserBridge(t *testing.T) {
	p := netip.MustParsePrefix
	ps := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, v := range s {
			out = append(out, p(v))
		}
		return out
	}
	for _, tc := range []struct {
		name            string
		fixed, fixed6   string
		v4, v6          []netip.Prefix
		ipv6            bool
		bip, range4     string
		bip6, range6    string
		warned, refused bool
	}{
		{name: "the bridge's address", v4: ps("10.50.0.1/24"), bip: "10.50.0.1/24"},
		{name: "no address", bip: "invalid Prefix"},
		{name: "the first of several", v4: ps("10.50.0.1/24", "10.60.0.1/24"), bip: "10.50.0.1/24"},
		{name: "the one holding fixed-cidr", v4: ps("10.50.0.1/24", "10.60.0.1/16"), fixed: "10.60.8.0/24", bip: "10.60.0.1/16", range4: "10.60.8.0/24"},
		{name: "the one holding a wider fixed-cidr's start", v4: ps("10.50.0.1/24", "10.60.0.1/24", "10.60.1.1/24"), fixed: "10.60.0.0/16", bip: "10.60.0.1/24", warned: true},
		{name: "else the first inside fixed-cidr", v4: ps("10.50.0.1/24", "10.60.5.1/24", "10.60.6.1/24"), fixed: "10.60.0.0/16", bip: "10.60.5.1/24", warned: true},
		{name: "fixed-cidr outside: dropped", v4: ps("10.50.0.1/24"), fixed: "10.70.0.0/24", bip: "10.50.0.1/24", warned: true},
		{name: "fixed-cidr without an address: the subnet", fixed: "10.70.0.0/24", bip: "invalid Prefix", range4: "10.70.0.0/24"},
		{name: "IPv6 off: its addresses unread", v4: ps("10.50.0.1/24"), v6: ps("fd00:50::1/64"), bip: "10.50.0.1/24", bip6: "invalid Prefix"},
		{name: "IPv6: link-local left out", ipv6: true, v6: ps("fe80::1/64", "fd00:50::1/64"), bip: "invalid Prefix", bip6: "fd00:50::1/64"},
		{name: "IPv6: link-local alone", ipv6: true, v6: ps("fe80::1/64"), bip: "invalid Prefix", bip6: "invalid Prefix"},
		{name: "IPv6: fixed-cidr-v6 inside", ipv6: true, v6: ps("fd00:50::1/56"), fixed6: "fd00:50:0:1::/64", bip: "invalid Prefix", bip6: "fd00:50::1/56", range6: "fd00:50:0:1::/64"},
		{name: "IPv6: fixed-cidr-v6 outside refused", ipv6: true, v6: ps("fd00:50::1/64"), fixed6: "fd00:60::/64", refused: true},
	} {
		s := netSettings{bridgeName: "br-lan", userBridge: true}
		if tc.fixed != "" {
			s.fixedCIDR = p(tc.fixed)
		}
		if tc.fixed6 != "" {
			s.subnet6 = p(tc.fixed6)
		}
		warnings, err := s.fromUserBridge(tc.v4, tc.v6, tc.ipv6)
		if tc.refused {
			if err == nil || !strings.Contains(err.Error(), "is outside any subnet implied by addresses on the user-managed default bridge") {
				t.Errorf("%s: %v, want dockerd's refusal", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want6 := tc.bip6
		if want6 == "" {
			want6 = "invalid Prefix"
		}
		if s.bip.String() != tc.bip || s.bip6.String() != want6 {
			t.Errorf("%s: bip %v bip6 %v, want %s %s", tc.name, s.bip, s.bip6, tc.bip, want6)
		}
		if got, want := s.fixedCIDR, tc.range4; want != "" && got.String() != want || want == "" && got.IsValid() && !tc.warned {
			t.Errorf("%s: range %v, want %q", tc.name, got, want)
		}
		if tc.warned != (len(warnings) > 0) || tc.warned && s.fixedCIDR.IsValid() {
			t.Errorf("%s: warnings %q, range %v", tc.name, warnings, s.fixedCIDR)
		}
		if tc.range6 != "" && s.subnet6.String() != tc.range6 {
			t.Errorf("%s: IPv6 range %v", tc.name, s.subnet6)
		}
	}
}

// TestDockerdSwitchesBerthAlwaysHas: dockerd's --iptables, --ip6tables
// and --ip-forward are taken true (a Docker host's daemon.json often says
// so) and refused false, by name; --ip-forward-no-drop is taken either
// way (berth never sets the FORWARD policy). On the command line a bare
// switch is true, as dockerd's BoolVar flags.
func TestDockerdSwitchesBerthAlwaysHas(t *testing.T) {
	for _, v := range []bool{true, false} {
		cfg, err := parseDaemonArgs(t, fmt.Sprintf(`{"ip-forward-no-drop": %t}`, v))
		if err == nil {
			cfg.IP, cfg.MTU = "0.0.0.0", 1500
			_, err = cfg.networkSettings("engine")
		}
		if err != nil {
			t.Errorf(`"ip-forward-no-drop": %t: %v`, v, err)
		}
	}
	cfg, err := parseDaemonArgs(t, `{}`, "--iptables", "--debug", "--ip6tables=true", "--ip-forward")
	if err != nil || cfg.NoIPTables || cfg.NoIP6Tables || cfg.NoIPForward || !cfg.Debug {
		t.Errorf("bare switches: %v, %+v", err, cfg)
	}
	if cfg, err = parseDaemonArgs(t, `{}`, "--iptables=false"); err != nil || !cfg.NoIPTables {
		t.Errorf("--iptables=false: %v, %+v", err, cfg)
	}
	for _, key := range []string{"iptables", "ip6tables", "ip-forward"} {
		for _, v := range []bool{true, false} {
			cfg, err := parseDaemonArgs(t, fmt.Sprintf(`{%q: %t}`, key, v))
			if err != nil {
				t.Fatalf("%s: %v: %v", key, v, err)
			}
			cfg.IP, cfg.MTU = "0.0.0.0", 1500
			_, err = cfg.networkSettings("engine")
			if v && err != nil || !v && (err == nil || !strings.Contains(err.Error(), "--"+key+"=false is not supported")) {
				t.Errorf("daemon.json %q: %t: %v", key, v, err)
			}
		}
	}
}

// TestRuntimeOptions: dockerd's storage-driver, exec-opts and
// selinux-enabled in a daemon.json are taken when they say what berth
// is and refused by name otherwise; log-format takes text and json;
// shutdown-timeout is taken with a warning.
func TestRuntimeOptions(t *testing.T) {
	cfg, err := parseDaemonArgs(t, `{"storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"], "selinux-enabled": false, "log-format": "json", "shutdown-timeout": 30, "default-runtime": "runc"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.checkRuntimeOptions(); err != nil || cfg.LogFormat != "json" || !slices.Equal(cfg.ExecOpts, []string{"native.cgroupdriver=cgroupfs"}) {
		t.Errorf("a Docker host's daemon.json: %v (%+v)", err, cfg)
	}
	if len(cfg.FileWarnings) != 1 || !strings.Contains(cfg.FileWarnings[0], `"shutdown-timeout" has no effect`) {
		t.Errorf("warnings %q", cfg.FileWarnings)
	}
	for name, tc := range map[string]struct {
		json, want string
	}{
		"storage-driver":   {`{"storage-driver": "btrfs"}`, "--storage-driver btrfs is not supported"},
		"systemd cgroups":  {`{"exec-opts": ["native.cgroupdriver=systemd"]}`, "--exec-opt native.cgroupdriver=systemd is not supported"},
		"other exec-opt":   {`{"exec-opts": ["isolation=hyperv"]}`, "berth takes native.cgroupdriver=cgroupfs alone"},
		"exec-opt no =":    {`{"exec-opts": ["native.cgroupdriver"]}`, "want KEY=VALUE"},
		"selinux":          {`{"selinux-enabled": true}`, "--selinux-enabled=true is not supported"},
		"runtime":          {`{"default-runtime": "nvidia"}`, "--default-runtime nvidia is not supported"},
		"log-format other": {`{"log-format": "logfmt"}`, "invalid log format: logfmt"},
	} {
		cfg, err := parseDaemonArgs(t, tc.json)
		if err == nil {
			err = cfg.checkRuntimeOptions()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestPidfile: --pidfile holds the daemon's PID; one naming a live
// process refuses the start in dockerd's words, one naming a process
// that is gone is replaced.
func TestPidfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "berth.pid")
	if err := writePidfile(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pidfile %q", b)
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil { // init: always alive
		t.Fatal(err)
	}
	if err := writePidfile(path); err == nil || !strings.Contains(err.Error(), "process with PID 1 is still running") {
		t.Errorf("a pidfile naming a live process: %v", err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writePidfile(path); err != nil {
		t.Errorf("a pidfile naming a process that is gone: %v", err)
	}
	// At exit only a file that still names this process goes.
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	removePidfile(path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("another daemon's pidfile was removed: %v", err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	removePidfile(path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the daemon's own pidfile stayed: %v", err)
	}
}

// TestBridgeAcceptFwMark: dockerd 29's --bridge-accept-fwmark, MARK or
// MARK/MASK in any base, with its words for what does not parse; a mark
// of 0 or one outside its mask is refused.
func TestBridgeAcceptFwMark(t *testing.T) {
	for _, tc := range []struct {
		v          string
		mark, mask uint32
		err        string
	}{
		{v: ""},
		{v: "2", mark: 2, mask: 0xffffffff},
		{v: "0x40000/0xff0000", mark: 0x40000, mask: 0xff0000},
		{v: "2/3", mark: 2, mask: 3},
		{v: "x", err: `invalid bridge-accept-fwmark: invalid firewall mark "x"`},
		{v: "2/y", err: `invalid bridge-accept-fwmark: invalid firewall mask "2/y"`},
		{v: "0x100000000", err: "invalid firewall mark"},
		{v: "0", err: "a mark of 0 is every unmarked packet's"},
		{v: "0/0xff", err: "a mark of 0"},
		{v: "2/1", err: "bits outside the mask"},
	} {
		cfg := Config{IP: "0.0.0.0", MTU: 1500, BridgeAcceptFwMark: tc.v}
		s, err := cfg.networkSettings("engine")
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want %q", tc.v, err, tc.err)
		case tc.err == "" && (err != nil || s.fwMark != tc.mark || s.fwMask != tc.mask):
			t.Errorf("%q: %v, mark %#x mask %#x", tc.v, err, s.fwMark, s.fwMask)
		}
	}
	cfg, err := parseDaemonArgs(t, `{"bridge-accept-fwmark": "0x40000/0xff0000"}`)
	if err != nil || cfg.BridgeAcceptFwMark != "0x40000/0xff0000" {
		t.Errorf("daemon.json: %v, %q", err, cfg.BridgeAcceptFwMark)
	}
}
