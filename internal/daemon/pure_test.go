package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/berth-net/berth/internal/container"
	"github.com/google/go-cmp/cmp"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"", syscall.SIGTERM}, {"SIGKILL", syscall.SIGKILL}, {"kill", syscall.SIGKILL},
		{"HUP", syscall.SIGHUP}, {"9", syscall.SIGKILL}, {"SIGUSR1", syscall.SIGUSR1},
	} {
		got, err := parseSignal(tc.in, syscall.SIGTERM)
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "99", "-1", "TERM TERM"} {
		if _, err := parseSignal(bad, syscall.SIGTERM); err == nil {
			t.Errorf("parseSignal(%q) succeeded", bad)
		}
	}
}

func TestReadResolvConfAndContainerCopy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	content := "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch example.com corp\noptions edns0 trust-ad\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := readResolvConf(p)
	if diff := cmp.Diff([]string{"127.0.0.53", "10.255.255.53"}, addrStrings(rc.nameservers)); diff != "" {
		t.Fatalf("nameservers (-want +got):\n%s", diff)
	}
	d := &Daemon{resolv: &hostResolv{path: p}}
	got := d.resolvConfFor(&container.Container{})
	want := "search example.com corp\nnameserver 10.255.255.53\noptions edns0 trust-ad\n"
	if got != want {
		t.Fatalf("container resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	onlyLoopback := &Daemon{resolv: fixedResolv(resolvConf{nameservers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})}
	if got := onlyLoopback.resolvConfFor(&container.Container{}); got != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Fatalf("fallback resolv.conf = %q", got)
	}
	custom := d.resolvConfFor(&container.Container{Config: container.Config{DNS: []string{"1.1.1.1"}, DNSSearch: []string{"x"}, DNSOptions: []string{"ndots:2"}}})
	if custom != "search x\nnameserver 1.1.1.1\noptions ndots:2\n" {
		t.Fatalf("--dns resolv.conf = %q", custom)
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
