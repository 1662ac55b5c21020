package portalloc

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
	"golang.org/x/sys/unix"
)

// echoServer listens on 127.0.0.1 and answers each line of a connection
// with "echo: LINE"; it stands for the container. In the test's own
// namespace, where the proxy dials from (the daemon's, in berth).
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "echo: %s", line)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// dial6 connects to [::1]:port in ns.
func dial6(ns string, port uint16) (net.Conn, error) {
	var c net.Conn
	err := sandbox.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String(), 2*time.Second)
		return err
	})
	return c, err
}

// A stopping daemon's Detach hands the held ports' sockets over without
// closing them: the ports stay held, and a proxied one goes on listening,
// so a connection made meanwhile waits in its backlog and is carried once
// the next Allocator adopts the socket and forwards the port again.
// Sockets no Hold takes are closed by DropAdopted, and a socket that
// cannot be what the request needs is replaced by a new bind.
func TestDetachedPortsAdopted(t *testing.T) {
	a, ns := newAllocator(t)
	if !a.IPv6Listenable() {
		nstest.Unavailable(t, "no IPv6 in the test namespace")
	}
	backend := echoServer(t)
	v6 := netip.IPv6Unspecified()
	proxied := func(r network.HostPortRequest) network.HostPortRequest { r.Proxied = true; return r }
	held, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	p := held[0].Port
	reqs := []network.HostPortRequest{
		req("tcp", anyIP, p, p), req("udp", anyIP, p, p), proxied(req("tcp", v6, p, p)),
		req("tcp", anyIP, p+1, p+1), // not held again: dropped
		proxied(req("tcp", v6, p+2, p+2)),
	}
	if err := a.Release(held); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Hold(reqs); err != nil {
		t.Fatal(err)
	}
	proxy := network.HostPort{Proto: "tcp", HostIP: v6, Port: p}
	if err := a.Forward(proxy, backend); err != nil {
		t.Fatal(err)
	}
	// talk sends a line on c and reads its answer (a line is short, so
	// the reader buffers nothing beyond it).
	talk := func(c net.Conn, line string) (string, error) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintln(c, line); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	live, err := dial6(ns, p) // open across the hand-over
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if got, err := talk(live, "before"); err != nil || got != "echo: before\n" {
		t.Fatalf("through the proxy before Detach: %q, %v", got, err)
	}

	fds, conns := a.Detach()
	if len(fds) != len(reqs) || a.Held() != 0 {
		t.Fatalf("Detach handed over %d sockets and left %d held, want %d and 0", len(fds), a.Held(), len(reqs))
	}
	if len(conns) != 1 || len(conns[proxy].Conns) != 1 || len(conns[proxy].Flows) != 0 {
		t.Fatalf("Detach handed over connections %v, want the one open to %s", conns, proxy)
	}
	for _, proto := range []string{"tcp", "udp"} {
		if c, err := listen(t, ns, proto, fmt.Sprintf("0.0.0.0:%d", p)); err == nil {
			c()
			t.Errorf("a host process could bind %s port %d while its socket was handed over", proto, p)
		}
	}
	waiting, err := dial6(ns, p) // into the backlog
	if err != nil {
		t.Fatalf("a connection to the proxied port while handed over: %v, want it to wait", err)
	}
	defer waiting.Close()
	waiting.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(waiting, "meanwhile"); err != nil {
		t.Fatal(err)
	}

	// A socket is known by its inode: a descriptor's number can come
	// back for another socket once closed.
	inode := func(fd int) uint64 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatalf("fstat %d: %v", fd, err)
		}
		return st.Ino
	}
	inodes := map[network.HostPort]uint64{}
	for hp, fd := range fds {
		inodes[hp] = inode(fd)
	}
	b := New(ns, nil)
	t.Cleanup(func() { b.Close() })
	b.Adopt(fds, conns)
	// [::]:p+2 is asked for without the proxy now: its listening socket
	// would take connections no one accepts, so it is bound anew.
	again := []network.HostPortRequest{reqs[0], reqs[1], reqs[2], req("tcp", v6, p+2, p+2)}
	got, err := b.Hold(again)
	if err != nil {
		t.Fatal(err)
	}
	for i, hp := range got[:3] {
		if inode(b.held[hp]) != inodes[hp] {
			t.Errorf("request %d (%s) got a new socket, want the adopted one", i, hp)
		}
	}
	if fd := b.held[got[3]]; inode(fd) == inodes[got[3]] {
		t.Errorf("%s kept its listening socket for a port no longer proxied", got[3])
	} else if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 0 {
		t.Errorf("%s listens (%d, %v), want a socket that refuses", got[3], on, err)
	}
	if err := b.Forward(proxy, backend); err != nil {
		t.Fatal(err)
	}
	if n := b.DropAdopted(); n != 1 {
		t.Errorf("DropAdopted closed %d sockets, want 1 (port %d)", n, p+1)
	}
	if c, err := listen(t, ns, "tcp", fmt.Sprintf("0.0.0.0:%d", p+1)); err != nil {
		t.Errorf("port %d after DropAdopted: %v, want it free", p+1, err)
	} else {
		c()
	}
	if got, err := bufio.NewReader(waiting).ReadString('\n'); err != nil || got != "echo: meanwhile\n" {
		t.Errorf("the connection made while handed over: %q, %v; want it carried", got, err)
	}
	if got, err := talk(live, "across"); err != nil || got != "echo: across\n" {
		t.Errorf("the connection open across the hand-over: %q, %v; want it carried on", got, err)
	}
	c, err := dial6(ns, p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := talk(c, "after"); err != nil || got != "echo: after\n" {
		t.Errorf("through the proxy after adoption: %q, %v", got, err)
	}
	// UDP p drops datagrams again (its socket was never proxied, and is
	// checked as bindPort's would be).
	checkDropsDatagrams(t, ns, b.held[got[1]], fmt.Sprintf("127.0.0.1:%d", p))
	// Once released, the ports are free, and [::]:p refuses.
	if err := b.Release(got); err != nil {
		t.Fatal(err)
	}
	if _, err := dial6(ns, p); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("[::1]:%d after release: %v, want refused", p, err)
	}
}

