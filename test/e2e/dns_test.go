package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berth-net/berth/internal/dns"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/testworld"
)

// upstreamDNS is the outside world's name server on 203.0.113.10:53 (UDP
// and TCP): example.test → 203.0.113.10, big.test → truncated over UDP and
// 60 addresses over TCP, everything else NXDOMAIN. It records what it was
// asked ("udp example.test.").
type upstreamDNS struct {
	mu   sync.Mutex
	seen []string
}

// startUpstreamDNS listens inside the outside namespace (sockets made on a
// thread in it, served from here) and writes a resolv.conf naming it for
// the daemon's --resolv-conf; it returns that file's path.
func startUpstreamDNS(t *testing.T, w *testworld.World) (*upstreamDNS, string) {
	t.Helper()
	u := serveUpstreamDNS(t, w.OutsideNS, netip.AddrPortFrom(testworld.ServerAddr, 53))
	conf := filepath.Join(w.Dir, "host-resolv.conf")
	// No search line: busybox nslookup asks a dotless name only with the
	// search domains appended (ping, through libc, asks it as it is).
	content := "nameserver 127.0.0.53\nnameserver " + testworld.ServerAddr.String() + "\noptions edns0\n"
	if err := os.WriteFile(conf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return u, conf
}

// serveUpstreamDNS answers as an upstream server at addr in the network
// namespace at nsPath until the test ends.
func serveUpstreamDNS(t *testing.T, nsPath string, addr netip.AddrPort) *upstreamDNS {
	t.Helper()
	at := addr.String()
	var (
		pc net.PacketConn
		l  net.Listener
	)
	err := sandbox.Do(nsPath, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", at); err != nil {
			return err
		}
		l, err = net.Listen("tcp4", at)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", at, nsPath, err)
	}
	u := &upstreamDNS{}
	for _, srv := range []*mdns.Server{
		{PacketConn: pc, Handler: u.handler("udp")},
		{Listener: l, Handler: u.handler("tcp")},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *upstreamDNS) handler(proto string) mdns.HandlerFunc {
	return func(rw mdns.ResponseWriter, q *mdns.Msg) {
		name := strings.ToLower(q.Question[0].Name)
		u.mu.Lock()
		u.seen = append(u.seen, proto+" "+name)
		u.mu.Unlock()
		resp := new(mdns.Msg).SetReply(q)
		a := func(addr string) {
			resp.Answer = append(resp.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA,
				Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP(addr)})
		}
		switch {
		case name == "example.test." && q.Question[0].Qtype == mdns.TypeA:
			a(testworld.ServerAddr.String())
		case name == "example.test.":
		case name == "big.test." && proto == "udp":
			resp.Truncated = true
		case name == "big.test.":
			for i := 1; i <= 60; i++ {
				a(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}).String())
			}
		default:
			resp.Rcode = mdns.RcodeNameError
		}
		rw.WriteMsg(resp)
	}
}

func (u *upstreamDNS) asked(q string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.seen, q)
}

var nslookupAddr = regexp.MustCompile(`(?m)^Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)\s*$`)

// nslookupWait makes busybox nslookup wait up to 30 s for an answer,
// asking again every 5 s, instead of its 5 s in two tries: on a loaded
// machine a query can go unanswered that long. An answer ends the wait at
// once, so a name that must not resolve is still judged by the first
// answer, and a resolver that never answers still fails the check.
var nslookupWait = []string{"-timeout=30", "-retry=6"}

// lookup runs busybox nslookup in a container and returns the IPv4
// addresses it printed for name (the server's own "Address:" line, with a
// port, is not one of them), sorted, and its whole output.
func lookup(t *testing.T, w *testworld.World, from, name string) ([]string, string) {
	t.Helper()
	args := append([]string{"exec", from, "nslookup", "-type=a"}, nslookupWait...)
	out, errOut, _ := w.Berth(t, append(args, name)...)
	var addrs []string
	if _, rest, ok := strings.Cut(out, "Name:"); ok {
		for _, m := range nslookupAddr.FindAllStringSubmatch(rest, -1) {
			addrs = append(addrs, m[1])
		}
	}
	slices.Sort(addrs)
	return addrs, out + errOut
}

