package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/testworld"
	"golang.org/x/sys/unix"
)

// TestPortsAcrossRestart: a daemon stopped with SIGTERM leaves its
// published ports' sockets with the reaper. While no daemon runs, no host
// process can take a published port, and the IPv6 side of a port the
// daemon proxies to an IPv4 container takes connections and datagrams,
// which the next daemon carries to the container, where it used to
// refuse them; and a connection the proxy carried goes on across the
// restart, where it used to be cut (Docker's docker-proxy processes die
// with dockerd, live-restore or not: its ports refuse and its connections
// are cut). A connection blocked on a client that does not read goes
// on too, its pending bytes carried in a pipe, none lost. So does a UDP
// client's flow: the container's answer sent while no daemon runs
// reaches the client after, and the container goes on seeing the client
// at the same source port (a stateful protocol's session kept). A killed daemon
// leaves nothing: the proxied port refuses until the next one holds it.
func TestPortsAcrossRestart(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "web", "tcp:80,udp:53,echo:81,udpport:55", "-p", "8090:80", "-p", "8091:53/udp", "-p", "8092:81", "-p", "8093:55/udp")
	w.reach(t, "host", "tcp", "[::1]:8090", "")
	w.reach(t, "host", "udp", "[::1]:8091", "")
	host := w.HostNetns()
	inHost := func(f func() error) error { return sandbox.Do(host, f) }
	dial := func(proto, addr string) (net.Conn, error) {
		var c net.Conn
		err := inHost(func() (err error) {
			c, err = net.DialTimeout(proto, addr, 2*time.Second)
			return err
		})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	// answer reads the peer's answer, the source address it saw: the
	// proxy's, the bridge's gateway.
	answer := func(c net.Conn) (string, error) {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		line = strings.TrimSpace(line)
		if err == nil || line != "" {
			if _, perr := netip.ParseAddr(line); perr != nil {
				return line, fmt.Errorf("answer %q is no address", line)
			}
			return line, nil
		}
		return "", err
	}

	live, err := dial("tcp6", "[::1]:8092")
	if err != nil {
		t.Fatal(err)
	}
	liveR := bufio.NewReader(live)
	say := func(line string) (string, error) {
		live.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintln(live, line); err != nil {
			return "", err
		}
		return liveR.ReadString('\n')
	}
	if got, err := say("before"); err != nil || got != "echo: before\n" {
		t.Fatalf("a connection through the proxy: %q, %v", got, err)
	}
	// A UDP flow through the proxy: the source the container sees, and
	// an answer it sends while no daemon runs (on a datagram the test
	// sends straight to it over the bridge then).
	flow, err := dial("udp6", "[::1]:8093")
	if err != nil {
		t.Fatal(err)
	}
	flowSay := func(msg string) (string, error) {
		if msg != "" {
			if _, err := flow.Write([]byte(msg)); err != nil {
				return "", err
			}
		}
		flow.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 200)
		n, err := flow.Read(b)
		return strings.TrimSpace(string(b[:n])), err
	}
	seen, err := flowSay("who")
	if err != nil {
		t.Fatalf("a UDP flow through the proxy: %v", err)
	}

	// A connection whose client does not read while the container
	// sends it more than the sockets on the way hold: the proxy's write
	// to it is blocked at the stop, with bytes in its pipe.
	const floodSize = 64 << 20
	flood, err := dial("tcp6", "[::1]:8092")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(flood, "flood %d\n", floodSize)
	queued := func() int {
		n := 0
		rc, _ := flood.(*net.TCPConn).SyscallConn()
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); queued() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flood never reached the client")
		}
	}
	for last := -1; queued() != last; time.Sleep(50 * time.Millisecond) {
		last = queued()
	}

	if _, err := flow.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	webIP := strings.TrimSpace(w.MustBerth(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"))
	time.Sleep(100 * time.Millisecond) // the peer has "late"
	w.d.Stop()
	fire, err := dial("udp4", net.JoinHostPort(webIP, "56"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fire.Write([]byte("fire")); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ proto, addr string }{{"tcp4", "0.0.0.0:8090"}, {"tcp6", "[::]:8090"}, {"udp4", "0.0.0.0:8091"}, {"udp6", "[::]:8091"}} {
		err := inHost(func() error {
			if strings.HasPrefix(l.proto, "udp") {
				c, err := net.ListenPacket(l.proto, l.addr)
				if err == nil {
					c.Close()
				}
				return err
			}
			ln, err := net.Listen(l.proto, l.addr)
			if err == nil {
				ln.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("a host process could take %s %s while no daemon ran", l.proto, l.addr)
		}
	}
	tcp, err := dial("tcp6", "[::1]:8090")
	if err != nil {
		t.Fatalf("a connection to the proxied [::1]:8090 while no daemon runs: %v, want it to wait", err)
	}
	udp, err := dial("udp6", "[::1]:8091")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flow.Write([]byte("who")); err != nil { // waits in the port's socket
		t.Fatal(err)
	}
	if _, err := udp.Write([]byte("who\n")); err != nil {
		t.Fatal(err)
	}
	live.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintln(live, "meanwhile"); err != nil {
		t.Fatal(err)
	}
	w.d = w.Start(t)
	if got, err := liveR.ReadString('\n'); err != nil || got != "echo: meanwhile\n" {
		t.Errorf("a line sent while no daemon ran, on a connection open across the restart: %q, %v", got, err)
	}
	if got, err := say("after"); err != nil || got != "echo: after\n" {
		t.Errorf("the connection open across the restart: %q, %v; want it carried on", got, err)
	}
	// The answer sent across the restart and the answer to the datagram
	// sent while no daemon ran, in either order: the latter went through
	// the client's own flow, so the container saw the same source.
	var got []string
	for range 2 {
		a, err := flowSay("")
		if err != nil {
			t.Errorf("a UDP flow across the restart: %v after %q", err, got)
			break
		}
		got = append(got, a)
	}
	if slices.Sort(got); !slices.Equal(got, []string{seen, "late " + seen}) {
		t.Errorf("a UDP flow across the restart got %q; want the answer sent meanwhile and the one to the datagram sent meanwhile, both to %s", got, seen)
	}
	if got, err := flowSay("who"); err != nil || got != seen {
		t.Errorf("after the restart the container sees the UDP flow's client at %q, %v; want %q, as before", got, err, seen)
	}
	flood.SetReadDeadline(time.Now().Add(60 * time.Second))
	fbuf := make([]byte, 1<<20)
	for got := 0; got < floodSize; {
		n, err := flood.Read(fbuf[:min(len(fbuf), floodSize-got)])
		for i, b := range fbuf[:n] {
			if b != byte((got+i)%251) {
				t.Fatalf("the flooded connection's byte %d is %d, want %d: bytes lost or out of order across the restart", got+i, b, (got+i)%251)
			}
		}
		got += n
		if err != nil {
			t.Fatalf("the flooded connection delivered %d of %d bytes: %v", got, floodSize, err)
		}
	}
	if got, err := answer(tcp); err != nil {
		t.Errorf("the TCP connection made while no daemon ran: %q, %v; want the container's answer", got, err)
	}
	buf := make([]byte, 100)
	udp.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := udp.Read(buf); err != nil {
		t.Errorf("the datagram sent while no daemon ran: %v, want the container's answer", err)
	} else if _, err := netip.ParseAddr(strings.TrimSpace(string(buf[:n]))); err != nil {
		t.Errorf("the datagram sent while no daemon ran got %q, want an address", buf[:n])
	}
	if b, err := os.ReadFile(w.d.LogPath); err != nil || strings.Contains(string(b), "binding the port anew") {
		t.Errorf("a kept socket was not served (%v):\n%s", err, b)
	}
	w.reach(t, "host", "tcp", "[::1]:8090", "")
	w.reach(t, "outside", "tcp", hostPort(8090), outsideAddr)
	w.reach(t, "host", "udp", "[::1]:8091", "")
	if _, errOut, code := w.Berth(t, "run", "-d", "-p", "8090:80", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "already allocated") {
		t.Errorf("8090 after the restart: exit %d, %s; want it held", code, errOut)
	}

	// Killed, a daemon leaves nothing: the proxied port refuses, and
	// its connections end.
	w.d.Kill()
	if got, err := say("killed"); err == nil {
		t.Errorf("a connection through a killed daemon's proxy answered %q", got)
	}
	if _, err := dial("tcp6", "[::1]:8090"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("[::1]:8090 while a killed daemon is gone: %v, want refused", err)
	}
	w.d = w.Start(t)
	w.reach(t, "host", "tcp", "[::1]:8090", "")
}
