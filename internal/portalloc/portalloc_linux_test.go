package portalloc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
	"golang.org/x/sys/unix"
)

var (
	anyIP   = netip.IPv4Unspecified()
	localIP = netip.MustParseAddr("127.0.0.1")
)

func newAllocator(t *testing.T) (*Allocator, string) {
	t.Helper()
	nstest.RequireRoot(t)
	ns := nstest.New(t)
	a := New(ns, nil)
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a, ns
}

func req(proto string, ip netip.Addr, start, end uint16) network.HostPortRequest {
	return network.HostPortRequest{Proto: proto, HostIP: ip, Start: start, End: end}
}

// listen tries what a host process would do in ns: listen (TCP) or bind
// (UDP) on addr with Go's defaults, which set SO_REUSEADDR.
func listen(t *testing.T, ns, proto, addr string) (close func(), err error) {
	t.Helper()
	if proto != "udp" {
		return listenTCP(t, ns, "tcp4", addr)
	}
	close = func() {}
	err = sandbox.Do(ns, func() error {
		c, err := net.ListenPacket("udp4", addr)
		if err == nil {
			close = func() { c.Close() }
		}
		return err
	})
	return close, err
}

func TestHeldPortsKeepOthersOut(t *testing.T) {
	a, ns := newAllocator(t)
	got, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 8080, 8080), req("udp", localIP, 5353, 5353)})
	if err != nil {
		t.Fatal(err)
	}
	want := []network.HostPort{{Proto: "tcp", HostIP: anyIP, Port: 8080}, {Proto: "udp", HostIP: localIP, Port: 5353}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Hold = %v, want %v", got, want)
	}
	for _, tc := range []struct{ proto, addr string }{
		{"tcp", "0.0.0.0:8080"}, {"tcp", "127.0.0.1:8080"}, {"udp", "127.0.0.1:5353"}, {"udp", "0.0.0.0:5353"},
	} {
		if c, err := listen(t, ns, tc.proto, tc.addr); err == nil {
			c()
			t.Errorf("a host process could bind %s %s while berth holds it", tc.proto, tc.addr)
		}
	}
	// The other protocol on the same port is free.
	c, err := listen(t, ns, "udp", "0.0.0.0:8080")
	if err != nil {
		t.Errorf("udp 8080 should be free: %v", err)
	}
	c()
	if err := a.Release(got); err != nil {
		t.Fatal(err)
	}
	c, err = listen(t, ns, "tcp", "0.0.0.0:8080")
	if err != nil {
		t.Errorf("after Release, listen on 8080: %v", err)
	}
	c()
	if err := a.Release(got); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestHoldConflicts(t *testing.T) {
	a, ns := newAllocator(t)
	if _, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 8080, 8080)}); err != nil {
		t.Fatal(err)
	}
	stop, err := listen(t, ns, "tcp", "127.0.0.1:9090")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cases := map[string]network.HostPortRequest{
		"same port again":             req("tcp", anyIP, 8080, 8080),
		"one address under any":       req("tcp", localIP, 8080, 8080),
		"host process on one address": req("tcp", anyIP, 9090, 9090),
		"host process, same address":  req("tcp", localIP, 9090, 9090),
	}
	for name, r := range cases {
		_, err := a.Hold([]network.HostPortRequest{r})
		if !errdefs.Is(err, errdefs.KindConflict) {
			t.Errorf("%s: Hold = %v, want a conflict", name, err)
		}
	}
	_, err = a.Hold([]network.HostPortRequest{req("tcp", anyIP, 8080, 8080)})
	if want := "Bind for 0.0.0.0:8080 failed: port is already allocated"; err == nil || err.Error() != want {
		t.Errorf("error %q, want Docker's %q", err, want)
	}
	if a.Held() != 1 {
		t.Errorf("held %d ports, want 1", a.Held())
	}
}

