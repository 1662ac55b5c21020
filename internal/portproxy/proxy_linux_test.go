package portproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/nstest"
)

// boundV6 is a socket bound to [::1] on a free port, not listening, as
// the port allocator holds one; it is closed at the test's end.
func boundV6(t *testing.T, typ int) (int, uint16) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		nstest.Unavailable(t, fmt.Sprintf("no IPv6 socket here: %v", err))
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		nstest.Unavailable(t, fmt.Sprintf("no IPv6 loopback here: %v", err))
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, uint16(sa.(*unix.SockaddrInet6).Port)
}

// A TCP client of the IPv6 port talks to the IPv4 server through the
// proxy, both ways, with the end of its stream passed on; after Stop no
// new connection is served.
func TestTCP(t *testing.T) {
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // until the client's half close
				c.Write([]byte("got " + string(b)))
			}()
		}
	}()
	fd, port := boundV6(t, unix.SOCK_STREAM)
	p, err := Start(fd, "tcp", netip.MustParseAddrPort(srv.Addr().String()), Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.IPv6Loopback(), port).String()
	for i := range 3 {
		c, err := net.DialTimeout("tcp6", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hello"))
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "got hello" {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
	// A connection open across Stop is cut.
	c, err := net.DialTimeout("tcp6", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond)
	p.Stop()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("a connection open at Stop: %v, want it closed", err)
	}
}

// UDP datagrams from two clients reach the IPv4 server and its replies
// reach each client; after Stop nothing is answered.
func TestUDP(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	fd, port := boundV6(t, unix.SOCK_DGRAM)
	p, err := Start(fd, "udp", netip.MustParseAddrPort(srv.LocalAddr().String()), Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.IPv6Loopback(), port))
	ask := func(c *net.UDPConn, msg string) (string, error) {
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	for _, name := range []string{"a", "b"} {
		c, err := net.DialUDP("udp6", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 2 {
			if got, err := ask(c, name); err != nil || got != "echo "+name {
				t.Fatalf("client %s, datagram %d: %q, %v", name, i, got, err)
			}
		}
	}
	p.Stop()
	c, err := net.DialUDP("udp6", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := ask(c, "late"); err == nil {
		t.Errorf("answered after Stop: %q", got)
	}
}

// Stop returns at once while a connection's dial to the container hangs
// (a server whose accept queue is full drops the SYN), instead of after
// the dial's 10 s: the caller holds the port allocator's lock.
func TestStopEndsAHangingDial(t *testing.T) {
	old := dialTimeout
	dialTimeout = time.Hour
	t.Cleanup(func() { dialTimeout = old })
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil { // a backlog of one, never accepted
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(lfd)
	target := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
	for range 3 { // fill the accept queue
		c, err := net.DialTimeout("tcp4", target.String(), 200*time.Millisecond)
		if err == nil {
			defer c.Close()
		}
	}
	fd, port := boundV6(t, unix.SOCK_STREAM)
	p, err := Start(fd, "tcp", target, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond) // the proxy is dialling the full server
	stopped := make(chan struct{})
	go func() { p.Stop(); close(stopped) }()
	// Not a timing: the dial would time out after an hour; the bound only
	// tells a Stop that ended the dial from one that waits for it.
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("Stop waits for a hanging dial")
	}
}

// TestTCPToIPv6Target: a container with an IPv6 address is dialled on
// it (tcp6), as docker-proxy dials a dual-stack container's IPv6 address.
func TestTCPToIPv6Target(t *testing.T) {
	srv, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		nstest.Unavailable(t, fmt.Sprintf("no IPv6 loopback here: %v", err))
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("from " + c.LocalAddr().String()))
			c.Close()
		}
	}()
	fd, port := boundV6(t, unix.SOCK_STREAM)
	p, err := Start(fd, "tcp", netip.MustParseAddrPort(srv.Addr().String()), Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c, err := net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "from "+srv.Addr().String() {
		t.Errorf("through the proxy: %q, %v; want the IPv6 server's answer", got, err)
	}
}

func TestFamily(t *testing.T) {
	for _, tc := range []struct{ proto, target, want string }{
		{"tcp", "10.0.0.2:80", "tcp4"},
		{"udp", "10.0.0.2:53", "udp4"},
		{"tcp", "[fd00::2]:80", "tcp6"},
		{"udp", "[fd00::2]:53", "udp6"},
	} {
		if got := family(tc.proto, netip.MustParseAddrPort(tc.target)); got != tc.want {
			t.Errorf("family(%s, %s) = %s, want %s", tc.proto, tc.target, got, tc.want)
		}
	}
}

// backedFor is how long lineServer's flood waits on a write before it
// takes the path to the client for backed up: the proxy's write to the
// client that does not read is then blocked, with bytes in its pipe.
const backedFor = 300 * time.Millisecond

// lineServer stands for the container: it answers each line of a
// connection with "echo: LINE"; a line "flood" with bytes (byte i being
// i mod 251) until a write has waited backedFor, then sends how many it
// wrote on backed; and the end of the client's stream, once bye is
// closed, with "bye" and its own end.
func lineServer(t *testing.T, bye <-chan struct{}, backed chan<- int) netip.AddrPort {
	t.Helper()
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						<-bye
						fmt.Fprintln(c, "bye")
						return
					}
					if line == "flood\n" {
						chunk, total := make([]byte, 1<<20), 0
						for {
							for i := range chunk {
								chunk[i] = byte((total + i) % 251)
							}
							c.SetWriteDeadline(time.Now().Add(backedFor))
							n, err := c.Write(chunk)
							total += n
							if err != nil {
								c.SetWriteDeadline(time.Time{})
								backed <- total
								break
							}
						}
						continue
					}
					fmt.Fprintf(c, "echo: %s", line)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(srv.Addr().String())
}