func addrList(as ...netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// wantLookup checks that from resolves name to exactly want (nothing, when want is empty).
func wantLookup(t *testing.T, w *testworld.World, from, name string, want ...netip.Addr) {
	t.Helper()
	got, out := lookup(t, w, from, name)
	if !slices.Equal(got, addrList(want...)) {
		t.Errorf("%s resolves %q to %v, want %v\n%s", from, name, got, addrList(want...), out)
	}
}

func catFile(t *testing.T, w *testworld.World, ctr, path string) string {
	t.Helper()
	out, _, _ := w.Berth(t, "exec", ctr, "cat", path)
	return out
}

// TestDNSNames: on a user network, containers find each other by name,
// short ID, alias and hostname (a shared alias gives every address), ping by name,
// and their resolv.conf names 127.0.0.11; names do not cross networks and
// the default bridge has none; a container on two networks is found at its
// address on the network shared with the asker.
func TestDNSNames(t *testing.T) {
	w := testworld.New(t)
	_, conf := startUpstreamDNS(t, w)
	w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	w.MustBerth(t, "network", "create", "dnsnet")
	w.MustBerth(t, "network", "create", "other")
	runSleeper(t, w, "alpha", "--network", "dnsnet", "--network-alias", "db")
	runSleeper(t, w, "bravo", "--network", "dnsnet", "--network-alias", "db", "--network-alias", "Bravo-Alias", "--hostname", "bravo-host")
	runSleeper(t, w, "charlie", "--network", "other")
	runSleeper(t, w, "delta")
	runSleeper(t, w, "echo")
	a, b := networkIP(t, w, "alpha", "dnsnet"), networkIP(t, w, "bravo", "dnsnet")
	c := networkIP(t, w, "charlie", "other")

	// Docker 28's file: its header, the resolver, and where it came from.
	got := catFile(t, w, "alpha", "/etc/resolv.conf")
	if want := "# Generated by Docker Engine.\n# This file can be edited; Docker Engine will not make further changes once it\n# has been modified.\n\n" +
		"nameserver 127.0.0.11\noptions edns0 ndots:0\n\n# Based on host file: '" + conf + "' (internal resolver)\n"; !strings.HasPrefix(got, want) {
		t.Errorf("alpha's resolv.conf:\n%s\nwant it to start:\n%s", got, want)
	}
	wantLookup(t, w, "alpha", "bravo", b)
	wantLookup(t, w, "alpha", "BRAVO", b)
	wantLookup(t, w, "alpha", inspect(t, w, "{{.Id}}", "bravo")[:12], b)
	wantLookup(t, w, "alpha", "bravo-alias", b)
	wantLookup(t, w, "alpha", "bravo-host", b)
	wantLookup(t, w, "alpha", "db", a, b)
	wantLookup(t, w, "alpha", "bravo.dnsnet", b)
	if !retried(func() bool {
		_, _, code := w.Berth(t, "exec", "alpha", "ping", "-c", "1", "-W", "2", "bravo")
		return code == 0
	}) {
		t.Errorf("alpha cannot ping bravo by name")
	}
	out, _, _ := w.Berth(t, append(append([]string{"exec", "alpha", "nslookup"}, nslookupWait...), b.String())...)
	if !strings.Contains(out, "bravo.dnsnet") {
		t.Errorf("reverse lookup of %s from alpha:\n%s\nwant bravo.dnsnet", b, out)
	}

	// Scope: not across networks, nothing on the default bridge.
	wantLookup(t, w, "alpha", "charlie")
	wantLookup(t, w, "charlie", "alpha")
	wantLookup(t, w, "delta", "echo")
	wantLookup(t, w, "alpha", "delta")
	if got := catFile(t, w, "delta", "/etc/resolv.conf"); !strings.Contains(got, "nameserver "+testworld.ServerAddr.String()) || strings.Contains(got, "127.0.0") {
		t.Errorf("delta (default bridge) resolv.conf = %q, want the host's servers without loopback ones", got)
	}

	// Two networks: foxtrot is found at its address on the shared network.
	runSleeper(t, w, "foxtrot", "--network", "dnsnet")
	w.MustBerth(t, "network", "connect", "other", "foxtrot")
	wantLookup(t, w, "alpha", "foxtrot", networkIP(t, w, "foxtrot", "dnsnet"))
	wantLookup(t, w, "charlie", "foxtrot", networkIP(t, w, "foxtrot", "other"))
	wantLookup(t, w, "foxtrot", "charlie", c)
	wantLookup(t, w, "foxtrot", "alpha", a)

	// The resolver's redirect keeps connection tracking off in the
	// containers' namespaces (Docker's DNAT turns it on there): their
	// lookups and pings left no entry in them. The host tracks the pings.
	for _, name := range []string{"alpha", "foxtrot"} {
		if n := nstest.ConntrackCount(t, "/proc/"+itoa(containerPID(t, w, name))+"/ns/net"); n != 0 {
			t.Errorf("%d conntrack entries in %s's namespace after its lookups and pings, want 0", n, name)
		}
	}
	if n := nstest.ConntrackCount(t, w.HostNS()); n == 0 {
		t.Errorf("no conntrack entries in the host's namespace after the pings: the check above proves nothing")
	}
}

// TestDNSChangesAtOnce: answers follow rm, disconnect and connect as soon
// as the command returns (one query each, no retry loop); a container on
// the default bridge that connects to a user network gets the resolver.
func TestDNSChangesAtOnce(t *testing.T) {
	w := testworld.New(t)
	_, conf := startUpstreamDNS(t, w)
	w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	w.MustBerth(t, "network", "create", "dnsnet")
	runSleeper(t, w, "alpha", "--network", "dnsnet", "--network-alias", "db")
	runSleeper(t, w, "bravo", "--network", "dnsnet", "--network-alias", "db")
	runSleeper(t, w, "golf", "--network", "dnsnet")
	runSleeper(t, w, "hotel")
	a := networkIP(t, w, "alpha", "dnsnet")
	wantLookup(t, w, "alpha", "db", a, networkIP(t, w, "bravo", "dnsnet"))

	w.MustBerth(t, "rm", "-f", "bravo")
	wantLookup(t, w, "alpha", "bravo")
	wantLookup(t, w, "alpha", "db", a)

	w.MustBerth(t, "network", "disconnect", "dnsnet", "golf")
	wantLookup(t, w, "alpha", "golf")

	w.MustBerth(t, "network", "connect", "--alias", "late", "dnsnet", "hotel")
	h := networkIP(t, w, "hotel", "dnsnet")
	wantLookup(t, w, "alpha", "hotel", h)
	wantLookup(t, w, "alpha", "late", h)
	if got := catFile(t, w, "hotel", "/etc/resolv.conf"); !strings.Contains(got, "nameserver 127.0.0.11\n") {
		t.Errorf("hotel's resolv.conf after connecting to a user network = %q, want 127.0.0.11", got)
	}
	wantLookup(t, w, "hotel", "alpha", a)

	// A first connect whose join fails (its address is taken) leaves no
	// resolver and resolv.conf as it was (berth starts the resolver
	// beside the join and stops it again); the next connect gets both.
	w.MustBerth(t, "network", "create", "--subnet", "10.93.0.0/24", "ipnet")
	runSleeper(t, w, "lima", "--network", "ipnet", "--ip", "10.93.0.5")
	runSleeper(t, w, "kilo")
	before := catFile(t, w, "kilo", "/etc/resolv.conf")
	if _, errOut, code := w.Berth(t, "network", "connect", "--ip", "10.93.0.5", "ipnet", "kilo"); code == 0 || !strings.Contains(errOut, "10.93.0.5") {
		t.Errorf("connect with a taken address: exit %d, %q; want it refused, naming the address", code, errOut)
	}
	if got := catFile(t, w, "kilo", "/etc/resolv.conf"); got != before {
		t.Errorf("kilo's resolv.conf after a failed connect = %q, want it as it was: %q", got, before)
	}
	// Nothing answers at 127.0.0.11 (a resolver would say NXDOMAIN), and
	// no redirect is left in kilo's namespace.
	if out, errOut, code := w.Berth(t, "exec", "kilo", "nslookup", "-timeout=2", "-retry=1", "lima", "127.0.0.11"); code == 0 || strings.Contains(out+errOut, "NXDOMAIN") {
		t.Errorf("kilo has a resolver after a failed connect:\n%s%s", out, errOut)
	}
	if u, tc, ok := nftables.DNSRedirected(w.HostPath(sandboxKey(t, w, "kilo")), dns.Address); ok {
		t.Errorf("kilo's namespace keeps a DNS redirect (to %d, %d) after a failed connect", u, tc)
	}
	w.MustBerth(t, "network", "connect", "ipnet", "kilo")
	if got := catFile(t, w, "kilo", "/etc/resolv.conf"); !strings.Contains(got, "nameserver 127.0.0.11\n") {
		t.Errorf("kilo's resolv.conf after connecting = %q, want 127.0.0.11", got)
	}
	wantLookup(t, w, "kilo", "lima", netip.MustParseAddr("10.93.0.5"))

	// A resolv.conf edited in the container is the user's: a connect does
	// not rewrite it ("Docker Engine will not make further changes once
	// it has been modified").
	runSleeper(t, w, "juliet")
	w.MustBerth(t, "exec", "juliet", "sh", "-c", "echo 'nameserver 192.0.2.99' > /etc/resolv.conf")
	w.MustBerth(t, "network", "connect", "dnsnet", "juliet")
	if got := catFile(t, w, "juliet", "/etc/resolv.conf"); got != "nameserver 192.0.2.99\n" {
		t.Errorf("juliet's edited resolv.conf after a connect = %q, want it as edited", got)
	}

	// Through the docker CLI: run --network-alias reaches the resolver.
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "india", "--network", "dnsnet", "--network-alias", "dockalias",
		testworld.BusyboxImage, "sh", "-c", "while true; do sleep 3600; done"); code != 0 {
		t.Fatalf("docker run: exit %d: %s", code, errOut)
	}
	wantLookup(t, w, "alpha", "dockalias", networkIP(t, w, "india", "dnsnet"))
}