// TestHoldDockerWords: a port another mapping publishes, one a host
// process uses, an address that is not the host's and a range published
// whole are refused with Docker 28's words, by either way of binding.
func TestHoldDockerWords(t *testing.T) {
	modes(t, func(t *testing.T, a *Allocator, ns string) {
		if _, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 8080, 8080), req("tcp", anyIP, 8000, 8001), req("tcp", anyIP, 8000, 8001)}); err != nil {
			t.Fatal(err)
		}
		stop, err := listen(t, ns, "tcp", "0.0.0.0:8095")
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		for _, tc := range []struct {
			r    network.HostPortRequest
			want string
		}{
			{to(req("tcp", anyIP, 8080, 8080), 80), "Bind for 0.0.0.0:8080 failed: port is already allocated"},
			{to(req("tcp", localIP, 8080, 8080), 80), "failed to bind host port for 127.0.0.1:8080:172.17.0.3:80/tcp: address already in use"},
			{to(req("tcp", anyIP, 8095, 8095), 80), "failed to bind host port for 0.0.0.0:8095:172.17.0.3:80/tcp: address already in use"},
			{to(req("tcp", netip.MustParseAddr("10.9.9.9"), 8096, 8096), 80), "failed to bind host port for 10.9.9.9:8096:172.17.0.3:80/tcp: cannot assign requested address"},
			{to(req("tcp", netip.MustParseAddr("10.9.9.9"), 8080, 8080), 80), "failed to bind host port for 10.9.9.9:8080:172.17.0.3:80/tcp: cannot assign requested address"},
			{to(req("tcp", anyIP, 8000, 8001), 80), "all ports are allocated"},
			{to(req("tcp", anyIP, 8094, 8095), 80), ""}, // 8094 is free
		} {
			got, err := a.Hold([]network.HostPortRequest{tc.r})
			if tc.want == "" {
				if err != nil {
					t.Errorf("Hold %s: %v", mappingString(tc.r), err)
				}
				a.Release(got)
				continue
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("Hold %s = %v, want %q", mappingString(tc.r), err, tc.want)
			}
		}
		if a.Held() != 3 {
			t.Errorf("held %d ports, want 3", a.Held())
		}
	})
}

func TestHoldAllOrNothing(t *testing.T) {
	a, ns := newAllocator(t)
	if _, err := a.Hold([]network.HostPortRequest{req("udp", anyIP, 7000, 7000)}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 6000, 6000), req("udp", anyIP, 7000, 7000)})
	if !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("Hold = %v, want a conflict", err)
	}
	c, err := listen(t, ns, "tcp", "0.0.0.0:6000")
	if err != nil {
		t.Errorf("the failed Hold kept tcp 6000: %v", err)
	}
	c()
	if a.Held() != 1 {
		t.Errorf("held %d ports, want 1", a.Held())
	}
}