// Detach hands the connections the proxy carries over, each with what
// had ended of it and the bytes it had read and not yet written, and a
// second proxy on the same socket carries them on (Resume) with no byte
// lost: a line sent while no proxy runs is answered; a client's end of
// stream passed on before the hand-over gets the container's answer and
// end after it; and a client that does not read while the container
// floods it (the proxy's write to it blocked, a pipe of bytes pending)
// gets every byte, in order, once it reads.
func TestDetachAndResume(t *testing.T) {
	fd, port := boundV6(t, unix.SOCK_STREAM)
	bye := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-bye:
		default:
			close(bye) // a test that failed early
		}
	})
	backed := make(chan int, 1)
	target := lineServer(t, bye, backed)
	p, err := Start(fd, "tcp", target, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.IPv6Loopback(), port).String()
	dial := func() (*net.TCPConn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp6", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c.(*net.TCPConn), bufio.NewReader(c)
	}
	say := func(c *net.TCPConn, r *bufio.Reader, line string) {
		t.Helper()
		fmt.Fprintln(c, line)
		if got, err := r.ReadString('\n'); err != nil || got != "echo: "+line+"\n" {
			t.Fatalf("%q: answer %q, %v", line, got, err)
		}
	}
	talk, talkR := dial()
	say(talk, talkR, "one")
	ended, endedR := dial()
	say(ended, endedR, "a")
	ended.CloseWrite() // the server answers after the hand-over (bye)
	deaf, _ := dial()
	fmt.Fprintln(deaf, "flood") // not read until after the hand-over
	var flooded int
	select {
	case flooded = <-backed:
	case <-time.After(30 * time.Second):
		t.Fatal("the flood never backed up")
	}
	handed := p.Detach()
	kept := handed.Conns
	if len(kept) != 3 || len(handed.Flows) != 0 {
		t.Fatalf("Detach handed over %d connections and %d flows, want 3 and none", len(kept), len(handed.Flows))
	}
	if n := countTrue(kept, func(k KeptConn) bool { return k.ClientDone && !k.BackendDone }); n != 1 {
		t.Errorf("%d connections handed over with only the client's stream ended, want 1: %+v", n, kept)
	}
	if n := countTrue(kept, func(k KeptConn) bool { return k.ToClient[0] >= 0 }); n != 1 {
		t.Errorf("%d connections handed over with bytes pending to the client, want 1 (the flooded one): %+v", n, kept)
	}
	fmt.Fprintln(talk, "two") // while no proxy reads
	q, err := Start(fd, "tcp", target, handed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	close(bye)
	if got, err := talkR.ReadString('\n'); err != nil || got != "echo: two\n" {
		t.Errorf("the line sent while handed over: %q, %v", got, err)
	}
	say(talk, talkR, "three")
	if got, err := io.ReadAll(endedR); err != nil || string(got) != "bye\n" {
		t.Errorf("the half-closed connection after the hand-over: %q, %v; want bye and the end", got, err)
	}
	buf := make([]byte, 1<<20)
	for got := 0; got < flooded; {
		n, err := deaf.Read(buf[:min(len(buf), flooded-got)])
		for i, b := range buf[:n] {
			if b != byte((got+i)%251) {
				t.Fatalf("the flooded connection's byte %d is %d, want %d", got+i, b, (got+i)%251)
			}
		}
		got += n
		if err != nil {
			t.Fatalf("the flooded connection delivered %d of %d bytes: %v", got, flooded, err)
		}
	}
	again, againR := dial()
	say(again, againR, "new")
}