// TestDNSForwarding: other names go to the host's upstream (the loopback
// one in the daemon's resolv.conf is skipped), NXDOMAIN comes back as
// such, a truncated upstream answer is asked again over TCP, and a
// container only on an --internal network gets SERVFAIL at once while its
// peers still resolve.
func TestDNSForwarding(t *testing.T) {
	w := testworld.New(t)
	up, conf := startUpstreamDNS(t, w)
	w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	w.MustBerth(t, "network", "create", "dnsnet")
	w.MustBerth(t, "network", "create", "--internal", "sealed")
	runSleeper(t, w, "alpha", "--network", "dnsnet")
	runSleeper(t, w, "juliet", "--network", "sealed")
	runSleeper(t, w, "kilo", "--network", "sealed")

	wantLookup(t, w, "alpha", "example.test", testworld.ServerAddr)
	if !up.asked("udp example.test.") {
		t.Errorf("the upstream never saw example.test over UDP")
	}
	_, out := lookup(t, w, "alpha", "nx.test")
	if !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("nslookup nx.test:\n%s\nwant NXDOMAIN", out)
	}
	lookup(t, w, "alpha", "big.test")
	if !up.asked("tcp big.test.") {
		t.Errorf("a truncated answer for big.test was not asked again over TCP")
	}

	wantLookup(t, w, "juliet", "kilo", networkIP(t, w, "kilo", "sealed"))
	_, out = lookup(t, w, "juliet", "sealed-only.test")
	if !strings.Contains(out, "SERVFAIL") {
		t.Errorf("nslookup sealed-only.test on an internal network:\n%s\nwant SERVFAIL (an answer, not a timeout)", out)
	}
	if up.asked("udp sealed-only.test.") || up.asked("tcp sealed-only.test.") {
		t.Errorf("a query from a container only on an internal network went upstream")
	}
}