func TestHoldRangeAndEphemeral(t *testing.T) {
	a, ns := newAllocator(t)
	stop, err := listen(t, ns, "tcp", "0.0.0.0:8000")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	got, err := a.Hold([]network.HostPortRequest{
		req("tcp", anyIP, 8000, 8002), req("tcp", anyIP, 8000, 8002), req("tcp", anyIP, 0, 0), req("udp", anyIP, 0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Port != 8001 || got[1].Port != 8002 {
		t.Errorf("range ports %d, %d; want 8001, 8002", got[0].Port, got[1].Port)
	}
	lo, hi := localPortRange(t)
	for _, hp := range got[2:] {
		if hp.Port < lo || hp.Port > hi {
			t.Errorf("ephemeral %s port %d outside %d-%d", hp.Proto, hp.Port, lo, hi)
		}
	}
	_, err = a.Hold([]network.HostPortRequest{req("tcp", anyIP, 8000, 8002)})
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:8000-8002") {
		t.Errorf("full range: %v", err)
	}
}

// TestHoldEphemeralInOrder: ports without a number come from the
// namespace's ephemeral range in order, as moby's allocator gives them:
// after the last one given, past reserved ports, ports in use and ports
// held, wrapping at the end, so that a port let go is not given again at
// once; each protocol has its own order, and so has each range.
func TestHoldEphemeralInOrder(t *testing.T) {
	a, ns := newAllocator(t)
	err := sandbox.Do(ns, func() error {
		return errors.Join(
			os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40004"), 0o644),
			os.WriteFile("/proc/sys/net/ipv4/ip_local_reserved_ports", []byte("40002"), 0o644))
	})
	if err != nil {
		t.Fatal(err)
	}
	hold := func(r network.HostPortRequest) (uint16, error) {
		t.Helper()
		got, err := a.Hold([]network.HostPortRequest{to(r, 80)})
		if err != nil {
			return 0, err
		}
		return got[0].Port, nil
	}
	want := func(r network.HostPortRequest, port uint16) {
		t.Helper()
		if got, err := hold(r); err != nil || got != port {
			t.Fatalf("Hold %s = %d, %v; want %d", mappingString(r), got, err, port)
		}
	}
	eph := req("tcp", anyIP, 0, 0)
	want(eph, 40000)
	want(eph, 40001)
	stop, err := listen(t, ns, "tcp", "0.0.0.0:40003")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Release([]network.HostPort{{Proto: "tcp", HostIP: anyIP, Port: 40000}}); err != nil {
		t.Fatal(err)
	}
	want(eph, 40004) // not 40000, let go just now; 40002 reserved, 40003 in use
	want(eph, 40000) // wrapped
	want(req("udp", anyIP, 0, 0), 40000)
	if _, err := hold(eph); err == nil || err.Error() != "failed to bind host port for 0.0.0.0::172.17.0.3:80/tcp: address already in use" {
		t.Errorf("every port held or in use: %v", err)
	}
	stop()
	want(eph, 40003)
	if _, err := hold(eph); err == nil || err.Error() != "all ports are allocated" {
		t.Errorf("every port held: %v, want all ports are allocated", err)
	}
	// A range named in the request keeps an order of its own, and gets
	// reserved ports: the kernel reserves them from its own picks alone.
	want(req("tcp", localIP, 8000, 8002), 8000)
	if err := a.Release([]network.HostPort{{Proto: "tcp", HostIP: localIP, Port: 8000}}); err != nil {
		t.Fatal(err)
	}
	want(req("tcp", localIP, 8000, 8002), 8001)
	want(req("tcp", netip.MustParseAddr("127.0.0.2"), 39999, 40002), 39999)
	want(req("tcp", netip.MustParseAddr("127.0.0.2"), 39999, 40002), 40002)
}

func TestHoldBadAddress(t *testing.T) {
	a, _ := newAllocator(t)
	_, err := a.Hold([]network.HostPortRequest{req("tcp", netip.MustParseAddr("192.0.2.1"), 80, 80)})
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("address not on the host: %v, want invalid", err)
	}
	_, err = a.Hold([]network.HostPortRequest{req("sctp", anyIP, 80, 80)})
	if err == nil {
		t.Error("sctp accepted")
	}
	_, err = a.Hold([]network.HostPortRequest{req("tcp", netip.MustParseAddr("::ffff:127.0.0.1"), 80, 80)})
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("IPv4-mapped IPv6 address: %v, want invalid", err)
	}
}

