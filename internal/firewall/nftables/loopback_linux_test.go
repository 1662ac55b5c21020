package nftables

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/sandbox"
	"golang.org/x/sys/unix"
)

// TestLoopbackFromOutside sends packets for 127.0.0.1 into the host from
// elsewhere, as a neighbour on the LAN or a container with CAP_NET_RAW can
// (a frame to the host's MAC; no route is needed to send one). The bridges
// have route_localnet=1, as the driver sets it for 127.0.0.1 ports, so
// without a rule of berth's such a packet reaches what the host serves on
// 127.0.0.1 (CVE-2020-8558's class), and one for a port published on
// 127.0.0.1 is DNATed to the container before routing could call it a
// martian (moby#45610; Docker 28 drops it per port in raw PREROUTING).
func TestLoopbackFromOutside(t *testing.T) {
	w := newWorld(t)
	for _, br := range []string{"br0", "br1"} {
		run(t, w.host, "sysctl", "-qw", "net.ipv4.conf."+br+".route_localnet=1")
	}
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	ctx := context.Background()
	open := br0
	open.HostAccess = true
	if err := fw.Rebuild(ctx, []firewall.Network{open, br1}); err != nil {
		t.Fatal(err)
	}
	c1 := netip.MustParseAddr("10.0.1.2")
	if err := fw.AddPorts(ctx, []firewall.PortMapping{
		{Proto: firewall.UDP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, Addr: c1, Port: 80},
		{Proto: firewall.UDP, HostPort: 8081, Addr: c1, Port: 80},
	}); err != nil {
		t.Fatal(err)
	}
	inContainer := listenUDP(t, w.c1, "0.0.0.0:80")
	onHost := listenUDP(t, w.host, "0.0.0.0:5300")
	onHostBr1 := listenUDP(t, w.host, "0.0.0.0:53")

	outside := frameSender(t, w.outside, "eth0", w.host, "eth0", "198.51.100.1")
	fromC1 := frameSender(t, w.c1, "eth0", w.host, "br0", "10.0.1.2")
	fromC3 := frameSender(t, w.c3, "eth0", w.host, "br1", "10.0.2.2")
	for _, tc := range []struct {
		name   string
		send   func(dst string, port uint16, msg string)
		dst    string
		port   uint16
		got    <-chan string
		reach  bool
		reason string
	}{
		// Controls: the frames themselves get through where they should.
		{"the LAN to a port published on every address", outside, "198.51.100.2", 8081, inContainer, true, ""},
		{"a container to the host (host access open)", fromC1, "10.0.1.1", 5300, onHost, true, ""},
		{"a container to the host's DNS port", fromC3, "10.0.2.1", 53, onHostBr1, true, ""},
		// What must not.
		{"the LAN to a port published on 127.0.0.1", outside, "127.0.0.1", 8080, inContainer, false, "moby#45610"},
		{"the LAN to 127.0.0.1 at a port published on every address", outside, "127.0.0.1", 8081, inContainer, false, ""},
		{"a container to a host service on 127.0.0.1 (host access open)", fromC1, "127.0.0.1", 5300, onHost, false, "route_localnet"},
		{"a container to the host's DNS port on 127.0.0.1", fromC3, "127.0.0.1", 53, onHostBr1, false, "route_localnet"},
		{"a container to a port published on 127.0.0.1", fromC1, "127.0.0.1", 8080, inContainer, false, ""},
	} {
		msg := tc.name
		arrived := false
		// One frame may be lost to a first ARP exchange on the way; a
		// few tries tell a drop from that.
		for try := 0; try < 5 && !arrived; try++ {
			tc.send(tc.dst, tc.port, msg)
			arrived = receives(tc.got, msg, time.Second)
		}
		if arrived != tc.reach {
			t.Errorf("%s (%s:%d): arrived %v, want %v %s", tc.name, tc.dst, tc.port, arrived, tc.reach, tc.reason)
		}
	}
	// The host's own use of 127.0.0.1 ports is untouched: it goes
	// through lo.
	if !askUDP(t, w.host, "127.0.0.1:8080", inContainer) {
		t.Error("the host itself no longer reaches the port published on 127.0.0.1")
	}
}

// listenUDP receives datagrams on addr in the namespace ns until the test
// ends, and passes each one on.
func listenUDP(t *testing.T, ns, addr string) <-chan string {
	t.Helper()
	var c net.PacketConn
	if err := sandbox.Do(ns, func() (err error) {
		c, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return got
}

// receives reports whether msg comes on got within d (others are skipped).
func receives(got <-chan string, msg string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case m := <-got:
			if m == msg {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// askUDP sends a datagram from ns to addr through the socket layer and
// reports whether got receives it, trying a few times.
func askUDP(t *testing.T, ns, addr string, got <-chan string) bool {
	t.Helper()
	for try := 0; try < 5; try++ {
		msg := "from the host " + addr
		if err := sandbox.Do(ns, func() error {
			c, err := net.Dial("udp4", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte(msg))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if receives(got, msg, time.Second) {
			return true
		}
	}
	return false
}

// frameSender returns a function that sends, from the interface ifName of
// the namespace ns, a UDP datagram from src to any destination in an
// Ethernet frame addressed to the MAC of toIf in the namespace toNS: what
// a host with raw sockets can put on a link, whatever routes say.
func frameSender(t *testing.T, ns, ifName, toNS, toIf, src string) func(dst string, port uint16, msg string) {
	t.Helper()
	mac, ifIndex := interfaceIn(t, toNS, toIf).HardwareAddr, interfaceIn(t, ns, ifName).Index
	from := netip.MustParseAddr(src)
	return func(dst string, port uint16, msg string) {
		t.Helper()
		pkt := udpPacket(from, netip.MustParseAddr(dst), 40000, port, []byte(msg))
		if err := sandbox.Do(ns, func() error {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifIndex, Halen: 6}
			copy(ll.Addr[:], mac)
			return unix.Sendto(fd, pkt, 0, ll)
		}); err != nil {
			t.Fatalf("send a frame from %s: %v", ifName, err)
		}
	}
}

// interfaceIn looks up the interface name in the namespace ns.
func interfaceIn(t *testing.T, ns, name string) *net.Interface {
	t.Helper()
	var ifi *net.Interface
	if err := sandbox.Do(ns, func() (err error) {
		ifi, err = net.InterfaceByName(name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ifi
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// udpPacket is an IPv4 header and a UDP datagram without a checksum.
func udpPacket(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64 // TTL
	p[9] = unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}
