package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestLinkLocalIPs: docker run and network connect --link-local-ip, as
// Docker: the container's interface gets each address (/16, /64) beside
// its own, inspect shows them as given, another container on the network
// reaches one, and an address that is not link-local fails the start in
// moby's words.
func TestLinkLocalIPs(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "--ipv6", "--subnet", "10.81.0.0/24", "--subnet", "fd00:81::/64", "llnet")
	runDockerSleeper(t, w, "l1", "--network", "llnet", "--link-local-ip", "169.254.8.1", "--link-local-ip", "fe80::8:1")
	if got := dockerInspect(t, w, `{{json (index .NetworkSettings.Networks "llnet").IPAMConfig}}`, "l1"); got != `{"LinkLocalIPs":["169.254.8.1","fe80::8:1"]}` {
		t.Errorf("l1's IPAMConfig: %s", got)
	}
	addrs := mustDocker(t, w, "exec", "l1", "ip", "addr", "show", "eth0")
	for _, want := range []string{"inet 169.254.8.1/16", "inet6 fe80::8:1/64", "inet 10.81.0.2/24"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("l1's eth0 lacks %q:\n%s", want, addrs)
		}
	}
	runDockerSleeper(t, w, "l2", "--network", "llnet", "--link-local-ip", "169.254.8.2")
	if _, errOut, code := w.Docker(t, "exec", "l2", "ping", "-c", "1", "-W", "5", "169.254.8.1"); code != 0 {
		t.Errorf("l2 pings l1's link-local address: exit %d, %q", code, errOut)
	}
	runDockerSleeper(t, w, "l4")
	mustDocker(t, w, "network", "connect", "--link-local-ip", "169.254.8.4", "llnet", "l4")
	if addrs := mustDocker(t, w, "exec", "l4", "ip", "addr", "show", "eth1"); !strings.Contains(addrs, "inet 169.254.8.4/16") {
		t.Errorf("l4's eth1 after connect --link-local-ip:\n%s", addrs)
	}
	if _, errOut, code := w.Docker(t, "exec", "l4", "ping", "-c", "1", "-W", "5", "169.254.8.1"); code != 0 {
		t.Errorf("l4 pings l1's link-local address over the network it connected: exit %d, %q", code, errOut)
	}
	// The default bridge has IPv6 off: an IPv6 link-local address cannot
	// be had there, in Docker either (its interface has IPv6 off).
	if _, errOut, code := w.Docker(t, "network", "connect", "--link-local-ip", "fe80::8:5", "bridge", "l2"); code == 0 || !strings.Contains(errOut, "fe80::8:5") {
		t.Errorf("an IPv6 link-local address on an IPv4-only network: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "l3", "--network", "llnet", "--link-local-ip", "10.0.0.5", testworld.BusyboxImage, "true"); code == 0 ||
		!strings.Contains(errOut, "invalid link local IP address: 10.0.0.5") {
		t.Errorf("a --link-local-ip that is not link-local: exit %d, %q", code, errOut)
	}
}
