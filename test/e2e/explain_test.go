package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/testworld"
)

// TestExplainAgreesWithTheKernel: for each connection, `berth explain`
// names the rule that decides it, and the kernel does what it says: a
// connection explained as delivered is answered, one explained as
// dropped or rejected is not. The cases cover published ports (from
// outside, from the host, hairpin), direct access to a container, other
// networks, ICC off, an internal network, the host's own services, and
// another table's forward chain that drops what berth lets through.
func TestExplainAgreesWithTheKernel(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "web", "tcp:80", "-p", "8080:80")
	w.runPeer(t, "neighbour", "tcp:80")
	w.MustBerth(t, "network", "create", "--subnet", "10.96.0.0/24", "other")
	w.runPeer(t, "elsewhere", "tcp:80", "--network", "other")
	w.MustBerth(t, "network", "create", "--subnet", "10.97.0.0/24", "-o", "com.docker.network.bridge.enable_icc=false", "quiet")
	w.runPeer(t, "q1", "tcp:80", "--network", "quiet")
	w.runPeer(t, "q2", "tcp:80", "--network", "quiet")
	w.MustBerth(t, "network", "create", "--internal", "--subnet", "10.98.0.0/24", "inner")
	w.runPeer(t, "inside", "tcp:80", "--network", "inner")
	w.runPeer(t, "deaf", "tcp:80", "-p", "8083:81") // publishes a port nothing in it listens on
	w.MustBerth(t, "network", "create", "--subnet", "10.95.0.0/24", "-o", "com.docker.network.bridge.gateway_mode_ipv4=routed", "routed")
	w.runPeer(t, "rweb", "tcp:80", "--network", "routed", "-p", "8443:80") // IPv4: no host port (routed); [::]:8443 is the proxy's
	listenInHost(t, w.World, "0.0.0.0:8099")
	// The outside world routes the default bridge's subnet through the
	// host, so that only the host's rules stand between it and a container.
	if _, errOut, code := w.InOutside(t, "ip", "route", "add", bridgeSubnet.String(), "via", testworld.HostAddr.String()); code != 0 {
		t.Fatalf("route the container subnet through the host: %s", errOut)
	}

	webIP := containerIP(t, w.World, "web").String()
	q2IP := networkIP(t, w.World, "q2", "quiet").String()
	server := testworld.ServerAddr.String()
	outside := testworld.GatewayAddr.String()
	// Probes take the subtest's t: one checkExplained runs in a subtest.
	ask := func(where, addr string) func(*testing.T) bool {
		return func(t *testing.T) bool { _, ok := w.askFrom(t, where, "tcp", addr); return ok }
	}
	fetchFrom := func(name string) func(*testing.T) bool {
		return func(t *testing.T) bool { return fetch(t, w.World, name) != "" }
	}
	dialHost := func(name, addr string) func(*testing.T) bool {
		return func(t *testing.T) bool { return dial(t, w.World, name, addr, "8099") }
	}

	for _, tc := range []struct {
		name     string
		from, to string // berth explain's arguments
		probe    func(*testing.T) bool
		outcome  string
		why      string // in the deciding step
	}{
		{"outside to a published port", outside, "host:8080", ask("outside", hostPort(8080)), "delivered", "PUBLISHED PORTS"},
		{"outside straight to a container", outside, "web:80", ask("outside", webIP+":80"), "dropped", "DIRECT ACCESS DROP"},
		{"outside to a host service", outside, "host:8099", ask("outside", hostPort(8099)), "delivered", "for the host itself"},
		{"host to a published port on loopback", "host", "127.0.0.1:8080", ask("host", "127.0.0.1:8080"), "delivered", "out of " + defaultBridge},
		{"container to itself", "web", "web:80", ask("container:web", webIP+":80"), "delivered", "for the container itself"},
		{"host to its own service", "host", "127.0.0.1:8099", ask("host", "127.0.0.1:8099"), "delivered", "for the host itself"},
		{"host to a port nothing listens on", "host", "127.0.0.1:8097", ask("host", "127.0.0.1:8097"), "rejected", "no socket of the host listens"},
		{"container to a port nothing listens on inside", "web", "web:81", ask("container:web", webIP+":81"), "rejected", "no socket of container web listens"},
		{"hairpin", "neighbour", testworld.HostAddr.String() + ":8080", ask("container:neighbour", hostPort(8080)), "delivered", "PUBLISHED PORTS"},
		{"container to a neighbour", "neighbour", "web:80", ask("container:neighbour", webIP+":80"), "delivered", "ICC"},
		{"container to a neighbour's port nothing listens on", "neighbour", "web:81", ask("container:neighbour", webIP+":81"), "rejected", "no socket of container web listens"},
		{"outside to a published port nothing in the container listens on", outside, "host:8083", ask("outside", hostPort(8083)), "rejected", "no socket of container deaf listens"},
		{"host to that port on loopback", "host", "127.0.0.1:8083", ask("host", "127.0.0.1:8083"), "rejected", "no socket of container deaf listens"},
		{"container to an address no container has", "web", "172.17.0.250:80", ask("container:web", "172.17.0.250:80"), "no route", "no container has 172.17.0.250"},
		{"outside over IPv4 to a port only the daemon's IPv6 proxy holds", outside, "host:8443", ask("outside", hostPort(8443)), "rejected", "no socket of the host listens"},
		{"container out", "web", server + ":80", fetchFrom("web"), "delivered", "OUTGOING"},
		{"container to another network", "elsewhere", webIP + ":80", ask("container:elsewhere", webIP+":80"), "dropped", "DIRECT ACCESS DROP"},
		{"icc off", "q1", "q2:80", ask("container:q1", q2IP+":80"), "dropped", "ICC"},
		{"internal network out", "inside", server + ":80", fetchFrom("inside"), "no route", "network is unreachable"},
		{"internal network through a published port", "inside", "10.98.0.1:8080", ask("container:inside", "10.98.0.1:8080"), "dropped", "INTERNAL NETWORK EGRESS"},
		{"container to a host service", "web", "host:8099", dialHost("web", bridgeGateway.String()), "rejected", "HOST ACCESS REFUSED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkExplained(t, w.World, tc.from, tc.to, tc.probe, tc.outcome, tc.why)
		})
	}

	// Refused, not dropped: the host's service is closed to containers
	// with an ICMP admin-prohibited, which nc reports at once.
	if out, errOut, _ := w.Berth(t, "exec", "web", "sh", "-c", "timeout 5 nc "+bridgeGateway.String()+" 8099 </dev/null"); !strings.Contains(out+errOut, "No route to host") {
		t.Errorf("container to a host service: %q %q, want the refusal's \"No route to host\"", out, errOut)
	}

	// A host firewall in front of the host's own services: its input
	// chain drops a client's packet for one of them, which explain
	// reads; a published port is forwarded, never input, and stays open.
	w.MustInHost(t, "nft", "add table inet guard; add chain inet guard in { type filter hook input priority filter; policy drop; }; "+
		"add rule inet guard in ct state established,related accept; add rule inet guard in iifname lo accept")
	t.Run("another table's input chain", func(t *testing.T) {
		checkExplained(t, w.World, outside, "host:8099", ask("outside", hostPort(8099)), "dropped", "table inet guard, chain in policy drop")
		checkExplained(t, w.World, outside, "host:8080", ask("outside", hostPort(8080)), "delivered", "PUBLISHED PORTS")
	})
	w.MustInHost(t, "nft", "delete table inet guard")

	// An isolated network: the host has no address on its bridge and no
	// route into it, but its containers reach each other on the link.
	w.MustBerth(t, "network", "create", "--internal", "--subnet", "10.93.0.0/24", "-o", "com.docker.network.bridge.gateway_mode_ipv4=isolated", "iso")
	w.runPeer(t, "i1", "tcp:80", "--network", "iso")
	w.runPeer(t, "i2", "tcp:80", "--network", "iso")
	i2IP := networkIP(t, w.World, "i2", "iso").String()
	t.Run("isolated network, between its containers", func(t *testing.T) {
		checkExplained(t, w.World, "i1", "i2:80", ask("container:i1", i2IP+":80"), "delivered", "ICC")
	})
	t.Run("isolated network, from the host", func(t *testing.T) {
		checkExplained(t, w.World, "host", "i2:80", ask("host", i2IP+":80"), "no route", "no route into")
	})
	// A port published on 127.0.0.1 only: a client elsewhere is not
	// DNATed, and explain says where the port is published.
	w.runPeer(t, "local", "tcp:80", "-p", "127.0.0.1:8081:80")
	t.Run("a port published on loopback only", func(t *testing.T) {
		out := w.MustBerth(t, "explain", outside, "host:8081")
		if !strings.Contains(out, "port 8081/tcp is published on 127.0.0.1:8081") {
			t.Errorf("berth explain %s host:8081 printed:\n%s", outside, out)
		}
		checkExplained(t, w.World, outside, "host:8081", ask("outside", hostPort(8081)), "rejected", "no socket of the host listens")
		checkExplained(t, w.World, "host", "127.0.0.1:8081", ask("host", "127.0.0.1:8081"), "delivered", "out of "+defaultBridge)
	})

	// IPv6: a dual-stack network's published port and direct access.
	w.MustBerth(t, "network", "create", "--ipv6", "--subnet", "10.99.0.0/24", "--subnet", "fd00:e2e:99::/64", "dual")
	w.runPeer(t, "six", "tcp:80", "--network", "dual", "-p", "8086:80")
	sixIP := strings.TrimSpace(w.MustBerth(t, "inspect", "--format", `{{(index .NetworkSettings.Networks "dual").GlobalIPv6Address}}`, "six"))
	if _, errOut, code := w.InOutside(t, "ip", "-6", "route", "add", "fd00:e2e:99::/64", "via", testworld.HostAddr6.String()); code != 0 {
		t.Fatalf("route the container subnet through the host: %s", errOut)
	}
	outside6, host6 := testworld.GatewayAddr6.String(), "["+testworld.HostAddr6.String()+"]:8086"
	// An IPv6-only network's containers need no -6.
	w.MustBerth(t, "network", "create", "--ipv4=false", "--ipv6", "--subnet", "fd00:e2e:98::/64", "only6")
	w.runPeer(t, "s6a", "tcp:80", "--network", "only6")
	w.runPeer(t, "s6b", "tcp:80", "--network", "only6")
	s6bIP := strings.TrimSpace(w.MustBerth(t, "inspect", "--format", `{{(index .NetworkSettings.Networks "only6").GlobalIPv6Address}}`, "s6b"))
	t.Run("IPv6-only network", func(t *testing.T) {
		checkExplained(t, w.World, "s6a", "s6b:80", ask("container:s6a", "["+s6bIP+"]:80"), "delivered", "ICC")
	})
	t.Run("IPv6 outside to a published port", func(t *testing.T) {
		checkExplained(t, w.World, outside6, "host:8086", ask("outside", host6), "delivered", "PUBLISHED PORTS")
	})
	t.Run("IPv6 outside straight to a container", func(t *testing.T) {
		checkExplained(t, w.World, outside6, "six:80", ask("outside", "["+sixIP+"]:80"), "dropped", "DIRECT ACCESS DROP")
	})
	t.Run("IPv6 container out", func(t *testing.T) {
		checkExplained(t, w.World, "six", "["+testworld.ServerAddr6.String()+"]:80", func(t *testing.T) bool {
			_, _, code := w.Berth(t, "exec", "six", "timeout", "10", "wget", "-q", "-O", "-", "http://["+testworld.ServerAddr6.String()+"]/")
			return code == 0
		}, "delivered", "OUTGOING")
	})

	// Another table that drops every forwarded packet: berth's table lets
	// the container out, the host's does not, and explain says which. Its
	// rules are read for the packet: one that accepts the published
	// port's traffic by address and port (ufw's "route allow") lets that
	// in; one on a mark, which explain does not read, leaves it undecided.
	w.MustInHost(t, "nft", "add table inet strict; add chain inet strict forward { type filter hook forward priority filter + 10; policy drop; }")
	t.Run("another table drops it", func(t *testing.T) {
		checkExplained(t, w.World, "web", server+":80", fetchFrom("web"), "dropped", "table inet strict, chain forward policy drop")
	})
	w.MustInHost(t, "nft", "add rule inet strict forward ip daddr "+webIP+" tcp dport 80 accept")
	t.Run("another table accepts the published port but not the replies", func(t *testing.T) {
		checkExplained(t, w.World, outside, "host:8080", ask("outside", hostPort(8080)), "dropped", "of the reply")
	})
	w.MustInHost(t, "nft", "insert rule inet strict forward ct state established,related accept")
	t.Run("another table accepts the published port by address", func(t *testing.T) {
		checkExplained(t, w.World, outside, "host:8080", ask("outside", hostPort(8080)), "delivered", "PUBLISHED PORTS")
		checkExplained(t, w.World, "web", server+":80", fetchFrom("web"), "dropped", "policy drop")
	})
	w.MustInHost(t, "nft", "add rule inet strict forward iifname "+defaultBridge+" accept; add rule inet strict forward oifname "+defaultBridge+" accept")
	t.Run("another table accepts the bridge", func(t *testing.T) {
		checkExplained(t, w.World, "web", server+":80", fetchFrom("web"), "delivered", "OUTGOING")
	})
	w.MustInHost(t, "nft", "insert rule inet strict forward meta mark 0x42 drop")
	t.Run("another table's rule on a mark", func(t *testing.T) {
		checkExplained(t, w.World, "web", server+":80", nil, "undecided", "rule handle")
	})
	w.MustInHost(t, "nft", "delete table inet strict")

	// Errors a user meets.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"ghost", "web:80"}, "No such container: ghost"},
		{[]string{"web", "host:80", "--proto", "icmp"}, "an icmp packet has no port"},
		{[]string{"web", "host", "--proto", "udp"}, "a udp packet needs a port"},
		{[]string{"web", "web:http"}, "invalid destination"},
		{[]string{"-6", outside, "web:80"}, "give two ends of one family"},
		{[]string{"--in", "eth0", "web", "host:80"}, "--in is for a packet from an address"},
		{[]string{"--in", "nosuch0", outside, "web:80"}, `no interface "nosuch0"`},
	} {
		if _, errOut, code := w.Berth(t, append([]string{"explain"}, tc.args...)...); code == 0 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("berth explain %v: exit %d, %q; want an error with %q", tc.args, code, errOut, tc.msg)
		}
	}
	// The text form names the rule too.
	out := w.MustBerth(t, "explain", outside, "web:80")
	if !strings.Contains(out, "DROPPED: table inet berth, chain direct__"+defaultBridge) || !strings.Contains(out, `comment "DIRECT ACCESS DROP"`) {
		t.Errorf("berth explain %s web:80 printed:\n%s", outside, out)
	}
}