// TestDNSAcrossRestart: lookups a container sends while the daemon
// restarts are answered once the new daemon serves (the stopping daemon
// left its resolver's sockets with the reaper, and the queries waited in
// them), over UDP and over TCP (a connection made while no daemon ran);
// then names, aliases and forwarded names resolve as before. After a
// daemon is killed, lookups are refused until the next one serves, which
// makes the resolvers anew.
func TestDNSAcrossRestart(t *testing.T) {
	w := testworld.New(t)
	_, conf := startUpstreamDNS(t, w)
	d := w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	w.MustBerth(t, "network", "create", "dnsnet")
	runSleeper(t, w, "alpha", "--network", "dnsnet")
	runSleeper(t, w, "bravo", "--network", "dnsnet", "--network-alias", "db")
	b := networkIP(t, w, "bravo", "dnsnet")
	wantLookup(t, w, "alpha", "db", b)
	key := w.HostPath(sandboxKey(t, w, "alpha")) // bound in the host's mount namespace
	dial := func(proto string) *mdns.Conn {
		var c net.Conn
		if err := sandbox.Do(key, func() (err error) {
			c, err = net.Dial(proto, "127.0.0.11:53")
			return err
		}); err != nil {
			t.Fatalf("dial %s 127.0.0.11:53 in alpha: %v", proto, err)
		}
		t.Cleanup(func() { c.Close() })
		return &mdns.Conn{Conn: c}
	}
	ask := func(c *mdns.Conn, id uint16) {
		q := new(mdns.Msg)
		q.SetQuestion("bravo.", mdns.TypeA)
		q.Id = id
		if err := c.WriteMsg(q); err != nil {
			t.Fatalf("send query %d: %v", id, err)
		}
	}
	answer := func(c *mdns.Conn, id uint16) (netip.Addr, error) {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			m, err := c.ReadMsg()
			if err != nil {
				return netip.Addr{}, err
			}
			if m.Id != id {
				continue
			}
			for _, rr := range m.Answer {
				if a, ok := rr.(*mdns.A); ok {
					addr, _ := netip.AddrFromSlice(a.A.To4())
					return addr, nil
				}
			}
			return netip.Addr{}, fmt.Errorf("answer without an address: %v", m)
		}
	}
	if c := dial("udp"); true {
		ask(c, 1)
		if got, err := answer(c, 1); err != nil || got != b {
			t.Fatalf("bravo before the restart = %v, %v; want %s", got, err, b)
		}
	}

	d.Stop()
	udp := dial("udp")
	ask(udp, 2)
	tcp := dial("tcp") // accepted by the kept socket's backlog
	ask(tcp, 3)
	d = w.Start(t, "--resolv-conf", conf)
	for _, q := range []struct {
		proto string
		c     *mdns.Conn
		id    uint16
	}{{"udp", udp, 2}, {"tcp", tcp, 3}} {
		if got, err := answer(q.c, q.id); err != nil || got != b {
			t.Errorf("bravo over %s, asked while no daemon ran = %v, %v; want %s", q.proto, got, err, b)
		}
	}
	wantLookup(t, w, "alpha", "bravo", b)
	wantLookup(t, w, "alpha", "db", b)
	wantLookup(t, w, "alpha", "example.test", testworld.ServerAddr)

	// Killed, a daemon leaves nothing: a lookup is refused at once.
	d.Kill()
	udp = dial("udp")
	ask(udp, 4)
	if _, err := answer(udp, 4); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a lookup while a killed daemon is gone: %v, want connection refused", err)
	}
	w.Start(t, "--resolv-conf", conf)
	wantLookup(t, w, "alpha", "bravo", b)
	wantLookup(t, w, "alpha", "db", b)
}