func countTrue(ks []KeptConn, f func(KeptConn) bool) int {
	n := 0
	for _, k := range ks {
		if f(k) {
			n++
		}
	}
	return n
}

// udpServer answers on an IPv4 loopback UDP socket with serve's loop.
func udpServer(t *testing.T, serve func(srv *net.UDPConn)) netip.AddrPort {
	t.Helper()
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go serve(srv)
	return netip.MustParseAddrPort(srv.LocalAddr().String())
}

// TestUDPClientsBeyondTheBound: with more clients than a port's flows, a
// new one takes the place of the flow idle longest, so every client is
// answered (they were dropped beyond the bound; docker-proxy has none).
func TestUDPClientsBeyondTheBound(t *testing.T) {
	old := maxUDPFlows
	maxUDPFlows = 8
	t.Cleanup(func() { maxUDPFlows = old })
	target := udpServer(t, func(srv *net.UDPConn) {
		b := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(b[:n], from)
		}
	})
	fd, port := boundV6(t, unix.SOCK_DGRAM)
	p, err := Start(fd, "udp", target, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for i := range 20 {
		c, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.IPv6Loopback(), port)))
		if err != nil {
			t.Fatal(err)
		}
		answered := false
		b := make([]byte, 64)
		for try := 0; try < 3 && !answered; try++ {
			c.Write([]byte{byte(i)})
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err := c.Read(b)
			answered = err == nil
		}
		c.Close()
		if !answered {
			t.Errorf("client %d (of 20, over a bound of 8 flows) got no answer", i)
		}
	}
}

