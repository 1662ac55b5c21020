package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"", syscall.SIGTERM}, {"SIGKILL", syscall.SIGKILL}, {"kill", syscall.SIGKILL},
		{"HUP", syscall.SIGHUP}, {"9", syscall.SIGKILL}, {"SIGUSR1", syscall.SIGUSR1},
		// moby's SignalMap: real-time names (systemd's STOPSIGNAL
		// SIGRTMIN+3) and aliases, refused before.
		{"SIGRTMIN+3", 37}, {"RTMIN", 34}, {"rtmax", 64}, {"RTMAX-1", 63}, {"SIGRTMIN+15", 49}, {"RTMAX-14", 50},
		{"SIGPOLL", syscall.SIGIO}, {"CLD", syscall.SIGCHLD}, {"IOT", syscall.SIGABRT}, {"STKFLT", syscall.SIGSTKFLT}, {"PWR", syscall.SIGPWR},
	} {
		got, err := parseSignal(tc.in, syscall.SIGTERM)
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// moby's words: moby/sys/signal's ParseSignal, and ContainerKill's
	// for a number Linux has no signal for.
	for bad, want := range map[string]string{"SIGNOPE": "invalid signal: SIGNOPE", "0": "invalid signal: 0",
		"TERM TERM": "invalid signal: TERM TERM", "RTMIN+16": "invalid signal: RTMIN+16", "RTMAX-15": "invalid signal: RTMAX-15"} {
		if _, err := parseSignal(bad, syscall.SIGTERM); err == nil || err.Error() != want {
			t.Errorf("parseSignal(%q) = %v, want %q", bad, err, want)
		}
	}
	// Any other number parses, as in ParseSignal; kill refuses one Linux
	// has no signal for, in ContainerKill's words.
	for n, want := range map[string]string{"99": "the linux daemon does not support signal 99", "-1": "the linux daemon does not support signal -1", "64": ""} {
		sig, err := parseSignal(n, syscall.SIGTERM)
		if err != nil {
			t.Errorf("parseSignal(%q): %v", n, err)
		}
		if err := validSignal(sig); fmt.Sprint(err) != want && !(want == "" && err == nil) {
			t.Errorf("validSignal(%s) = %v, want %q", n, err, want)
		}
	}
}

func TestReadResolvConfAndContainerCopy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	content := "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver 2001:db8::53\ndomain old.example\nsearch example.com corp\noptions edns0 trust-ad\nsortlist 10.0.0.0/255.0.0.0\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := readResolvConf(p)
	if diff := cmp.Diff([]string{"127.0.0.53", "10.255.255.53", "2001:db8::53"}, addrStrings(rc.nameservers)); diff != "" {
		t.Fatalf("nameservers (-want +got):\n%s", diff)
	}
	d := &Daemon{resolv: &hostResolv{path: p}}
	tests := []struct {
		name string
		c    container.Config
		want string
	}{
		{"default bridge: loopback and IPv6 servers dropped, the rest kept in Docker's order", container.Config{},
			"nameserver 10.255.255.53\nsearch example.com corp\noptions edns0 trust-ad\nsortlist 10.0.0.0/255.0.0.0\n"},
		{"host network: the host's file", container.Config{NetworkMode: "host"},
			"nameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver 2001:db8::53\nsearch example.com corp\noptions edns0 trust-ad\nsortlist 10.0.0.0/255.0.0.0\n"},
		{"none: as the default bridge, without IPv6 (moby's updateDNS at the none network's join)", container.Config{NetworkMode: "none"},
			"nameserver 10.255.255.53\nsearch example.com corp\noptions edns0 trust-ad\nsortlist 10.0.0.0/255.0.0.0\n"},
		{"--dns, --dns-search, --dns-option", container.Config{DNS: []string{"1.1.1.1", "127.0.0.1"}, DNSSearch: []string{"x"}, DNSOptions: []string{"ndots:2"}},
			"nameserver 1.1.1.1\nnameserver 127.0.0.1\nsearch x\noptions ndots:2\nsortlist 10.0.0.0/255.0.0.0\n"},
		{"--dns-search . means none", container.Config{DNSSearch: []string{"."}},
			"nameserver 10.255.255.53\noptions edns0 trust-ad\nsortlist 10.0.0.0/255.0.0.0\n"},
	}
	for _, tt := range tests {
		if got := resolvBody(d.resolvConfFor(&container.Container{Config: tt.c})); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
	onlyLoopback := &Daemon{resolv: fixedResolv(resolvConf{nameservers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})}
	if got := resolvBody(onlyLoopback.resolvConfFor(&container.Container{})); got != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Fatalf("fallback resolv.conf = %q", got)
	}
	if got := parseResolvConf("domain a.example\n", "/etc/resolv.conf").search; !slices.Equal(got, []string{"a.example"}) {
		t.Errorf("domain read as search %q, want [a.example]", got)
	}
}

