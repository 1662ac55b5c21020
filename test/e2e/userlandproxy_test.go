package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestUserlandProxyOff: with "userland-proxy": false in daemon.json, as
// dockerd's option, a port of an IPv4-only container is published on
// IPv4 alone (no [::] side, an IPv6 host address left out) and still
// answers everywhere the kernel takes it: the outside with its own
// address, the host's 127.0.0.1. A dual-stack container's port answers
// IPv6 clients by DNAT, and [::1] refuses at once (Docker's listening
// socket keeps its drop filter: the client waits out its timeout). A daemon started again with the
// proxy serves new containers' IPv6 sides; started once more without
// it, those refuse and the log says why.
func TestUserlandProxyOff(t *testing.T) {
	w := startPortWorld(t)
	off := writeDaemonJSON(t, w.World, "daemon.json", `{"userland-proxy": false}`)
	w.d.Stop()
	w.d = w.Start(t, "--config-file", off)

	// docker 28.2's info prints the security options, not the backend.
	if info := mustDocker(t, w.World, "info"); !strings.Contains(info, "seccomp\n   Profile: builtin\n") {
		t.Errorf("docker info shows no seccomp profile:\n%s", info)
	}
	if got := mustDocker(t, w.World, "info", "-f", "{{.FirewallBackend.Driver}} {{.FirewallBackend.Info}}"); got != "nftables []\n" {
		t.Errorf("the firewall backend's info without the proxy: %q", got)
	}
	w.dockerPeer(t, "web", "-p", "8080:80", "-p", "[::1]:8082:80")
	if out := mustDocker(t, w.World, "port", "web"); out != "80/tcp -> 0.0.0.0:8080\n" {
		t.Errorf("docker port web without the proxy: %q, want IPv4 alone", out)
	}
	w.reach(t, "outside", "tcp", hostPort(8080), outsideAddr)
	w.reach(t, "host", "tcp", "127.0.0.1:8080", "")
	w.unreachable(t, "host", "tcp", "[::1]:8080")
	w.unreachable(t, "host", "tcp", "[::1]:8082")

	mustDocker(t, w.World, "network", "create", "--ipv6", "--subnet", "fd00:e2f::/64", "dual")
	w.dockerPeer(t, "db", "--network", "dual", "-p", "9080:80")
	if out := mustDocker(t, w.World, "port", "db"); out != "80/tcp -> 0.0.0.0:9080\n80/tcp -> [::]:9080\n" {
		t.Errorf("docker port db: %q", out)
	}
	host6 := "[" + testworld.HostAddr6.String() + "]:9080"
	w.reach(t, "outside", "tcp", host6, testworld.GatewayAddr6.String())
	w.reach(t, "outside", "tcp", hostPort(9080), outsideAddr)
	refused(t, w, "[::1]:9080")

	// With the proxy again, a new container gets its [::] side served.
	w.d.Stop()
	w.d = w.Start(t)
	if got := mustDocker(t, w.World, "info", "-f", "{{.FirewallBackend.Info}}"); got != "[[EnableUserlandProxy true]]\n" {
		t.Errorf("the firewall backend's info with the proxy: %q", got)
	}
	w.dockerPeer(t, "web2", "-p", "7080:80")
	w.reach(t, "host", "tcp", "[::1]:7080", "")
	w.reach(t, "host", "tcp", "[::1]:9080", "")
	w.unreachable(t, "host", "tcp", "[::1]:8080") // web's ports are as published

	// Off once more: web2's recorded [::] side is held, refused, and logged.
	w.d.Stop()
	w.d = w.Start(t, "--config-file", off)
	refused(t, w, "[::1]:7080")
	w.reach(t, "host", "tcp", "127.0.0.1:7080", "")
	b, err := os.ReadFile(w.d.LogPath)
	if err != nil || !strings.Contains(string(b), "userland proxy, which is now off") {
		t.Errorf("the daemon's log does not say web2's [::]:7080 waits for a restart (%v)", err)
	}
	// Held again at once, though the proxy's connections left TIME_WAIT
	// sockets on them.
	if strings.Contains(string(b), "cannot hold published host port again") {
		t.Errorf("a port the proxy served was not held again at once:\n%s", b)
	}
}

// refused requires that a TCP connection to addr from the host is
// refused, not left unanswered.
func refused(t *testing.T, w *portWorld, addr string) {
	t.Helper()
	_, errOut, code := w.InHost(t, w.peer, "-dial", "tcp:"+addr, "-timeout", "2s")
	if code == 0 || !strings.Contains(errOut, "refused") {
		t.Errorf("connect to %s from the host: exit %d, %q; want connection refused", addr, code, strings.TrimSpace(errOut))
	}
}
