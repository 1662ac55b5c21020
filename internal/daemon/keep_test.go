package daemon

import (
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/portproxy"
)

// The keys the daemon leaves sockets under with the reaper read back as
// what they were made of, and no key of one kind reads as another's (a
// resolver's key is a sandbox ID).
func TestKeptKeys(t *testing.T) {
	ports := []network.HostPort{
		{Proto: "tcp", HostIP: netip.IPv4Unspecified(), Port: 8080},
		{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), Port: 53},
		{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 65535},
		{Proto: "sctp", HostIP: netip.MustParseAddr("2001:db8::1"), Port: 1},
	}
	for _, hp := range ports {
		key := portKey(hp)
		if got, ok := parsePortKey(key); !ok || got != hp {
			t.Errorf("parsePortKey(%q) = %v, %v; want %v", key, got, ok, hp)
		}
		if _, _, ok := parseConnKey(key, []int{3, 4}); ok {
			t.Errorf("port key %q read as a connection's", key)
		}
		no := portproxy.NoPipe
		for i, k := range []portproxy.KeptConn{
			{ToClient: no, ToBackend: no}, {ClientDone: true, ToClient: no, ToBackend: no}, {BackendDone: true, ToClient: no, ToBackend: [2]int{22, 23}},
			{ClientDone: true, BackendDone: true, ToClient: no, ToBackend: no}, {ToClient: [2]int{20, 21}, ToBackend: [2]int{22, 23}},
			{ClientDone: true, ToClient: [2]int{20, 21}, ToBackend: no},
		} {
			k.Client, k.Backend = 10, 11
			key := connKey(hp, i*7, k)
			gotHP, got, ok := parseConnKey(key, k.Fds())
			if !ok || gotHP != hp || got != k {
				t.Errorf("parseConnKey(%q, %v) = %v, %+v, %v; want %v, %+v", key, k.Fds(), gotHP, got, ok, hp, k)
			}
			if _, ok := parsePortKey(key); ok {
				t.Errorf("connection key %q read as a port's", key)
			}
			if _, _, ok := parseConnKey(key, k.Fds()[1:]); ok {
				t.Errorf("connection key %q read with a descriptor short", key)
			}
			if _, _, ok := parseConnKey(key, append(k.Fds(), 99)); ok {
				t.Errorf("connection key %q read with a descriptor too many", key)
			}
		}
	}
	for _, hp := range ports[1:2] {
		for i, f := range []portproxy.KeptFlow{
			{Client: netip.MustParseAddrPort("[2001:db8::7]:41000"), To: netip.MustParseAddr("2001:db8::1")},
			{Client: netip.MustParseAddrPort("[fe80::1%eth0]:5353"), To: netip.MustParseAddr("fe80::2%eth0")},
			{Client: netip.MustParseAddrPort("[::ffff:192.0.2.1]:1")}, // an IPv4 client of a dual-stack socket, its destination unknown
		} {
			f.Backend = 12
			key := flowKey(hp, i*11, f)
			gotHP, got, ok := parseFlowKey(key, []int{12})
			if !ok || gotHP != hp || got != f {
				t.Errorf("parseFlowKey(%q) = %v, %+v, %v; want %v, %+v", key, gotHP, got, ok, hp, f)
			}
			if _, ok := parsePortKey(key); ok {
				t.Errorf("flow key %q read as a port's", key)
			}
			if _, _, ok := parseConnKey(key, []int{12, 13}); ok {
				t.Errorf("flow key %q read as a connection's", key)
			}
			if _, _, ok := parseFlowKey(key, []int{12, 13}); ok {
				t.Errorf("flow key %q read with a descriptor too many", key)
			}
		}
	}
	for _, hp := range ports {
		if _, _, ok := parseFlowKey(portKey(hp), []int{3}); ok {
			t.Errorf("port key %q read as a flow's", portKey(hp))
		}
	}
	for _, key := range []string{
		"flow:", "flow:1", "flow:1 [::1]:5 ::1", "flow:x [::1]:5 ::1 port:udp/[::]:53", "flow:-1 [::1]:5 ::1 port:udp/[::]:53",
		"flow:1 [::1]:0 ::1 port:udp/[::]:53", "flow:1 ::1 ::1 port:udp/[::]:53", "flow:1 [::1]:5 x port:udp/[::]:53",
		"flow:1 [::1]:5 ::1 port:tcp/[::]:53", "flow:1 [::1]:5 ::1 port:udp/[::]:53 more", "flow:1  [::1]:5 ::1 port:udp/[::]:53",
		"conn:1:-:port:udp/[::]:53",
	} {
		if _, _, ok := parseFlowKey(key, []int{3}); ok {
			t.Errorf("parseFlowKey(%q) accepted", key)
		}
	}
	for _, key := range []string{
		"8f2c0d6e4b1a9f3e7d5c2b0a8e6f4d2c1b9a7e5f3d1c0b8a6e4f2d0c9b7a5e3f", // a sandbox ID
		"port:", "port:tcp", "port:tcp/", "port:/0.0.0.0:80", "port:tcp/0.0.0.0:0", "port:tcp/0.0.0.0", "port:tcp/[::]:99999",
		"conn:x:-:port:tcp/[::]:80", "conn:1:-:tcp/[::]:80", "conn:1:-", "conn:1:cx:port:tcp/[::]:80", "conn:1::port:tcp/[::]:80",
		"conn:1:bC:port:tcp/[::]:80", "conn:1:cB:port:tcp/[::]:80", "conn:1:cc:port:tcp/[::]:80", "conn:1:Cc:port:tcp/[::]:80",
		"conn:-1:-:port:tcp/[::]:80", "conn:+1:-:port:tcp/[::]:80",
	} {
		if _, ok := parsePortKey(key); ok {
			t.Errorf("parsePortKey(%q) accepted", key)
		}
		if _, _, ok := parseConnKey(key, []int{1, 2}); ok {
			t.Errorf("parseConnKey(%q) accepted", key)
		}
	}
}
