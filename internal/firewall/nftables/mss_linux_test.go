package nftables

import (
	"context"
	"os/exec"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
)

// TestClampMSSToTheWayOut: with the host's way out carrying 1400 bytes
// (its end of the uplink has MTU 1400, the outside's 1500, as behind a
// VPN), a container's SYN reaches the outside offering an MSS of 1360,
// not the 1460 its 1500-byte interface offers: the server then never
// sends it a segment that cannot pass. The server counts the SYNs it
// gets by the MSS they offer.
func TestClampMSSToTheWayOut(t *testing.T) {
	w := newWorld(t)
	run(t, w.host, "ip", "link", "set", "eth0", "mtu", "1400")
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	if err := fw.Rebuild(context.Background(), []firewall.Network{br0, br1}); err != nil {
		t.Fatal(err)
	}
	run(t, w.outside, "nft", "add", "table", "inet", "probe")
	run(t, w.outside, "nft", "add", "counter", "inet", "probe", "clamped")
	run(t, w.outside, "nft", "add", "counter", "inet", "probe", "unclamped")
	run(t, w.outside, "nft", "add", "chain", "inet", "probe", "input", "{ type filter hook input priority 0 ; }")
	run(t, w.outside, "nft", "add", "rule", "inet", "probe", "input", "tcp", "flags", "syn", "/", "syn,rst", "tcp", "option", "maxseg", "size", "1360", "counter", "name", "clamped")
	run(t, w.outside, "nft", "add", "rule", "inet", "probe", "input", "tcp", "flags", "syn", "/", "syn,rst", "tcp", "option", "maxseg", "size", "1460", "counter", "name", "unclamped")
	if !reaches(t, w.c1, server) {
		t.Fatal("c1 cannot reach the server")
	}
	// A connection attempt: nothing listens, the SYN is what counts.
	_ = exec.Command("nsenter", "--net="+w.c1, "--", "busybox", "nc", "-w", "1", server, "80").Run()
	if n := counter(t, w.outside, "clamped"); n == 0 {
		t.Errorf("the server got no SYN offering MSS 1360 (unclamped: %d)", counter(t, w.outside, "unclamped"))
	}
	if n := counter(t, w.outside, "unclamped"); n != 0 {
		t.Errorf("the server got %d SYNs offering MSS 1460, more than the way carries", n)
	}
}
