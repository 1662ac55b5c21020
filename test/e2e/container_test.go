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
	// A line the container adds to its /etc/hosts stays through connect
	// and disconnect: they add and remove their own lines, as moby's
	// etchosts.Add and Delete (the file was written whole).
	w.MustBerth(t, "exec", "roamer", "sh", "-c", "echo '5.5.5.5\tedited' >> /etc/hosts")

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
	if first := containerIP(t, w, "roamer"); code != 0 || !strings.Contains(hosts, first.String()+"\t") || !strings.Contains(hosts, addr.String()+"\t") || !strings.Contains(hosts, "5.5.5.5\tedited\n") {
		t.Errorf("/etc/hosts after connect = %q, want lines for %s and %s, and the container's own", hosts, first, addr)
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
	if hosts, _, _ := w.Berth(t, "exec", "roamer", "cat", "/etc/hosts"); strings.Contains(hosts, addr.String()+"\t") || !strings.Contains(hosts, "5.5.5.5\tedited\n") {
		t.Errorf("/etc/hosts after disconnect = %q, still names %s or lost the container's own line", hosts, addr)
	}
	checkSandbox(t, w, "roamer", containerIP(t, w, "roamer"), bridgeSubnet, bridgeGateway)
}

// TestHostsOrderAtStart: at its start a container's /etc/hosts lists its
// own addresses in moby's Endpoint.Less order (gateway priority, then
// more gateways, then network name), so that its name resolves first to
// its address on the network of its default route (hostname -i), not in
// the order of its interfaces.
func TestHostsOrderAtStart(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "10.98.9.0/24", "zeta")
	mustDocker(t, w, "network", "create", "--subnet", "10.98.1.0/24", "alpha")
	ownLines := func(name string) []string {
		t.Helper()
		var own []string
		for _, l := range strings.Split(mustDocker(t, w, "exec", name, "cat", "/etc/hosts"), "\n") {
			if strings.HasPrefix(l, "10.98.") {
				own = append(own, l[:strings.Index(l, "\t")])
			}
		}
		return own
	}
	// eth0 on zeta, eth1 on alpha: alpha's address first, as its gateway
	// is the default route.
	mustDocker(t, w, "create", "--name", "ord", "--network", "zeta", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "network", "connect", "alpha", "ord")
	mustDocker(t, w, "start", "ord")
	alpha, zeta := networkIP(t, w, "ord", "alpha").String(), networkIP(t, w, "ord", "zeta").String()
	if got := ownLines("ord"); !equal(got, []string{alpha, zeta}) {
		t.Errorf("ord's own lines %q, want alpha's %s first, then zeta's %s", got, alpha, zeta)
	}
	if out := mustDocker(t, w, "exec", "ord", "ip", "route", "show", "default"); !strings.Contains(out, "via 10.98.1.1 ") {
		t.Errorf("ord's default route %q, want via alpha's gateway", out)
	}
	// A higher gateway priority comes first whatever the names.
	mustDocker(t, w, "run", "-d", "--name", "pri", "--network", "name=alpha", "--network", "name=zeta,gw-priority=5", testworld.BusyboxImage, "sleep", "600")
	alpha, zeta = networkIP(t, w, "pri", "alpha").String(), networkIP(t, w, "pri", "zeta").String()
	if got := ownLines("pri"); !equal(got, []string{zeta, alpha}) {
		t.Errorf("pri's own lines %q, want zeta's %s (gw-priority 5) first, then alpha's %s", got, zeta, alpha)
	}
	mustDocker(t, w, "rm", "-f", "ord", "pri")
	mustDocker(t, w, "network", "rm", "zeta", "alpha")
}
