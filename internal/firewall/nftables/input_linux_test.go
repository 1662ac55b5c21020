package nftables

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/sandbox"
)

// tcpNet is the network of a host:port: tcp6 for "[::1]:80", tcp4 for
// "127.0.0.1:80", so that neither family's socket takes the other's too.
func tcpNet(addr string) string {
	if strings.HasPrefix(addr, "[") {
		return "tcp6"
	}
	return "tcp4"
}

// listen serves "hi" on TCP addr inside the namespace ns until the test ends.
func listen(t *testing.T, ns, addr string) {
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
			io.WriteString(c, "hi")
			c.Close()
		}
	}()
}

// connects reports whether a TCP connection from ns to addr gets the
// greeting. The timeout only bounds a dropped SYN; nothing about speed is
// asserted. One try: use it where the answer must be no.
func connects(t *testing.T, ns, addr string) bool {
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
	return err == nil && string(got) == "hi"
}

// connectsWithin is connects tried again for up to 30 s, where the answer
// must be yes: on a loaded machine one try may miss its two seconds.
func connectsWithin(t *testing.T, ns, addr string) bool {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if connects(t, ns, addr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestHostServicesClosedToContainers: with berth's table, a container
// reaches no TCP service of the host (through its gateway or the host's
// other address) except DNS, while the outside still reaches the same
// service, and ping of the gateway works.
func TestHostServicesClosedToContainers(t *testing.T) {
	w := newWorld(t)
	listen(t, w.host, "0.0.0.0:8099")
	listen(t, w.host, "0.0.0.0:53")
	if !connectsWithin(t, w.c1, "10.0.1.1:8099") {
		t.Fatal("before berth's table, c1 cannot reach the host's service: the test world is broken")
	}
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	internal := firewall.Network{Bridge: "br1", Subnet: br1.Subnet, Internal: true}
	if err := fw.Rebuild(context.Background(), []firewall.Network{br0, internal}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, name, addr string
		want             bool
	}{
		{w.c1, "c1 to its gateway", "10.0.1.1:8099", false},
		{w.c1, "c1 to the host's outside address", "198.51.100.2:8099", false},
		{w.c1, "c1 to another bridge's gateway", "10.0.2.1:8099", false},
		{w.c3, "c3 (internal network) to its gateway", "10.0.2.1:8099", false},
		{w.c1, "c1 to DNS on its gateway", "10.0.1.1:53", true},
		{w.outside, "the outside to the host", "198.51.100.2:8099", true},
	} {
		connected := connects
		if tc.want {
			connected = connectsWithin
		}
		if got := connected(t, tc.from, tc.addr); got != tc.want {
			t.Errorf("%s (%s): connected = %v, want %v", tc.name, tc.addr, got, tc.want)
		}
	}
	if !reaches(t, w.c1, "10.0.1.1") {
		t.Error("c1 cannot ping its gateway")
	}
	if !reaches(t, w.host, "10.0.1.2") {
		t.Error("the host cannot ping c1: replies must come back")
	}
	chain := output(t, w.host, "nft", "list", "chain", "inet", "berth", "host_in__br0")
	if m := regexp.MustCompile(`counter packets (\d+) bytes \d+ reject with icmpx admin-prohibited comment "HOST ACCESS REFUSED"`).FindStringSubmatch(chain); m == nil || m[1] == "0" {
		t.Errorf("the HOST ACCESS REFUSED counter of br0 counted nothing, or nft prints the rule otherwise:\n%s", chain)
	}
	// Refused, not dropped: the client learns at once, from the ICMP
	// error, instead of waiting out its timeout.
	err = sandbox.Do(w.c1, func() error {
		c, err := net.DialTimeout("tcp4", "10.0.1.1:8099", 20*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("connect to a host service from c1: %v, want EHOSTUNREACH (the ICMP admin-prohibited)", err)
	}

	// With host access (berth.bridge.host_access=true), br0's containers
	// reach the host as with Docker; the internal network stays closed.
	open := br0
	open.HostAccess = true
	if err := fw.AddNetwork(context.Background(), open); err != nil {
		t.Fatal(err)
	}
	if !connectsWithin(t, w.c1, "10.0.1.1:8099") || !connectsWithin(t, w.c1, "198.51.100.2:8099") {
		t.Error("with host access, c1 does not reach the host's service")
	}
	if connects(t, w.c3, "10.0.2.1:8099") {
		t.Error("host access on br0 opened the host to the internal network's c3")
	}
}
