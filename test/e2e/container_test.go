package e2e

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestForegroundRunAndExec: `run` without -d passes output and exit code
// through; exec passes stdin, stdout and the exit code.
func TestForegroundRunAndExec(t *testing.T) {
	w, _ := startWorld(t)
	out, _, code := w.Berth(t, "run", "--name", "fg", testworld.BusyboxImage, "sh", "-c", "echo hello from fg; exit 3")
	if code != 3 || out != "hello from fg\n" {
		t.Errorf("berth run (foreground): exit %d, %q; want 3, \"hello from fg\\n\"", code, out)
	}
	runSleeper(t, w, "ex")
	out, _, code = w.BerthIn(t, "piped in\n", "exec", "-i", "ex", "cat")
	if code != 0 || out != "piped in\n" {
		t.Errorf("berth exec -i cat: exit %d, %q; want 0, \"piped in\\n\"", code, out)
	}
	if _, _, code := w.Berth(t, "exec", "ex", "sh", "-c", "exit 42"); code != 42 {
		t.Errorf("berth exec exit code = %d, want 42", code)
	}
}

// TestContainerFiles: each container gets its own /etc/hostname (its
// short ID, as Docker) and an /etc/hosts naming its address.
func TestContainerFiles(t *testing.T) {
	w, _ := startWorld(t)
	runSleeper(t, w, "files")
	id := inspect(t, w, "{{.Id}}", "files")
	ip := containerIP(t, w, "files")
	if out, _, code := w.Berth(t, "exec", "files", "hostname"); code != 0 || strings.TrimSpace(out) != id[:12] {
		t.Errorf("hostname in the container = %q (exit %d), want %q", out, code, id[:12])
	}
	hosts, _, code := w.Berth(t, "exec", "files", "cat", "/etc/hosts")
	if code != 0 || !strings.Contains(hosts, ip.String()) || !strings.Contains(hosts, "localhost") {
		t.Errorf("/etc/hosts = %q, want localhost and %s", hosts, ip)
	}
	if _, _, code := w.Berth(t, "exec", "files", "test", "-f", "/etc/resolv.conf"); code != 0 {
		t.Errorf("no /etc/resolv.conf in the container")
	}
}

// TestConnectDisconnect: connecting a running container to a second
// network adds eth1 live, with an address there and reachability to its
// containers; disconnecting removes it again.
func TestConnectDisconnect(t *testing.T) {
	w, _ := startWorld(t)
	w.MustBerth(t, "network", "create", "--subnet", "10.97.0.0/24", "second")
	runSleeper(t, w, "roamer")
	runSleeper(t, w, "resident", "--network", "second")
	resident := networkIP(t, w, "resident", "second")
	if canPing(t, w, "roamer", resident) {
		t.Fatalf("roamer reaches resident (%s) before connect", resident)
	}
	ports := w.BridgePorts(t, defaultBridge)

	w.MustBerth(t, "network", "connect", "second", "roamer")
	addr := networkIP(t, w, "roamer", "second")
	if !netip.MustParsePrefix("10.97.0.0/24").Contains(addr) {
		t.Errorf("roamer got %s on second, want an address in 10.97.0.0/24", addr)
	}
	procNS := "/proc/" + itoa(containerPID(t, w, "roamer")) + "/ns/net"
	if got := w.LinkNames(t, procNS); !equal(got, []string{"eth0", "eth1", "lo"}) {
		t.Errorf("links after connect = %q, want [eth0 eth1 lo]", got)
	}
	if !pings(t, w, "roamer", resident) {
		t.Errorf("roamer cannot reach resident (%s) after connect", resident)
	}
	// /etc/hosts names the container's address on each network (written
	// by the connect).
	hosts, _, code := w.Berth(t, "exec", "roamer", "cat", "/etc/hosts")
	if first := containerIP(t, w, "roamer"); code != 0 || !strings.Contains(hosts, first.String()+"\t") || !strings.Contains(hosts, addr.String()+"\t") {
		t.Errorf("/etc/hosts after connect = %q, want lines for %s and %s", hosts, first, addr)
	}

	w.MustBerth(t, "network", "disconnect", "second", "roamer")
	// The driver cuts the container end off at once and lets a background
	// reaper delete the pair (a synchronous veth delete costs ~25 ms), so
	// the link may linger, down, for a few tens of milliseconds.
	eventually(t, "only eth0 and lo left after disconnect", func() bool {
		return equal(w.LinkNames(t, procNS), []string{"eth0", "lo"})
	})
	if got := w.LinkNames(t, procNS); !equal(got, []string{"eth0", "lo"}) {
		t.Errorf("links after disconnect = %q, want [eth0 lo]", got)
	}
	if got := w.BridgePorts(t, defaultBridge); !equal(got, ports) {
		t.Errorf("ports of %s changed from %q to %q", defaultBridge, ports, got)
	}
	if hosts, _, _ := w.Berth(t, "exec", "roamer", "cat", "/etc/hosts"); strings.Contains(hosts, addr.String()+"\t") {
		t.Errorf("/etc/hosts after disconnect = %q, still names %s", hosts, addr)
	}
	checkSandbox(t, w, "roamer", containerIP(t, w, "roamer"), bridgeSubnet, bridgeGateway)
}