// TestHostResolvConfReadAtEachStart: a host resolv.conf rewritten while
// the daemon runs (a DHCP lease, a VPN) is what the next container gets,
// as with Docker.
func TestHostResolvConfReadAtEachStart(t *testing.T) {
	w := testworld.New(t)
	conf := filepath.Join(w.Dir, "host-resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	if got := mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver 192.0.2.53\n") {
		t.Fatalf("resolv.conf before the change:\n%s", got)
	}
	if err := os.WriteFile(conf, []byte("search corp.example\nnameserver 192.0.2.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "cat", "/etc/resolv.conf")
	if !strings.Contains(got, "nameserver 192.0.2.99\n") || strings.Contains(got, "192.0.2.53") || !strings.Contains(got, "search corp.example\n") {
		t.Errorf("resolv.conf after the host's changed:\n%s", got)
	}
}

// TestHostResolvConfFollowedByRunningContainers: a host resolv.conf
// rewritten while containers run (a VPN, a new lease) moves their
// resolvers to the new servers at once; Docker's keep forwarding to the
// old ones until the container is made again (moby#25452); its
// resolv.conf follows too, unless it was edited in the container. A
// container with --dns of its own keeps its own.
func TestHostResolvConfFollowedByRunningContainers(t *testing.T) {
	w := testworld.New(t)
	first := serveUpstreamDNS(t, w.HostNS(), netip.MustParseAddrPort("127.0.0.53:53"))
	second := serveUpstreamDNS(t, w.OutsideNS, netip.AddrPortFrom(testworld.ServerAddr, 53))
	conf := filepath.Join(w.Dir, "host-resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	w.MustBerth(t, "network", "create", "follow")
	runSleeper(t, w, "rover", "--network", "follow")
	runSleeper(t, w, "pinned", "--network", "follow", "--dns", "127.0.0.53")
	// rider shares pinned's namespace and files: pinned's servers stay
	// pinned's, whatever follows the host (it once rewrote them).
	runSleeper(t, w, "rider", "--network", "container:pinned")
	pinnedConf := catFile(t, w, "pinned", "/etc/resolv.conf")
	runSleeper(t, w, "editor", "--network", "follow")
	runSleeper(t, w, "legacy") // the default bridge: no resolver, the host's servers in its file
	if _, errOut, code := w.Berth(t, "exec", "editor", "sh", "-c", "echo 'options timeout:2' >> /etc/resolv.conf"); code != 0 {
		t.Fatalf("edit editor's resolv.conf: %s", errOut)
	}
	editedBefore := catFile(t, w, "editor", "/etc/resolv.conf")
	wantLookup(t, w, "rover", "example.test", testworld.ServerAddr)
	if !first.asked("udp example.test.") {
		t.Fatalf("the first server was not asked")
	}
	// Replaced by a rename, as editors and resolvconf do.
	tmp := conf + ".new"
	if err := os.WriteFile(tmp, []byte("search corp.example\nnameserver "+testworld.ServerAddr.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, conf); err != nil {
		t.Fatal(err)
	}
	if !retried(func() bool {
		lookup(t, w, "rover", "moved.test")
		return second.asked("udp moved.test.")
	}) {
		t.Errorf("after the host's resolv.conf changed, rover's resolver never asked the new server")
	}
	// Its resolv.conf follows (search domains, the servers named in its
	// comments); one edited in the container stays the user's.
	if !retried(func() bool {
		return strings.Contains(catFile(t, w, "rover", "/etc/resolv.conf"), "search corp.example\n")
	}) {
		t.Errorf("rover's resolv.conf did not take the host's new search domain:\n%s", catFile(t, w, "rover", "/etc/resolv.conf"))
	}
	if got := catFile(t, w, "legacy", "/etc/resolv.conf"); !strings.Contains(got, "nameserver "+testworld.ServerAddr.String()+"\n") {
		t.Errorf("a default-bridge container's resolv.conf did not take the host's new server:\n%s", got)
	}
	if got := catFile(t, w, "editor", "/etc/resolv.conf"); got != editedBefore {
		t.Errorf("an edited resolv.conf was rewritten:\n%s\nwas:\n%s", got, editedBefore)
	}
	// Once moved, it asks the old server no more.
	lookup(t, w, "rover", "after.test")
	if first.asked("udp after.test.") || !second.asked("udp after.test.") {
		t.Errorf("after the move rover's resolver asked the old server (%v) or not the new one (%v)", first.asked("udp after.test."), second.asked("udp after.test."))
	}
	// pinned's own --dns: the first server still, from its namespace,
	// where nothing listens on 127.0.0.53: a lookup fails, nothing goes
	// to the host's servers.
	lookup(t, w, "pinned", "pinned.test")
	if second.asked("udp pinned.test.") {
		t.Errorf("a container with --dns of its own was moved to the host's new server")
	}

	// Changed while no daemon runs: the next one's resolvers take the
	// new file, and so do the containers' files, which agree with them
	// (a resolver that had taken the host's ndots while the file still
	// said ndots:0 answered single-label names itself, never forwarding
	// them). An edited file stays the user's still.
	d.Stop()
	if err := os.WriteFile(conf, []byte("search down.example\nnameserver "+testworld.ServerAddr.String()+"\noptions ndots:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Start(t, "--resolv-conf", conf)
	if got := catFile(t, w, "rover", "/etc/resolv.conf"); !strings.Contains(got, "search down.example\n") || !strings.Contains(got, "ndots:2") {
		t.Errorf("rover's resolv.conf after a restart over a changed host file:\n%s", got)
	}
	if got := catFile(t, w, "legacy", "/etc/resolv.conf"); !strings.Contains(got, "search down.example\n") {
		t.Errorf("legacy's resolv.conf after a restart over a changed host file:\n%s", got)
	}
	if got := catFile(t, w, "editor", "/etc/resolv.conf"); got != editedBefore {
		t.Errorf("an edited resolv.conf was rewritten at a restart:\n%s\nwas:\n%s", got, editedBefore)
	}
	if got := catFile(t, w, "pinned", "/etc/resolv.conf"); got != pinnedConf {
		t.Errorf("pinned's resolv.conf (--dns, shared by rider) was rewritten:\n%s\nwas:\n%s", got, pinnedConf)
	}
}

// TestDNSHostLoopbackResolver: on a host whose only resolver is on its own
// loopback (systemd-resolved's 127.0.0.53, a local dnsmasq), containers on
// a user network still resolve outside names: the resolver asks it from the
// host's namespace, as Docker's does (HostLoopback); berth used to drop it
// and fall back to 8.8.8.8. A host-network container gets the host's file
// as it is. With ndots set, a single-label name the resolver does not know
// is not forwarded (an empty answer), as Docker's resolver does.
func TestDNSHostLoopbackResolver(t *testing.T) {
	w := testworld.New(t)
	up := serveUpstreamDNS(t, w.HostNS(), netip.MustParseAddrPort("127.0.0.53:53"))
	conf := filepath.Join(w.Dir, "host-resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.53\noptions edns0 trust-ad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Start(t, "--resolv-conf", conf)
	w.Busybox(t)
	w.MustBerth(t, "network", "create", "loopnet")
	runSleeper(t, w, "asker", "--network", "loopnet")
	wantLookup(t, w, "asker", "example.test", testworld.ServerAddr)
	if !up.asked("udp example.test.") {
		t.Errorf("the host's 127.0.0.53 was not asked")
	}
	if got, want := resolvBody(catFile(t, w, "asker", "/etc/resolv.conf")), "nameserver 127.0.0.11\noptions edns0 trust-ad ndots:0\n"; got != want {
		t.Errorf("asker's resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	// The host's file, with Docker's comments (libnetwork writes the host
	// network's too).
	got := mustDocker(t, w, "run", "--rm", "--network", "host", testworld.BusyboxImage, "cat", "/etc/resolv.conf")
	if resolvBody(got) != "nameserver 127.0.0.53\noptions edns0 trust-ad\n" || !strings.HasSuffix(got, "\n# Based on host file: '"+conf+"'\n# Overrides: []\n") {
		t.Errorf("a host-network container's resolv.conf = %q, want the host's", got)
	}

	runSleeper(t, w, "dotted", "--network", "loopnet", "--dns-option", "ndots:1")
	out, _, _ := w.Berth(t, append(append([]string{"exec", "dotted", "nslookup"}, nslookupWait...), "singlelabel")...)
	if up.asked("udp singlelabel.") || strings.Contains(out, "can't find") || !strings.Contains(out, "Non-authoritative answer") {
		t.Errorf("with ndots set, want an empty answer for a single-label name, not forwarded; upstream asked %v:\n%s", up.asked("udp singlelabel."), out)
	}
}

// TestDNSLeavesPort53Free: the resolver answers at 127.0.0.11:53 through a
// redirect, so a container on a user network can run its own DNS server
// (or anything) on port 53, as under Docker; before, the bind failed with
// "address already in use".
func TestDNSLeavesPort53Free(t *testing.T) {
	w, _ := startWorld(t)
	w.MustBerth(t, "network", "create", "net53")
	runSleeper(t, w, "peer", "--network", "net53")
	runSleeper(t, w, "server", "--network", "net53")
	// TCP from inside the container (busybox nc), UDP from here in its
	// namespace (busybox has no UDP server).
	out, errOut, code := w.Berth(t, "exec", "server", "sh", "-c", "timeout 2 nc -l -p 53; echo status=$?")
	if code != 0 || !strings.Contains(out, "status=143") {
		t.Errorf("nc -l -p 53 in a container on a user network: exit %d, %q %q; want it listening until the timeout", code, out, errOut)
	}
	err := sandbox.Do("/proc/"+itoa(containerPID(t, w, "server"))+"/ns/net", func() error {
		pc, err := net.ListenPacket("udp4", ":53")
		if err != nil {
			return err
		}
		return pc.Close()
	})
	if err != nil {
		t.Errorf("binding UDP port 53 in a container on a user network: %v", err)
	}
	wantLookup(t, w, "server", "peer", networkIP(t, w, "peer", "net53"))
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