// A proxied UDP port's socket queues datagrams while handed over (its
// drop filter went with the proxy); adopted for a port no longer proxied,
// it drops them again, and what it had queued is gone too.
func TestAdoptedUDPDrained(t *testing.T) {
	a, ns := newAllocator(t)
	if !a.IPv6Listenable() {
		nstest.Unavailable(t, "no IPv6 in the test namespace")
	}
	r := req("udp", netip.IPv6Unspecified(), 0, 0)
	r.Proxied = true
	held, err := a.Hold([]network.HostPortRequest{r})
	if err != nil {
		t.Fatal(err)
	}
	hp := held[0]
	if err := a.Forward(hp, netip.MustParseAddrPort("127.0.0.1:9")); err != nil {
		t.Fatal(err)
	}
	fds, _ := a.Detach()
	fd := fds[hp]
	if err := sandbox.Do(ns, func() error {
		c, err := net.Dial("udp6", netip.AddrPortFrom(netip.IPv6Loopback(), hp.Port).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("while handed over"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.IoctlGetInt(fd, unix.SIOCINQ); err != nil || n == 0 {
		t.Fatalf("%d bytes queued on the handed-over socket (%v), want the datagram", n, err)
	}
	b := New(ns, nil)
	t.Cleanup(func() { b.Close() })
	b.Adopt(fds, nil)
	if _, err := b.Hold([]network.HostPortRequest{req("udp", netip.IPv6Unspecified(), hp.Port, hp.Port)}); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.IoctlGetInt(b.held[hp], unix.SIOCINQ); err != nil || n != 0 {
		t.Errorf("%d bytes still queued on the adopted socket (%v), want none", n, err)
	}
}