// IPv6 ports are held beside the IPv4 ones of the same number (their
// sockets are IPV6_V6ONLY), keep other IPv6 sockets out, and are
// forwarded on request until released.
func TestHoldIPv6(t *testing.T) {
	a, ns := newAllocator(t)
	if !a.IPv6Listenable() {
		nstest.Unavailable(t, "no IPv6 in the test namespace")
	}
	v6 := netip.IPv6Unspecified()
	held, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	p := held[0].Port
	proxied := func(r network.HostPortRequest) network.HostPortRequest { r.Proxied = true; return r }
	if _, err := a.Hold([]network.HostPortRequest{proxied(req("tcp", v6, p, p)), proxied(req("udp", v6, p, p))}); err != nil {
		t.Fatalf("[::]:%d beside 0.0.0.0:%d: %v", p, p, err)
	}
	if _, err := a.Hold([]network.HostPortRequest{req("tcp", netip.IPv6Loopback(), p, p)}); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("[::1]:%d while [::]:%d is held: %v, want a conflict", p, p, err)
	}
	err = sandbox.Do(ns, func() error {
		l, err := net.Listen("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String())
		if err == nil {
			l.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("a host process could listen on [::1]:%d while it is held", p)
	}
	hp := network.HostPort{Proto: "tcp", HostIP: v6, Port: p}
	if err := a.Forward(network.HostPort{Proto: "tcp", HostIP: v6, Port: p + 1}, netip.MustParseAddrPort("127.0.0.1:80")); err == nil {
		t.Error("a port not held was forwarded")
	}
	if err := a.Forward(hp, netip.MustParseAddrPort("127.0.0.1:80")); err != nil {
		t.Fatal(err)
	}
	if err := a.Release([]network.HostPort{hp}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Hold([]network.HostPortRequest{req("tcp", v6, p, p)}); err != nil {
		t.Errorf("[::]:%d after its release and its forwarding's end: %v", p, err)
	}
}

func localPortRange(t *testing.T) (uint16, uint16) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return uint16(lo), uint16(hi)
}

// An IPv6 port held for no proxy (the userland proxy off, or a
// dual-stack container's port nftables DNATs) keeps others out as an
// IPv4 one does, and refuses a connection at once instead of taking its
// handshake into a backlog no one accepts from; a proxied one listens.
func TestHoldIPv6NotProxied(t *testing.T) {
	a, ns := newAllocator(t)
	if !a.IPv6Listenable() {
		nstest.Unavailable(t, "no IPv6 in the test namespace")
	}
	held, err := a.Hold([]network.HostPortRequest{req("tcp", netip.IPv6Unspecified(), 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	p := held[0].Port
	dial := func() error {
		return sandbox.Do(ns, func() error {
			c, err := net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String(), 2*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dial(); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("connect to [::1]:%d held for no proxy: %v, want connection refused", p, err)
	}
	if closeIt, err := listen6(t, ns, p); err == nil {
		closeIt()
		t.Errorf("a host process could listen on [::1]:%d while it is held", p)
	}
	if err := a.Release(held); err != nil {
		t.Fatal(err)
	}
	r := req("tcp", netip.IPv6Unspecified(), p, p)
	r.Proxied = true
	if _, err := a.Hold([]network.HostPortRequest{r}); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Errorf("connect to [::1]:%d held for the proxy: %v, want its handshake taken into the backlog", p, err)
	}
}

// A port the proxy served until a restart with it off is held again at
// once, for no proxy, though the proxy's connections left TIME_WAIT
// sockets on it; and no host process can take it then.
func TestHoldIPv6AfterProxy(t *testing.T) {
	a, ns := newAllocator(t)
	if !a.IPv6Listenable() {
		nstest.Unavailable(t, "no IPv6 in the test namespace")
	}
	var backend net.Listener
	if err := sandbox.Do(ns, func() error {
		var err error
		backend, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() { // the backend closes first: the proxy's accepted end waits in TIME_WAIT
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	r := req("tcp", netip.IPv6Unspecified(), 0, 0)
	r.Proxied = true
	held, err := a.Hold([]network.HostPortRequest{r})
	if err != nil {
		t.Fatal(err)
	}
	p := held[0].Port
	if err := a.Forward(held[0], netip.MustParseAddrPort(backend.Addr().String())); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Do(ns, func() error {
		c, err := net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), p).String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1)) // EOF once the proxy has closed its end
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(held); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Hold([]network.HostPortRequest{req("tcp", netip.IPv6Unspecified(), p, p)}); err != nil {
		t.Fatalf("[::]:%d for no proxy after the proxy served it: %v", p, err)
	}
	if closeIt, err := listen6(t, ns, p); err == nil {
		closeIt()
		t.Errorf("a host process could listen on [::1]:%d while it is held", p)
	}
}

// listen6 listens on [::1]:port in ns, as a host process would.
func listen6(t *testing.T, ns string, port uint16) (func(), error) {
	t.Helper()
	var l net.Listener
	err := sandbox.Do(ns, func() error {
		var err error
		l, err = net.Listen("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return func() { l.Close() }, nil
}

// TestHoldPortInTimeWait: a TCP port a host service served and let go
// keeps TIME_WAIT sockets for a minute; Docker's sockets (SO_REUSEADDR)
// publish it at once, and so does berth, batched or not, on IPv4 and
// IPv6; a listener on the port still refuses it, and once held no host
// process can listen there. Without SO_REUSEADDR the bind was refused.
func TestHoldPortInTimeWait(t *testing.T) {
	modes(t, func(t *testing.T, a *Allocator, ns string) {
		port := uint16(20300)
		if a.syscallsOnly {
			port++
		}
		for _, ip := range []netip.Addr{anyIP, netip.IPv6Unspecified()} {
			family := map[bool]string{false: "tcp4", true: "tcp6"}[ip.Is6()]
			loop := map[bool]string{false: "127.0.0.1", true: "[::1]"}[ip.Is6()]
			// A served connection the server closes first: TIME_WAIT on
			// the server's side of the port.
			if err := sandbox.Do(ns, func() error {
				l, err := net.Listen(family, net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
				if err != nil {
					return err
				}
				defer l.Close()
				c, err := net.Dial(family, loop+":"+strconv.Itoa(int(port)))
				if err != nil {
					return err
				}
				defer c.Close()
				s, err := l.Accept()
				if err != nil {
					return err
				}
				s.Close()
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) { // the FIN
					return fmt.Errorf("read the server's close: %v", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Hold([]network.HostPortRequest{req("tcp", ip, port, port)}); err != nil {
				t.Fatalf("Hold of %s port %d with TIME_WAIT sockets: %v", family, port, err)
			}
			if c, err := listenTCP(t, ns, family, net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))); err == nil {
				c()
				t.Errorf("a host process could listen on %s port %d berth holds", family, port)
			}
			if err := a.Release([]network.HostPort{{Proto: "tcp", HostIP: ip, Port: port}}); err != nil {
				t.Fatal(err)
			}
		}
		// A listener still keeps berth off.
		c, err := listen(t, ns, "tcp", "0.0.0.0:"+strconv.Itoa(int(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c()
		if _, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, port, port)}); err == nil {
			t.Errorf("Hold of a port a host process listens on succeeded")
		}
	})
}

// listenTCP is listen for TCP in family tcp4 or tcp6.
func listenTCP(t *testing.T, ns, family, addr string) (close func(), err error) {
	t.Helper()
	close = func() {}
	err = sandbox.Do(ns, func() error {
		l, err := net.Listen(family, addr)
		if err == nil {
			close = func() { l.Close() }
		}
		return err
	})
	return close, err
}

// TestForwardRacingRelease: a Forward of a port while its Release stops
// the port's proxy finds the port no longer held; it found it held
// without a proxy and started one, which kept the released port
// listening and forwarding (seen on the first rounds).
func TestForwardRacingRelease(t *testing.T) {
	a, ns := newAllocator(t)
	var backend net.Listener
	if err := sandbox.Do(ns, func() error {
		var err error
		backend, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	target := netip.MustParseAddrPort(backend.Addr().String())
	r := req("tcp", netip.IPv6Unspecified(), 19000, 19000)
	r.Proxied = true
	for round := range 100 {
		held, err := a.Hold([]network.HostPortRequest{r})
		if err != nil {
			t.Fatalf("round %d: Hold: %v", round, err)
		}
		if err := a.Forward(held[0], target); err != nil {
			t.Fatal(err)
		}
		released := make(chan struct{})
		go func() { a.Release(held); close(released) }()
		for forwarding := true; forwarding; {
			select {
			case <-released:
				forwarding = false
			default:
				a.Forward(held[0], target)
			}
		}
		err = sandbox.Do(ns, func() error {
			c, err := net.DialTimeout("tcp6", "[::1]:19000", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			t.Fatalf("round %d: the released port still accepts (%d proxies left)", round, len(a.proxies))
		}
	}
}
