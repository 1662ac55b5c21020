package daemon

import (
	"net"
	"net/netip"
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
func loopbackSockets(string) (u *net.UDPConn, l net.Listener, err error) {
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
// resolv.conf (search kept, 127.0.0.11, ndots:0 first unless the user set
// ndots); one without keeps the host's copy.
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
		{"host's search and options, ndots replaced", withDNS(container.Config{}),
			"search example.com\nnameserver 127.0.0.11\noptions ndots:0 edns0\n"},
		{"user's ndots kept", withDNS(container.Config{DNSSearch: []string{"corp"}, DNSOptions: []string{"ndots:2"}}),
			"search corp\nnameserver 127.0.0.11\noptions ndots:2\n"},
		{"--dns still goes through the resolver", withDNS(container.Config{DNS: []string{"1.1.1.1"}}),
			"search example.com\nnameserver 127.0.0.11\noptions ndots:0 edns0\n"},
		{"no resolver: the host's copy", &container.Container{State: container.State{SandboxID: "sb-none"}},
			"search example.com\nnameserver 10.255.255.53\noptions ndots:3 edns0\n"},
	}
	for _, tt := range tests {
		if got := d.resolvConfFor(tt.c); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
}

func TestUpstreamsFor(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		servers []string
		dns     []string
		want    []netip.AddrPort
	}{
		{"host's, loopback skipped", []string{"127.0.0.53", "10.0.0.53", "::1", "10.0.1.53"}, nil,
			[]netip.AddrPort{ap("10.0.0.53:53"), ap("10.0.1.53:53")}},
		{"--dns wins", []string{"10.0.0.53"}, []string{"1.1.1.1", "bogus"}, []netip.AddrPort{ap("1.1.1.1:53")}},
		{"only loopback: Docker's fallback", []string{"127.0.0.53"}, nil, []netip.AddrPort{ap("8.8.8.8:53"), ap("8.8.4.4:53")}},
	}
	for _, tt := range tests {
		var rc resolvConf
		for _, s := range tt.servers {
			rc.nameservers = append(rc.nameservers, netip.MustParseAddr(s))
		}
		d := &Daemon{resolv: fixedResolv(rc)}
		got := d.upstreamsFor(&container.Container{Config: container.Config{DNS: tt.dns}})
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