// TestUDPFlowKeptByReplies: a client that asks once and then only
// receives (a subscription, a stream) keeps its flow while the container
// sends, as docker-proxy's read deadline moves with each reply; it was
// cut off a flow timeout after the client's datagram.
func TestUDPFlowKeptByReplies(t *testing.T) {
	// Replies 40 times per flow timeout: only a stall of the whole
	// timeout (2 s) could end a flow that the replies keep.
	old := UDPFlowTimeout
	UDPFlowTimeout = 2 * time.Second
	t.Cleanup(func() { UDPFlowTimeout = old })
	target := udpServer(t, func(srv *net.UDPConn) {
		b := make([]byte, 2048)
		_, from, err := srv.ReadFromUDPAddrPort(b)
		if err != nil {
			return
		}
		for i := 0; ; i++ { // a stream to the client, twenty a second
			if _, err := srv.WriteToUDPAddrPort([]byte{byte(i)}, from); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	fd, port := boundV6(t, unix.SOCK_DGRAM)
	p, err := Start(fd, "udp", target, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.IPv6Loopback(), port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("subscribe"))
	start := time.Now()
	b := make([]byte, 64)
	for time.Since(start) < 3*UDPFlowTimeout {
		c.SetReadDeadline(time.Now().Add(2 * UDPFlowTimeout))
		if _, err := c.Read(b); err != nil {
			t.Fatalf("replies stopped %v after the client's only datagram (flow timeout %v): %v", time.Since(start).Round(time.Millisecond), UDPFlowTimeout, err)
		}
	}
}

// refusingWriter fails its first refusals writes with ECONNREFUSED, as a
// connected UDP socket reports an earlier datagram's ICMP port-unreachable.
type refusingWriter struct {
	refusals int
	writes   [][]byte
}

func (w *refusingWriter) Write(b []byte) (int, error) {
	if w.refusals > 0 {
		w.refusals--
		return 0, &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("write", syscall.ECONNREFUSED)}
	}
	w.writes = append(w.writes, slices.Clone(b))
	return len(b), nil
}

// TestSendDatagramRetriesAStaleRefusal: a datagram whose write reports an
// earlier one's refusal is sent again; a socket that keeps refusing is
// given up on after three tries.
func TestSendDatagramRetriesAStaleRefusal(t *testing.T) {
	w := &refusingWriter{refusals: 1}
	if err := sendDatagram(w, []byte("hello")); err != nil || len(w.writes) != 1 || string(w.writes[0]) != "hello" {
		t.Errorf("after one stale refusal: %v, sent %q", err, w.writes)
	}
	w = &refusingWriter{refusals: 5}
	if err := sendDatagram(w, []byte("x")); !errors.Is(err, syscall.ECONNREFUSED) || len(w.writes) != 0 || w.refusals != 2 {
		t.Errorf("a socket that keeps refusing: %v, sent %q, %d refusals left (want 2: three tries)", err, w.writes, w.refusals)
	}
}

// TestDetachAndResumeUDP: Detach hands a port's UDP flows over and a
// second proxy on the same socket carries them on (Start with them): the
// container's reply sent while no proxy runs waits in the flow's socket
// and reaches the client after, a client's datagram that waited in the
// port's socket meanwhile goes through the client's own flow, and the
// container goes on seeing each client at the same source port (a new
// flow would have a new one: a stateful protocol's session lost).
func TestDetachAndResumeUDP(t *testing.T) {
	bye := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-bye:
		default:
			close(bye)
		}
	})
	// The server answers each datagram with the address it came from;
	// "late" is answered once bye is closed.
	target := udpServer(t, func(srv *net.UDPConn) {
		b := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			if string(b[:n]) == "late" {
				go func() {
					<-bye
					srv.WriteToUDPAddrPort([]byte("late "+from.String()), from)
				}()
				continue
			}
			srv.WriteToUDPAddrPort([]byte(from.String()), from)
		}
	})
	fd, port := boundV6(t, unix.SOCK_DGRAM)
	p, err := Start(fd, "udp", target, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := udpClient(t, port), udpClient(t, port)
	seenA, err := askUDP(a, "who")
	if err != nil {
		t.Fatal(err)
	}
	seenB, err := askUDP(b, "who")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("late")); err != nil { // answered while handed over
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server has it
	kept := p.Detach()
	if len(kept.Flows) != 2 || len(kept.Conns) != 0 {
		kept.Close()
		t.Fatalf("Detach handed over %d flows and %d connections, want 2 and none", len(kept.Flows), len(kept.Conns))
	}
	close(bye)                                        // the late answer goes to a's flow while no proxy runs
	if _, err := b.Write([]byte("who")); err != nil { // waits in the port's socket
		kept.Close()
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	q, err := Start(fd, "udp", target, kept, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	if got, err := readUDP(a); err != nil || got != "late "+seenA {
		t.Errorf("the answer sent while handed over: %q, %v; want %q", got, err, "late "+seenA)
	}
	if got, err := readUDP(b); err != nil || got != seenB {
		t.Errorf("b's datagram sent while handed over reached the container from %q, %v; want %q, its flow's port", got, err, seenB)
	}
	if got, err := askUDP(a, "who"); err != nil || got != seenA {
		t.Errorf("after the hand-over the container sees a at %q, %v; want %q, as before", got, err, seenA)
	}
}

// TestDetachKeepsBusyFlows: every flow is handed over, those the
// container is sending on at that moment too (closing the port's socket
// first made their writes fail, and they ended before Detach kept them).
func TestDetachKeepsBusyFlows(t *testing.T) {
	bye := make(chan struct{})
	defer close(bye)
	target := udpServer(t, func(srv *net.UDPConn) {
		b := make([]byte, 2048)
		for {
			_, from, err := srv.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			go func() { // a reply every millisecond
				for {
					select {
					case <-bye:
						return
					case <-time.After(time.Millisecond):
					}
					if _, err := srv.WriteToUDPAddrPort([]byte("tick"), from); err != nil {
						return
					}
				}
			}()
		}
	})
	fd, port := boundV6(t, unix.SOCK_DGRAM)
	p, err := Start(fd, "udp", target, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const clients = 100
	for range clients {
		if _, err := askUDP(udpClient(t, port), "stream"); err != nil {
			p.Stop()
			t.Fatal(err)
		}
	}
	kept := p.Detach()
	defer kept.Close()
	if len(kept.Flows) != clients {
		t.Errorf("Detach handed over %d of %d flows the container was sending on", len(kept.Flows), clients)
	}
}

// TestResumedFlowsGoToTheTarget: a flow or connection handed over to a
// proxy whose target is another address (the container came back
// elsewhere, and its old address may be another container's now) is not
// carried on to the old address: the flow's client gets a new flow to the
// target, the connection is cut.
func TestResumedFlowsGoToTheTarget(t *testing.T) {
	answer := func(name string) netip.AddrPort {
		return udpServer(t, func(srv *net.UDPConn) {
			b := make([]byte, 2048)
			for {
				_, from, err := srv.ReadFromUDPAddrPort(b)
				if err != nil {
					return
				}
				srv.WriteToUDPAddrPort([]byte(name), from)
			}
		})
	}
	oldT, newT := answer("old"), answer("new")
	fd, port := boundV6(t, unix.SOCK_DGRAM)
	p, err := Start(fd, "udp", oldT, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := udpClient(t, port)
	if got, err := askUDP(c, "who"); err != nil || got != "old" {
		p.Stop()
		t.Fatalf("before the hand-over: %q, %v", got, err)
	}
	kept := p.Detach()
	if len(kept.Flows) != 1 {
		kept.Close()
		t.Fatalf("Detach handed over %d flows, want 1", len(kept.Flows))
	}
	q, err := Start(fd, "udp", newT, kept, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	if got, err := askUDP(c, "who"); err != nil || got != "new" {
		t.Errorf("after a hand-over to a proxy for %s: %q, %v; want the new target's answer", newT, got, err)
	}

	tcpFd, tcpPort := boundV6(t, unix.SOCK_STREAM)
	bye := make(chan struct{})
	defer close(bye)
	oldTCP, newTCP := lineServer(t, bye, nil), lineServer(t, bye, nil)
	tp, err := Start(tcpFd, "tcp", oldTCP, Kept{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), tcpPort).String(), 5*time.Second)
	if err != nil {
		tp.Stop()
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	fmt.Fprintln(conn, "one")
	if got, err := r.ReadString('\n'); err != nil || got != "echo: one\n" {
		tp.Stop()
		t.Fatalf("before the hand-over: %q, %v", got, err)
	}
	tkept := tp.Detach()
	if len(tkept.Conns) != 1 {
		tkept.Close()
		t.Fatalf("Detach handed over %d connections, want 1", len(tkept.Conns))
	}
	tq, err := Start(tcpFd, "tcp", newTCP, tkept, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tq.Stop()
	fmt.Fprintln(conn, "two")
	if got, err := r.ReadString('\n'); err == nil {
		t.Errorf("a connection to %s carried on by a proxy for %s: answered %q, want it cut", oldTCP, newTCP, got)
	}
}

// udpClient is a UDP socket connected to [::1]:port, closed at the
// test's end.
func udpClient(t *testing.T, port uint16) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.IPv6Loopback(), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUDP reads one datagram, waiting up to 5 s.
func readUDP(c *net.UDPConn) (string, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 128)
	n, err := c.Read(b)
	return string(b[:n]), err
}

// askUDP sends msg and reads the answer.
func askUDP(c *net.UDPConn, msg string) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	return readUDP(c)
}
