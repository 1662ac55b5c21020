package dns

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// dialIn opens a client connection to the resolver from inside the
// namespace at path: the socket is made there, then used from here.
func dialIn(t *testing.T, path, proto string) *mdns.Conn {
	t.Helper()
	var c net.Conn
	err := sandbox.Do(path, func() error {
		var err error
		c, err = net.Dial(proto, "127.0.0.11:53")
		return err
	})
	if err != nil {
		t.Fatalf("dial %s 127.0.0.11:53 in %s: %v", proto, path, err)
	}
	t.Cleanup(func() { c.Close() })
	return &mdns.Conn{Conn: c}
}

func exchangeOn(t *testing.T, conn *mdns.Conn, q *mdns.Msg) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Timeout: 20 * time.Second}
	resp, _, err := c.ExchangeWithConn(q, conn)
	if err != nil {
		t.Fatalf("query %s: %v", q.Question[0].Name, err)
	}
	return resp
}

// TestListenInNamespace: the resolver answers on 127.0.0.11:53 inside a
// namespace, over UDP and TCP, and nothing listens there in the test's own
// namespace; after Stop the namespace's port is free again.
func TestListenInNamespace(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	m := NewManager(Config{Names: names})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("web", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
			t.Errorf("%s web = %+v, want 10.0.0.2", proto, got)
		}
	}
	if c, err := net.Dial("tcp4", "127.0.0.11:53"); err == nil {
		c.Close()
		t.Errorf("something answers on 127.0.0.11:53 in the test's own namespace")
	}
	if err := m.Stop("sb"); err != nil {
		t.Fatal(err)
	}
	// The port is free again: a new resolver binds it at once.
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatalf("start again after Stop: %v", err)
	}
}