// checkExplained runs berth explain from to, checks its outcome and the
// deciding step, and then that the kernel agrees: probe (one try of the
// real connection) succeeds, retried, when the packet is delivered, and
// fails when it is not.
func checkExplained(t *testing.T, w *testworld.World, from, to string, probe func(*testing.T) bool, outcome, why string) {
	t.Helper()
	out := w.MustBerth(t, "explain", "--json", from, to)
	var ex network.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("berth explain --json %s %s: %v\n%s", from, to, err, out)
	}
	text := w.MustBerth(t, "explain", from, to)
	if string(ex.Outcome) != outcome || ex.Decision == nil {
		t.Fatalf("berth explain %s %s: %s, want %s\n%s", from, to, ex.Outcome, outcome, text)
	}
	d := ex.Decision
	if decided := d.Chain + " " + d.Rule + " " + d.Effect; !strings.Contains(decided, why) {
		t.Errorf("berth explain %s %s: decided by %q, want %q in it\n%s", from, to, decided, why, text)
	}
	if probe == nil { // undecided: nothing to compare
		return
	}
	if outcome == "delivered" {
		if !retried(func() bool { return probe(t) }) {
			t.Errorf("%s → %s: explained as delivered, but nothing answers\n%s", from, to, text)
		}
		return
	}
	if probe(t) {
		t.Errorf("%s → %s: explained as %s, but it was answered\n%s", from, to, outcome, text)
	}
}
