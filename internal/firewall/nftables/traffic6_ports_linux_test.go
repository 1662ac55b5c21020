package nftables

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/sandbox"
)

// Published ports over IPv6, in the test world of traffic6_linux_test.go.
// The container c1 (10.0.1.2, fd00:1::2) runs a server that answers each
// connection with the client's address as it sees it; the host holds
// [::]:8080 as the daemon's userland proxy does, and answers "hi": an
// answer says who served the connection, and from which source.

// listenWhoami serves, on TCP addr in the namespace ns, the address of
// each client, until the test ends.
func listenWhoami(t *testing.T, ns, addr string) {
	t.Helper()
	var l net.Listener
	if err := sandbox.Do(ns, func() (err error) {
		l, err = net.Listen(tcpNet(addr), addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap().String())
			c.Close()
		}
	}()
}

// ask returns what the server at addr answers a connection from ns, or
// "" if there is no answer (one try, bounded by a few seconds).
func ask(t *testing.T, ns, addr string) string {
	t.Helper()
	var got []byte
	err := sandbox.Do(ns, func() error {
		c, err := net.DialTimeout(tcpNet(addr), addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err = io.ReadAll(c)
		return err
	})
	if err != nil {
		return ""
	}
	return string(got)
}

// listenEcho echoes, on TCP addr in the namespace ns, what each client
// sends, until the test ends.
func listenEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var l net.Listener
	if err := sandbox.Do(ns, func() (err error) {
		l, err = net.Listen(tcpNet(addr), addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

// echoes reports whether msg comes back on c within a few seconds.
func echoes(c net.Conn, msg string) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}

// askWithin is ask tried again for up to 30 s until some answer comes, for
// where an answer is expected (on a loaded machine, or while neighbour
// discovery settles, one try may miss).
func askWithin(t *testing.T, ns, addr string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got := ask(t, ns, addr); got != "" || time.Now().After(deadline) {
			return got
		}
	}
}

// TestPublishedPortsIPv6 publishes one container port for both families
// on the same host port, and one IPv6 port on one host address.
func TestPublishedPortsIPv6(t *testing.T) {
	w := newWorld6(t)
	// The bridge driver turns hairpin on for each container's port, so
	// that a container reaches itself through a host address.
	for _, veth := range []string{"veth1", "veth2", "veth3"} {
		run(t, w.host, "ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
	}
	listenWhoami(t, w.c1, "[::]:80")
	listenWhoami(t, w.c1, "0.0.0.0:80")
	listenEcho(t, w.c1, "[::]:81")
	listen(t, w.host, "[::]:8080") // the userland proxy's socket
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	ctx := context.Background()
	c1v4, c1v6 := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("fd00:1::2")
	web4 := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: c1v4, Port: 80}
	web6 := firewall.PortMapping{Proto: firewall.TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: c1v6, Port: 80}
	bound6 := firewall.PortMapping{Proto: firewall.TCP, HostIP: netip.MustParseAddr(hostAddr6), HostPort: 8081, Addr: c1v6, Port: 80}
	echo6 := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8082, Addr: c1v6, Port: 81}
	if err := fw.Rebuild(ctx, []firewall.Network{br0v6, br1v6}); err != nil {
		t.Fatal(err)
	}
	if err := fw.AddPorts(ctx, []firewall.PortMapping{web4, web6, bound6, echo6}); err != nil {
		t.Fatalf("AddPorts of one port for both families: %v", err)
	}
	host6 := "[" + hostAddr6 + "]"
	for _, tc := range []struct {
		name, from, addr, want string
	}{
		// The container sees the client's own address: no masquerade.
		{"the outside over IPv6", w.outside, host6 + ":8080", "2001:db8:1::1"},
		{"the outside over IPv4, same host port", w.outside, "198.51.100.2:8080", "198.51.100.1"},
		{"the outside to the port bound to one IPv6 address", w.outside, host6 + ":8081", "2001:db8:1::1"},
		// Another network: masqueraded out of br1 into br0 (nat_out).
		{"c3 on another network", w.c3, host6 + ":8080", "fd00:1::1"},
		// The container's own network: the IPv6 hairpin masquerade.
		{"c1 to itself (hairpin)", w.c1, host6 + ":8080", "fd00:1::1"},
		{"c2 on the same network", w.c2, host6 + ":8080", "fd00:1::1"},
		{"c1 through its IPv6 gateway", w.c1, "[fd00:1::1]:8080", "fd00:1::1"},
		// The host itself: nat_output DNATs its non-loopback addresses,
		// and ::1 is left to the proxy's socket, as Docker leaves it.
		{"the host to its own IPv6 address", w.host, host6 + ":8080", hostAddr6},
		{"the host to ::1", w.host, "[::1]:8080", "hi"},
	} {
		if got := askWithin(t, tc.from, tc.addr); got != tc.want {
			t.Errorf("%s (%s): answered %q, want %q", tc.name, tc.addr, got, tc.want)
		}
	}
	if got := ask(t, w.c1, "[fd00:1::1]:8081"); got != "" {
		t.Errorf("the port bound to %s answers on the gateway address: %q", hostAddr6, got)
	}

	t.Run("conflict", func(t *testing.T) {
		other := web6
		other.Addr = netip.MustParseAddr("fd00:1::3")
		if err := fw.AddPorts(ctx, []firewall.PortMapping{other}); !errdefs.Is(err, errdefs.KindConflict) {
			t.Errorf("AddPorts of [::]:8080 to c2 as well: %v, want a conflict", err)
		}
		if got := askWithin(t, w.outside, host6+":8080"); got != "2001:db8:1::1" {
			t.Errorf("after the refused conflict, [::]:8080 answers %q, want c1's answer", got)
		}
	})

	t.Run("withdrawn", func(t *testing.T) {
		// A connection open across DelPorts: its conntrack entry goes
		// too, or it would go on reaching the container.
		var open net.Conn
		if err := sandbox.Do(w.outside, func() (err error) {
			open, err = net.DialTimeout("tcp6", host6+":8082", 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer open.Close()
		if !echoes(open, "before") {
			t.Fatal("no echo through [::]:8082 before DelPorts")
		}
		if err := fw.DelPorts(ctx, []firewall.PortMapping{web6, bound6, echo6}); err != nil {
			t.Fatal(err)
		}
		if echoes(open, "after") {
			t.Error("a connection DNATed before DelPorts still reaches the container")
		}
		// Not DNATed any more: the host's own socket answers.
		if got := askWithin(t, w.outside, host6+":8080"); got != "hi" {
			t.Errorf("after DelPorts, [%s]:8080 answered %q, want the host's %q", hostAddr6, got, "hi")
		}
		if got := ask(t, w.outside, host6+":8081"); got != "" {
			t.Errorf("after DelPorts, the port bound to %s still answers %q", hostAddr6, got)
		}
		if got := askWithin(t, w.outside, "198.51.100.2:8080"); got != "198.51.100.1" {
			t.Errorf("withdrawing the IPv6 side took the IPv4 side: answered %q", got)
		}
	})
}

// TestPublishedPortIPv6LinkLocalClient: a client with a link-local source
// is not DNATed (Docker's "! -s fe80::/10": the container could not be
// routed an answer); the proxy's socket serves it.
func TestPublishedPortIPv6LinkLocalClient(t *testing.T) {
	w := newWorld6(t)
	listenWhoami(t, w.c1, "[::]:80")
	listen(t, w.host, "[::]:8080")
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	web6 := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("fd00:1::2"), Port: 80}
	if err := fw.Rebuild(context.Background(), []firewall.Network{br0v6, br1v6}, web6); err != nil {
		t.Fatal(err)
	}
	run(t, w.host, "ip", "-6", "addr", "add", "fe80::2/64", "dev", "eth0", "nodad")
	run(t, w.outside, "ip", "-6", "addr", "add", "fe80::1/64", "dev", "eth0", "nodad")
	if got := askWithin(t, w.outside, "[fe80::2%eth0]:8080"); got != "hi" {
		t.Errorf("a link-local client got %q, want the host's %q", got, "hi")
	}
	if got := askWithin(t, w.outside, "["+hostAddr6+"]:8080"); got != "2001:db8:1::1" {
		t.Errorf("a global client got %q, want c1's answer", got)
	}
}