// TestListenRedirected: with a redirect (the daemon's set-up), the resolver
// answers at 127.0.0.11:53 while port 53 stays free inside the namespace: a
// server of the container's own binds it on every address, over UDP and
// TCP, as it can under Docker.
func TestListenRedirected(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	m := NewManager(Config{Names: names, Listen: ListenInNamespace(nftables.RedirectDNSHere, nftables.DNSRedirected)})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	err := sandbox.Do(ns, func() error {
		u, err := net.ListenPacket("udp4", ":53")
		if err != nil {
			return err
		}
		defer u.Close()
		l, err := net.Listen("tcp4", ":53")
		if err != nil {
			return err
		}
		return l.Close()
	})
	if err != nil {
		t.Fatalf("a container's own server on port 53: %v", err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("web", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
			t.Errorf("%s web through 127.0.0.11:53 = %+v, want 10.0.0.2", proto, got)
		}
	}
}

// TestRedirectWithoutConntrack: the redirect keeps connection tracking
// off in the container's namespace (a NAT rule turns it on there, for
// every flow of the container's), and when the container turns it on
// itself, a query and its answer are one flow: a firewall of the
// container's that drops what conntrack calls invalid (a TCP answer
// whose handshake it never saw) lets them through, over UDP and TCP.
func TestRedirectWithoutConntrack(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	m := redirectingManager(t, names)
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	answers := func(when string) {
		t.Helper()
		for _, proto := range []string{"udp", "tcp"} {
			for range 3 {
				got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("web", mdns.TypeA)))
				if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
					t.Errorf("%s: %s web = %+v, want 10.0.0.2", when, proto, got)
				}
			}
		}
	}
	answers("without tracking")
	// A query sent without a UDP checksum (SO_NO_CHECK) keeps none: the
	// kernel's checksum update would make a wrong one of its 0, and the
	// query would be dropped as corrupt.
	c := dialIn(t, ns, "udp")
	rc, err := c.Conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
		t.Fatalf("SO_NO_CHECK: %v, %v", err, serr)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMsg(query("web", mdns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReadMsg(); err != nil || len(m.Answer) != 1 {
		t.Errorf("a UDP query without a checksum: %v, %v; want web's address", m, err)
	}
	if n := nstest.ConntrackCount(t, ns); n != 0 {
		t.Errorf("%d conntrack entries in the namespace after its queries, want 0", n)
	}
	mine := `table ip mine {
	chain out { type filter hook output priority 0; policy accept; ct state invalid counter drop; }
	chain in { type filter hook input priority 0; policy accept; ct state invalid counter drop; }
}
`
	f := filepath.Join(t.TempDir(), "mine.nft")
	if err := os.WriteFile(f, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nsenter", "--net="+ns, "nft", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	answers("with the container's own conntrack rules")
	if n := nstest.ConntrackCount(t, ns); n == 0 {
		t.Errorf("no conntrack entries after queries under the container's own ct rules: the test proves nothing")
	}
	out, err := exec.Command("nsenter", "--net="+ns, "nft", "list", "table", "ip", "mine").CombinedOutput()
	if err != nil || strings.Count(string(out), "counter packets 0 ") != 2 {
		t.Errorf("the container's invalid-drop counters (want none dropped): %v\n%s", err, out)
	}

	// With the resolver gone (a killed daemon's) and its redirect left, a
	// query is refused at once, over UDP (the kernel's ICMP error quotes
	// the rewritten port, which the client's socket would not take) and
	// over TCP, with or without the container's tracking.
	if err := m.Stop("sb"); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"with the container's conntrack rules", "without"} {
		if when == "without" {
			if out, err := exec.Command("nsenter", "--net="+ns, "nft", "delete", "table", "ip", "mine").CombinedOutput(); err != nil {
				t.Fatalf("nft delete table: %v\n%s", err, out)
			}
		}
		c := dialIn(t, ns, "udp")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMsg(query("web", mdns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadMsg(); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: a UDP query with no resolver: %v, want connection refused", when, err)
		}
		err := sandbox.Do(ns, func() error {
			c, err := net.Dial("tcp4", "127.0.0.11:53")
			if err == nil {
				c.Close()
			}
			return err
		})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: a TCP connection with no resolver: %v, want connection refused", when, err)
		}
	}
}

// TestListenKeepsRedirectedPorts: a resolver made again for a namespace
// (the next daemon's, after a restart) listens on the ports the redirect
// already points at and leaves it alone; when the container took one of
// them meanwhile, it gets new ports and a new redirect. It answers at
// 127.0.0.11:53 either way.
func TestListenKeepsRedirectedPorts(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	newManager := func() *Manager { return redirectingManager(t, names) }
	answers := func(when string) {
		t.Helper()
		for _, proto := range []string{"udp", "tcp"} {
			got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("web", mdns.TypeA)))
			if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
				t.Errorf("%s: %s web = %+v, want 10.0.0.2", when, proto, got)
			}
		}
	}
	redirected := func() [2]uint16 { return redirectedPorts(t, ns) }
	first := newManager()
	if err := first.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	ports := redirected()
	first.Close() // the daemon exits; the namespace keeps its redirect

	second := newManager()
	if err := second.Start(Sandbox{ID: "sb", Path: ns, Again: true}); err != nil {
		t.Fatal(err)
	}
	if got := redirected(); got != ports {
		t.Errorf("redirect after the resolver was made again = %v, want the first one's %v", got, ports)
	}
	answers("on the kept ports")
	if err := second.Stop("sb"); err != nil {
		t.Fatal(err)
	}

	var taken net.PacketConn
	err := sandbox.Do(ns, func() error {
		var err error
		taken, err = net.ListenPacket("udp4", netip.AddrPortFrom(Address, ports[0]).String())
		return err
	})
	if err != nil {
		t.Fatalf("take the resolver's UDP port in the namespace: %v", err)
	}
	defer taken.Close()
	third := newManager()
	if err := third.Start(Sandbox{ID: "sb", Path: ns, Again: true}); err != nil {
		t.Fatalf("start with the UDP port taken: %v", err)
	}
	if got := redirected(); got[0] == ports[0] {
		t.Errorf("redirect with UDP port %d taken = %v, want a new UDP port", ports[0], got)
	}
	answers("on new ports")
}