// TestSystemdStub: on a host whose resolv.conf names only
// systemd-resolved's stub, a container without a resolver gets the real
// servers from systemd's own list (moby's resolvconf.Path); the host
// network keeps the stub, which it can reach.
func TestSystemdStub(t *testing.T) {
	dir := t.TempDir()
	stub, real := filepath.Join(dir, "stub"), filepath.Join(dir, "real")
	os.WriteFile(stub, []byte("nameserver 127.0.0.53\nsearch lan\noptions edns0 trust-ad\n"), 0o644)
	os.WriteFile(real, []byte("nameserver 192.0.2.1\nsearch lan\n"), 0o644)
	d := &Daemon{resolv: &hostResolv{path: stub}, resolvSystemd: &hostResolv{path: real}}
	if got := resolvBody(d.resolvConfFor(&container.Container{})); got != "nameserver 192.0.2.1\nsearch lan\n" {
		t.Errorf("default bridge on a systemd-resolved host: %q", got)
	}
	if got := resolvBody(d.resolvConfFor(&container.Container{Config: container.Config{NetworkMode: "host"}})); got != "nameserver 127.0.0.53\nsearch lan\noptions edns0 trust-ad\n" {
		t.Errorf("host network on a systemd-resolved host: %q", got)
	}
}

// resolvBody is a resolv.conf without Docker's comments and blank lines.
func resolvBody(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && l != "\n" && !strings.HasPrefix(l, "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestResolvConfComments: the file as Docker 28 writes it, comments and
// all (libnetwork's Generate): the header, and at the end the host file
// it came from with what was done to it, the resolver's upstreams, the
// overrides, and where ndots came from.
func TestResolvConfComments(t *testing.T) {
	host := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(host, []byte("nameserver 127.0.0.53\nnameserver bogus\nsearch lan\n"), 0o644)
	d := &Daemon{resolv: &hostResolv{path: host}}
	header := "# Generated by Docker Engine.\n# This file can be edited; Docker Engine will not make further changes once it\n# has been modified.\n\n"
	rc, _, _ := d.resolverConf(&container.Container{Config: container.Config{DNSOptions: []string{"timeout:2"}}})
	want := header + "nameserver 127.0.0.11\nsearch lan\noptions timeout:2 ndots:0\n\n" +
		"# Based on host file: '" + host + "' (internal resolver)\n# ExtServers: [host(127.0.0.53)]\n# Invalid nameservers: [bogus]\n# Overrides: [options]\n# Option ndots from: internal\n"
	if got := rc.String(); got != want {
		t.Errorf("user network:\n%s\nwant:\n%s", got, want)
	}
	want = header + "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n\n" +
		"# Based on host file: '" + host + "' (legacy)\n# Used default nameservers.\n# Invalid nameservers: [bogus]\n# Overrides: []\n"
	if got := d.resolvConfFor(&container.Container{}); got != want {
		t.Errorf("default bridge:\n%s\nwant:\n%s", got, want)
	}
	rc, _, _ = d.resolverConf(&container.Container{Config: container.Config{DNS: []string{"127.0.0.11", "192.0.2.9"}, DNSSearch: []string{"."}}})
	want = header + "nameserver 127.0.0.11\noptions ndots:0\n\n" +
		"# Based on host file: '" + host + "' (internal resolver)\n# ExtServers: [192.0.2.9]\n# Invalid nameservers: [bogus]\n# Overrides: [nameservers search]\n# Option ndots from: internal\n"
	if got := rc.String(); got != want {
		t.Errorf("user network with --dns (its own address skipped) and --dns-search .:\n%s\nwant:\n%s", got, want)
	}
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestSortedNetworksPutsModeFirst(t *testing.T) {
	nets := map[string]container.EndpointRequest{"zeta": {}, "alpha": {}, "web": {}}
	if diff := cmp.Diff([]string{"web", "alpha", "zeta"}, sortedNetworks(nets, "web")); diff != "" {
		t.Fatal(diff)
	}
}

func TestValidContainerName(t *testing.T) {
	for _, ok := range []string{"web", "a1", "my_ctr.1-x"} {
		if !validContainerName.MatchString(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"a", "-a", "a/b", "a b", "..", "é1"} {
		if validContainerName.MatchString(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fixedResolv is a host resolver configuration that no file backs.
func fixedResolv(rc resolvConf) *hostResolv { return &hostResolv{rc: rc, primed: true} }

// TestHostResolvFollowsTheFile: a resolv.conf rewritten after the daemon
// started (a DHCP lease, a VPN) is what the next container gets.
func TestHostResolvFollowsTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte("nameserver 10.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &hostResolv{path: p}
	if got := addrStrings(h.get().nameservers); !slices.Equal(got, []string{"10.0.0.53"}) {
		t.Fatalf("nameservers = %v", got)
	}
	if err := os.WriteFile(p, []byte("nameserver 192.0.2.53\nnameserver 192.0.2.54\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := addrStrings(h.get().nameservers); !slices.Equal(got, []string{"192.0.2.53", "192.0.2.54"}) {
		t.Errorf("after the file changed: nameservers = %v", got)
	}
}

func TestStartFailureExitCode(t *testing.T) {
	for msg, want := range map[string]int{
		`runc run failed: exec: "nosuch": executable file not found in $PATH`: 127,
		"exec /bin/x: no such file or directory":                              127,
		"exec /etc: permission denied":                                        126,
		// An exec's too (docker exec -w /etc/passwd): moby's ENOTDIR case.
		`chdir to cwd ("/etc/passwd") set in config.json failed: not a directory`:                                              127,
		"driver failed programming external connectivity on endpoint x: Bind for 0.0.0.0:80 failed: port is already allocated": 128,
	} {
		if got := startFailureExitCode(errors.New(msg)); got != want {
			t.Errorf("%q: %d, want %d", msg, got, want)
		}
	}
}

// endpointSettingsError says what moby's validateEndpointSettings says,
// every problem on its own line.
func TestEndpointSettingsError(t *testing.T) {
	subnet := netip.MustParsePrefix("10.10.0.0/24")
	bridge := &network.Network{Name: network.NameBridge, Driver: network.DriverBridge, Predefined: true,
		IPv4: &network.IPConfig{Subnet: netip.MustParsePrefix("172.17.0.0/16")}}
	user := &network.Network{Name: "net1", Driver: network.DriverBridge, IPv4: &network.IPConfig{Subnet: subnet, UserSubnet: true}}
	auto := &network.Network{Name: "net2", Driver: network.DriverBridge, IPv4: &network.IPConfig{Subnet: subnet}}
	only6 := &network.Network{Name: "net6", Driver: network.DriverBridge, IPv6: &network.IPConfig{Subnet: netip.MustParsePrefix("fd00:6::/64")}}
	ip := func(s string) container.EndpointRequest {
		return container.EndpointRequest{IPv4Address: netip.MustParseAddr(s)}
	}
	for _, tc := range []struct {
		name string
		n    *network.Network
		req  container.EndpointRequest
		want string
	}{
		{"bridge, address", bridge, ip("172.17.0.99"), "invalid endpoint settings:\nuser specified IP address is supported on user defined networks only"},
		{"bridge, address and alias", bridge, container.EndpointRequest{IPv4Address: netip.MustParseAddr("10.9.9.9"), Aliases: []string{"a"}},
			"invalid endpoint settings:\nuser specified IP address is supported on user defined networks only\nnetwork-scoped alias is supported only for containers in user defined networks\nno configured subnet contains IP address 10.9.9.9"},
		{"user subnet, outside", user, ip("10.20.0.5"), "invalid endpoint settings:\nno configured subnet contains IP address 10.20.0.5"},
		// Docker 29.1: a subnet from the default pools takes an address too.
		{"subnet from the pools, inside", auto, ip("10.10.0.5"), ""},
		{"subnet from the pools, outside", auto, ip("10.11.0.5"), "invalid endpoint settings:\nno configured subnet contains IP address 10.11.0.5"},
		{"IPv6-only network, IPv4 address", only6, ip("10.10.0.5"), "invalid endpoint settings:\nno configured subnet contains IP address 10.10.0.5"},
		{"IPv4-only network, IPv6 address", user, container.EndpointRequest{IPv6Address: netip.MustParseAddr("fd00::5")}, "invalid endpoint settings:\nno configured subnet contains IP address fd00::5"},
		{"user subnet, inside", user, ip("10.10.0.5"), ""},
		// A subnet of a family turned off is kept, unused: said so.
		{"IPv6 off, its subnet kept", &network.Network{Name: "net1", Driver: network.DriverBridge, IPv4: &network.IPConfig{Subnet: subnet},
			UnusedIPAM: []network.IPAMRequest{{Subnet: netip.MustParsePrefix("fd00:7::/64")}}},
			container.EndpointRequest{IPv6Address: netip.MustParseAddr("fd00:7::5")},
			"invalid endpoint settings:\nnetwork net1 has IPv6 turned off: its subnet fd00:7::/64 is kept unused, so IP address fd00:7::5 cannot be given (create the network with --ipv6)"},
		{"alias on a user network", user, container.EndpointRequest{Aliases: []string{"a"}}, ""},
		// --link-local-ip: on the default bridge as in Docker; refused
		// at create where there is no interface, as --ip.
		{"link-local on the bridge", bridge, container.EndpointRequest{LinkLocalIPs: []netip.Addr{netip.MustParseAddr("169.254.1.1")}}, ""},
		{"link-local on none", &network.Network{Name: network.NameNone, Driver: network.DriverNull, Predefined: true},
			container.EndpointRequest{LinkLocalIPs: []netip.Addr{netip.MustParseAddr("169.254.1.1")}},
			"invalid endpoint settings:\nuser specified IP address is supported on user defined networks only"},
	} {
		err := endpointSettingsError(tc.n, tc.req)
		if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && got != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestMergeImageConfig: a container takes what its image's config sets
// and it does not, as moby's merge: the command only without an
// entrypoint of its own, environment variables and labels it does not
// name, ports added, the health check's unset fields.
func TestMergeImageConfig(t *testing.T) {
	ic := &image.Config{User: "app", Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"serve"}, Entrypoint: []string{"/init"},
		WorkingDir: "/srv", ExposedPorts: []string{"80/tcp"}, Labels: map[string]string{"a": "image", "b": "image"}, StopSignal: "SIGQUIT",
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}}
	for _, tt := range []struct {
		name string
		in   container.Config
		want container.Config
	}{
		{"nothing set", container.Config{},
			container.Config{User: "app", Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"serve"}, Entrypoint: []string{"/init"}, WorkingDir: "/srv",
				ExposedPorts: []string{"80/tcp"}, Labels: map[string]string{"a": "image", "b": "image"}, StopSignal: "SIGQUIT",
				Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}}},
		{"its own command keeps the image's entrypoint",
			container.Config{Cmd: []string{"sh"}, Env: []string{"A=2"}, ExposedPorts: []string{"53/udp"}, Labels: map[string]string{"a": "mine"},
				Healthcheck: &container.HealthConfig{Retries: 9}},
			container.Config{User: "app", Env: []string{"A=2", "PATH=/bin"}, Cmd: []string{"sh"}, Entrypoint: []string{"/init"}, WorkingDir: "/srv",
				ExposedPorts: []string{"53/udp", "80/tcp"}, Labels: map[string]string{"a": "mine", "b": "image"}, StopSignal: "SIGQUIT",
				Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 9}}},
		{"its own entrypoint takes no command", container.Config{Entrypoint: []string{"/bin/sh"}, User: "root", WorkingDir: "/"},
			container.Config{User: "root", Env: []string{"PATH=/bin", "A=1"}, Entrypoint: []string{"/bin/sh"}, WorkingDir: "/",
				ExposedPorts: []string{"80/tcp"}, Labels: map[string]string{"a": "image", "b": "image"}, StopSignal: "SIGQUIT",
				Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}}},
		{"--entrypoint '' takes neither", container.Config{Entrypoint: []string{""}},
			container.Config{User: "app", Env: []string{"PATH=/bin", "A=1"}, Entrypoint: []string{""}, WorkingDir: "/srv",
				ExposedPorts: []string{"80/tcp"}, Labels: map[string]string{"a": "image", "b": "image"}, StopSignal: "SIGQUIT",
				Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}}},
	} {
		got := tt.in
		mergeImageConfig(&got, ic)
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestResolvConfHashedStreams: a container's resolv.conf is compared
// with berth's hash as a stream; one larger than berth ever writes (a
// sparse file costs the container no disk) counts as edited unread.
func TestResolvConfHashedStreams(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	content := []byte("nameserver 127.0.0.11\noptions ndots:0\n")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if err := os.WriteFile(p+".hash", []byte("sha256:"+hex.EncodeToString(sum[:])), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := resolvConfHashed(p); got != hashMatch {
		t.Errorf("berth's own file: %v, want a match", got)
	}
	if err := os.Truncate(p, 8<<30); err != nil { // sparse
		t.Fatal(err)
	}
	if got := resolvConfHashed(p); got != hashMismatch {
		t.Errorf("an 8 GiB sparse file: %v, want edited", got)
	}
}

// TestCheckCapAdd: a --cap-add the daemon lacks is refused at create in
// moby's words; ALL is what the daemon has.
func TestCheckCapAdd(t *testing.T) {
	have := []string{"CAP_CHOWN", "CAP_NET_ADMIN"}
	if err := checkCapAdd([]string{"net_admin", "ALL"}, have); err != nil {
		t.Error(err)
	}
	err := checkCapAdd([]string{"SYS_RESOURCE"}, have)
	if want := `invalid CapAdd: capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// The default bridge's resolv.conf, as moby's TransformForLegacyNw: the
// host's IPv6 servers are kept when the network has IPv6, and the
// fallback then adds Google's IPv6 pair; loopback servers never stay.
func TestLegacyResolvConfIPv6(t *testing.T) {
	host := parseResolvConf("nameserver 127.0.0.53\nnameserver 2001:db8::53\nnameserver ::1\n", "/etc/resolv.conf")
	if got := host.forLegacy(true).nameservers; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8::53")}) {
		t.Errorf("with IPv6: %v, want the host's 2001:db8::53", got)
	}
	if got := host.forLegacy(false).nameservers; !slices.Equal(got, defaultNameservers) {
		t.Errorf("without IPv6: %v, want %v", got, defaultNameservers)
	}
	only := parseResolvConf("nameserver 127.0.0.1\n", "/etc/resolv.conf")
	if got := only.forLegacy(true).nameservers; !slices.Equal(got, append(slices.Clone(defaultNameservers), defaultNameservers6...)) {
		t.Errorf("nothing left, with IPv6: %v", got)
	}
}

// TestSavedHistory: docker save keeps an image's history, author and
// comment, with the one layer it writes paired with the last entry that
// made one (the others marked as making none).
func TestSavedHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	img := &image.Image{Author: "me", Created: t0, History: []image.History{
		{Created: t0, Comment: "Imported from -"},
		{Created: t0, CreatedBy: "sh -c make", Comment: "snap"},
		{Created: t0, CreatedBy: "true", EmptyLayer: true},
	}}
	cfg := ociImageConfig(img, "abc")
	h, ok := cfg["history"].([]savedEntry)
	if !ok || len(h) != 3 || !h[0].EmptyLayer || h[1].EmptyLayer || !h[2].EmptyLayer || h[1].CreatedBy != "sh -c make" || cfg["author"] != "me" {
		t.Errorf("saved config: author %v, history %+v", cfg["author"], cfg["history"])
	}
	if img.History[0].EmptyLayer {
		t.Error("the image's own history was changed")
	}
	// A SHELL is part of the config, as moby's DockerOCIImageConfig.
	withShell := ociImageConfig(&image.Image{Created: t0, Config: &image.Config{Shell: []string{"/bin/sh", "-xc"}}}, "abc")
	if sh, _ := withShell["config"].(map[string]any)["Shell"].([]string); !slices.Equal(sh, []string{"/bin/sh", "-xc"}) {
		t.Errorf("saved config %v, want its Shell", withShell["config"])
	}
	if _, ok := ociImageConfig(&image.Image{Created: t0}, "abc")["history"]; ok {
		t.Error("an image without history got one")
	}
	// No entry made a layer: the last makes the saved one. An undated
	// entry has no "created" (not year 1).
	b, err := json.Marshal(savedHistory(&image.Image{History: []image.History{{CreatedBy: "a", EmptyLayer: true}, {CreatedBy: "b", EmptyLayer: true}}}))
	if err != nil || string(b) != `[{"created_by":"a","empty_layer":true},{"created_by":"b"}]` {
		t.Errorf("saved history without a layer entry: %s, %v", b, err)
	}
}
