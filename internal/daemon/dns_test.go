package daemon

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/dns"
)

type noNames struct{}

func (noNames) Resolve(string, string) ([]netip.Addr, bool)   { return nil, false }
func (noNames) ResolveAddr(string, netip.Addr) (string, bool) { return "", false }
func (noNames) ExternalAccess(string) bool                    { return true }

// loopbackSockets stands in for the sandbox's 127.0.0.11:53.
func loopbackSockets(sb dns.Sandbox) (u *net.UDPConn, l net.Listener, err error) {
	if sb.Kept != nil { // a ListenFunc owns them
		sb.Kept.Close()
	}
	a, err := net.ResolveUDPAddr("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	if u, err = net.ListenUDP("udp4", a); err != nil {
		return nil, nil, err
	}
	if l, err = net.Listen("tcp4", u.LocalAddr().String()); err != nil {
		u.Close()
		return nil, nil, err
	}
	return u, l, nil
}

// TestEmbeddedResolvConf: a container with a resolver gets Docker's
// resolv.conf (127.0.0.11, search kept, a valid ndots kept, ndots:0
// appended when there is none); one without keeps the host's copy.
func TestEmbeddedResolvConf(t *testing.T) {
	m := dns.NewManager(dns.Config{Names: noNames{}, Listen: loopbackSockets})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(dns.Sandbox{ID: "sb-dns"}); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{dns: m, resolv: fixedResolv(resolvConf{
		nameservers: []netip.Addr{netip.MustParseAddr("10.255.255.53")},
		search:      []string{"example.com"},
		options:     []string{"ndots:3", "edns0"},
	})}
	withDNS := func(cfg container.Config) *container.Container {
		return &container.Container{Config: cfg, State: container.State{SandboxID: "sb-dns"}}
	}
	tests := []struct {
		name string
		c    *container.Container
		want string
	}{
		{"host's search and options, its valid ndots kept", withDNS(container.Config{}),
			"nameserver 127.0.0.11\nsearch example.com\noptions ndots:3 edns0\n"},
		{"user's options replace the host's", withDNS(container.Config{DNSSearch: []string{"corp"}, DNSOptions: []string{"ndots:2"}}),
			"nameserver 127.0.0.11\nsearch corp\noptions ndots:2\n"},
		{"no ndots: ndots:0 appended", withDNS(container.Config{DNSOptions: []string{"edns0"}}),
			"nameserver 127.0.0.11\nsearch example.com\noptions edns0 ndots:0\n"},
		{"an invalid ndots is replaced", withDNS(container.Config{DNSOptions: []string{"ndots:x", "rotate"}}),
			"nameserver 127.0.0.11\nsearch example.com\noptions rotate ndots:0\n"},
		{"--dns still goes through the resolver", withDNS(container.Config{DNS: []string{"1.1.1.1"}}),
			"nameserver 127.0.0.11\nsearch example.com\noptions ndots:3 edns0\n"},
		{"no resolver: the host's copy", &container.Container{State: container.State{SandboxID: "sb-none"}},
			"nameserver 10.255.255.53\nsearch example.com\noptions ndots:3 edns0\n"},
	}
	for _, tt := range tests {
		if got := resolvBody(d.resolvConfFor(tt.c)); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}

// TestResolverConfUpstreams: the resolver forwards to the host's servers,
// loopback ones included (it asks them from the host's namespace, as
// Docker's HostLoopback), or to the container's --dns; ndots set anywhere
// keeps single labels in.
func TestResolverConfUpstreams(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name     string
		servers  []string
		options  []string
		c        container.Config
		want     []netip.AddrPort
		ndotsSet bool
	}{
		{"host's, loopback included", []string{"127.0.0.53", "10.0.0.53", "10.0.1.53"}, nil, container.Config{},
			[]netip.AddrPort{ap("127.0.0.53:53"), ap("10.0.0.53:53"), ap("10.0.1.53:53")}, false},
		{"--dns wins", []string{"10.0.0.53"}, nil, container.Config{DNS: []string{"1.1.1.1", "bogus"}}, []netip.AddrPort{ap("1.1.1.1:53")}, false},
		// As Docker on a user network: no external servers, SERVFAIL (not
		// Google's two, which are the default bridge's fallback).
		{"none at all: none", nil, nil, container.Config{}, nil, false},
		// Its own address asked from the container would be itself.
		{"--dns 127.0.0.11 is skipped", nil, nil, container.Config{DNS: []string{"127.0.0.11", "1.1.1.1"}}, []netip.AddrPort{ap("1.1.1.1:53")}, false},
		{"--dns 127.0.0.11 alone", nil, nil, container.Config{DNS: []string{"127.0.0.11"}}, nil, false},
		{"host's ndots", []string{"10.0.0.53"}, []string{"ndots:2"}, container.Config{}, []netip.AddrPort{ap("10.0.0.53:53")}, true},
		{"user's ndots", []string{"10.0.0.53"}, nil, container.Config{DNSOptions: []string{"ndots:1"}}, []netip.AddrPort{ap("10.0.0.53:53")}, true},
	}
	for _, tt := range tests {
		rc := resolvConf{options: tt.options}
		for _, s := range tt.servers {
			rc.nameservers = append(rc.nameservers, netip.MustParseAddr(s))
		}
		d := &Daemon{resolv: fixedResolv(rc)}
		_, got, ndotsSet := d.resolverConf(&container.Container{Config: tt.c})
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if ndotsSet != tt.ndotsSet {
			t.Errorf("%s: ndotsSet %v, want %v", tt.name, ndotsSet, tt.ndotsSet)
		}
	}
}

// TestStampOf: a file's stamp changes when it is written to a new size or
// replaced by another file, and a missing file's is the zero stamp (a
// first connect reads resolv.conf again when its stamp moved during the
// join). A same-size edit within one tick of the file system's clock is
// the limit of the check.
func TestStampOf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if got := stampOf(p); got != (fileStamp{}) {
		t.Errorf("a missing file's stamp = %+v", got)
	}
	if err := os.WriteFile(p, []byte("nameserver 127.0.0.11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := stampOf(p)
	if before == (fileStamp{}) || stampOf(p) != before {
		t.Fatalf("stamp of an unchanged file: %+v then %+v", before, stampOf(p))
	}
	if err := os.WriteFile(p, []byte("nameserver 192.0.2.99\n# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	grown := stampOf(p)
	if grown == before {
		t.Error("the stamp did not change with the file's size")
	}
	other := p + ".new"
	if err := os.WriteFile(other, []byte("nameserver 192.0.2.99\n# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	if stampOf(p) == grown {
		t.Error("the stamp did not change when the file was replaced")
	}
}
