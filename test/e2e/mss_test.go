package e2e

import (
	"regexp"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestMSSClampedToTheWayOut: when the host's way out carries less than
// a container's interface (MTU 1400 on the host's uplink, as behind a
// VPN), the container's connections offer the outside an MSS that fits
// it (1360), and a fetch works; the outside server counts the SYNs it
// gets by the MSS they offer.
func TestMSSClampedToTheWayOut(t *testing.T) {
	w, _ := startWorld(t)
	if _, errOut, code := w.InHost(t, "ip", "link", "set", "eth0", "mtu", "1400"); code != 0 {
		t.Fatalf("set the uplink's MTU: %s", errOut)
	}
	for _, args := range [][]string{
		{"nft", "add", "table", "inet", "probe"},
		{"nft", "add", "counter", "inet", "probe", "clamped"},
		{"nft", "add", "counter", "inet", "probe", "unclamped"},
		{"nft", "add", "chain", "inet", "probe", "input", "{ type filter hook input priority 0 ; }"},
		{"nft", "add", "rule", "inet", "probe", "input", "tcp", "flags", "syn", "/", "syn,rst", "tcp", "option", "maxseg", "size", "1360", "counter", "name", "clamped"},
		{"nft", "add", "rule", "inet", "probe", "input", "tcp", "flags", "syn", "/", "syn,rst", "tcp", "option", "maxseg", "size", "1460", "counter", "name", "unclamped"},
	} {
		if _, errOut, code := w.InOutside(t, args...); code != 0 {
			t.Fatalf("%s: %s", strings.Join(args, " "), errOut)
		}
	}
	mustDocker(t, w, "run", "-d", "--name", "m1", testworld.BusyboxImage, "sleep", "3600")
	var got string
	if !retried(func() bool {
		got, _, _ = w.Docker(t, "exec", "m1", "timeout", "10", "wget", "-q", "-O", "-", "http://"+testworld.ServerAddr.String()+"/")
		return strings.HasPrefix(got, "you are ")
	}) {
		t.Fatalf("m1 cannot fetch from the outside: %q", got)
	}
	count := func(name string) string {
		out, _, _ := w.InOutside(t, "nft", "list", "counter", "inet", "probe", name)
		m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no count in %q", out)
		}
		return m[1]
	}
	if n := count("clamped"); n == "0" {
		t.Errorf("the outside got no SYN offering MSS 1360")
	}
	if n := count("unclamped"); n != "0" {
		t.Errorf("the outside got %s SYNs offering MSS 1460, more than the way carries", n)
	}
}