// TestDetachedSocketsServedAgain: a manager's Detach leaves the
// resolvers' sockets open; a query sent before the next manager serves
// them waits in them and is answered once it does (Sandbox.Kept), on the
// same ports, with the redirect left as it was.
func TestDetachedSocketsServedAgain(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	newManager := func() *Manager { return redirectingManager(t, names) }
	redirected := func() [2]uint16 { return redirectedPorts(t, ns) }
	first := newManager()
	if err := first.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	ports := redirected()
	kept := first.Detach()
	if len(kept) != 1 {
		t.Fatalf("Detach kept %d resolvers' sockets, want 1", len(kept))
	}
	if err := first.Start(Sandbox{ID: "sb2", Path: ns}); err == nil {
		t.Error("a detached manager started a resolver")
	}

	// Sent while no resolver serves: they wait.
	udp, tcp := dialIn(t, ns, "udp"), dialIn(t, ns, "tcp")
	for _, c := range []*mdns.Conn{udp, tcp} {
		if err := c.WriteMsg(query("web", mdns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	s := kept["sb"]
	second := newManager()
	if err := second.Start(Sandbox{ID: "sb", Path: ns, Again: true, Kept: &s}); err != nil {
		t.Fatal(err)
	}
	for proto, c := range map[string]*mdns.Conn{"udp": udp, "tcp": tcp} {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		m, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("%s: the query sent while detached: %v", proto, err)
		}
		if got := summarize(m); got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
			t.Errorf("%s: web, asked while detached = %+v, want 10.0.0.2", proto, got)
		}
	}
	if got := redirected(); got != ports {
		t.Errorf("redirect after serving the kept sockets = %v, want the first one's %v", got, ports)
	}
}

// redirectingManager is a Manager whose resolvers listen as the daemon's
// do: on ports the kernel picks, with nftables' redirect to them.
func redirectingManager(t *testing.T, names Names) *Manager {
	m := NewManager(Config{Names: names, Listen: ListenInNamespace(nftables.RedirectDNSHere, nftables.DNSRedirected)})
	t.Cleanup(func() { m.Close() })
	return m
}

// redirectedPorts are the UDP and TCP ports the redirect in ns points at.
func redirectedPorts(t *testing.T, ns string) [2]uint16 {
	t.Helper()
	u, tc, ok := nftables.DNSRedirected(ns, Address)
	if !ok {
		t.Fatal("no redirect in the namespace")
	}
	return [2]uint16{u, tc}
}

// TestUpstreamsInSandbox: a container's own --dns servers are asked from
// inside its namespace (Docker's resolver does so), over UDP and TCP: a
// server on the container's loopback answers, which the daemon's
// namespace cannot reach; the host's servers are asked from the daemon's.
// Stopping the resolver closes its sockets in the namespace.
func TestUpstreamsInSandbox(t *testing.T) {
	ns, other := nstest.New(t), nstest.New(t)
	serveIn(t, ns, "127.0.0.1:5353", "192.0.2.7")
	m := NewManager(Config{Names: newFakeNames(), Timeout: 2 * time.Second})
	t.Cleanup(func() { m.Close() })
	up := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353")}
	if err := m.Start(Sandbox{ID: "sb", Path: ns, Upstreams: up, UpstreamsInSandbox: true}); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("ext.example", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "ext.example. 60 IN A 192.0.2.7" {
			t.Errorf("%s ext.example through the container's own 127.0.0.1:5353 = %+v", proto, got)
		}
	}
	// The same upstream asked from the daemon's namespace (the host's
	// servers) is not the container's: nobody answers there.
	if err := m.Start(Sandbox{ID: "sb2", Path: other, Upstreams: up}); err != nil {
		t.Fatal(err)
	}
	if got := summarize(exchangeOn(t, dialIn(t, other, "udp"), query("ext.example", mdns.TypeA))); got.Rcode != "SERVFAIL" {
		t.Errorf("ext.example through 127.0.0.1:5353 of the daemon's namespace = %+v, want SERVFAIL", got)
	}
	m.mu.Lock()
	fwd := m.resolvers["sb"].fwd
	m.mu.Unlock()
	if err := m.Stop("sb"); err != nil {
		t.Fatal(err)
	}
	fwd.udp.mu.Lock()
	closed := fwd.udp.closed
	fwd.udp.mu.Unlock()
	if !closed || fwd.udp.sockets() != 0 {
		t.Errorf("after Stop the resolver's sockets in the namespace are not closed (closed %v, %d sockets)", closed, fwd.udp.sockets())
	}
}

// serveIn runs a DNS server inside the namespace at path, on addr over UDP
// and TCP, that answers every A question with ip.
func serveIn(t *testing.T, path, addr, ip string) {
	t.Helper()
	var (
		pc net.PacketConn
		l  net.Listener
	)
	err := sandbox.Do(path, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg).SetReply(q)
		rr, _ := mdns.NewRR(q.Question[0].Name + " 60 IN A " + ip)
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
}

// TestOwnUpstreamsAskedWithoutWayOut: on an --internal network the
// container's own --dns servers are still asked (from its namespace), as
// moby's forwardExtDNS skips only the host's servers: a DNS server on the
// internal network answers (moby#47822; QA round 26). The host's servers
// are not asked (TestResolverWithoutWayOutAnswersServfailAtOnce).
func TestOwnUpstreamsAskedWithoutWayOut(t *testing.T) {
	ns := nstest.New(t)
	serveIn(t, ns, "127.0.0.1:5353", "192.0.2.8")
	names := newFakeNames()
	names.internal["sb"] = true
	m := NewManager(Config{Names: names, Timeout: 2 * time.Second})
	t.Cleanup(func() { m.Close() })
	up := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353")}
	if err := m.Start(Sandbox{ID: "sb", Path: ns, Upstreams: up, UpstreamsInSandbox: true}); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("onnet.test", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "onnet.test. 60 IN A 192.0.2.8" {
			t.Errorf("%s onnet.test through the container's own server on an internal network = %+v", proto, got)
		}
	}
}
