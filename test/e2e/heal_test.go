package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/bench/reliability"
	"github.com/berth-net/berth/internal/testworld"
)

// eventually polls cond until it holds; the bound only keeps a broken
// daemon from hanging the test and asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < time.Minute {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still not true after a minute", what)
	return 0
}

func daemonLog(t *testing.T, d *testworld.Daemon) string {
	t.Helper()
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFirewallHeals: when someone else flushes the ruleset or deletes
// berth's table, the daemon notices (nftables notifications), logs it and
// restores the table; containers reach the outside and published ports
// answer again without a restart.
func TestFirewallHeals(t *testing.T) {
	w, d := startWorld(t)
	runSleeper(t, w, "c1")
	if got := fetchAnswer(t, w, "c1"); got != "you are 198.51.100.2\n" {
		t.Fatalf("c1 reached the outside as %q before the test", got)
	}
	w.MustBerth(t, "run", "-d", "--name", "web", "-p", "8080:80", testworld.BusyboxImage,
		"sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
	published := func() string {
		out, _, _ := w.InOutside(t, "timeout", "10", "busybox", "wget", "-q", "-O", "-", "http://"+testworld.HostAddr.String()+":8080/")
		return out
	}
	eventually(t, "the published port answers", func() bool { return published() == "published\n" })
	want := snapshot(t, w).Rules
	for _, cmd := range [][]string{
		{"nft", "flush", "ruleset"},
		{"nft", "delete", "table", "inet", "berth"},
		{"nft", "flush", "table", "inet", "berth"},
	} {
		w.InHost(t, cmd...)
		took := eventually(t, "table restored after "+strings.Join(cmd, " "), func() bool {
			out, _, code := w.InHost(t, "nft", "-s", "list", "table", "inet", "berth")
			return code == 0 && out == want
		})
		t.Logf("%s: table back after %v (polled)", strings.Join(cmd, " "), took)
		if got := fetchAnswer(t, w, "c1"); got != "you are 198.51.100.2\n" {
			t.Errorf("after %s and the heal, c1 reached the outside as %q", strings.Join(cmd, " "), got)
		}
		var got string
		retried(func() bool { got = published(); return got != "" })
		if got != "published\n" {
			t.Errorf("after %s and the heal, the published port answered %q", strings.Join(cmd, " "), got)
		}
	}
	log := daemonLog(t, d)
	if n := strings.Count(log, "changed by another process; restoring it"); n < 3 {
		t.Errorf("daemon logged %d heals, want 3:\n%s", n, log)
	}
	if !strings.Contains(log, `comm=nft`) && !strings.Contains(log, `\"nft\"`) {
		t.Errorf("daemon log does not say nft did it:\n%s", log)
	}
	// Our own changes are not heals: a network create/rm adds none.
	before := strings.Count(daemonLog(t, d), "restoring it")
	w.MustBerth(t, "network", "create", "quiet")
	w.MustBerth(t, "network", "rm", "quiet")
	runSleeper(t, w, "c2")
	if after := strings.Count(daemonLog(t, d), "restoring it"); after != before {
		t.Errorf("berth's own changes were healed: %d heals before, %d after", before, after)
	}
}

// TestHostRouteWarnings: a route that overlaps a berth network (a VPN
// coming up) shows as a warning in the log and in network inspect, and goes
// when the route goes, for IPv4 and IPv6 alike; new networks avoid routes
// of any table.
func TestHostRouteWarnings(t *testing.T) {
	w, d := startWorld(t)
	w.MustInHost(t, "ip", "route", "add", "172.17.0.0/24", "dev", "eth0")
	eventually(t, "a warning in network inspect", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	warn := networkWarnings(t, w, "bridge")[0]
	if !strings.Contains(warn, "route 172.17.0.0/24 dev eth0 overlaps network \"bridge\" (172.17.0.0/16)") {
		t.Errorf("warning = %q", warn)
	}
	if !strings.Contains(daemonLog(t, d), "host route overlaps a berth network") {
		t.Errorf("the daemon did not log the overlap:\n%s", daemonLog(t, d))
	}
	w.MustInHost(t, "ip", "route", "del", "172.17.0.0/24", "dev", "eth0")
	eventually(t, "the warning gone", func() bool { return len(networkWarnings(t, w, "bridge")) == 0 })

	// A route that is there when the daemon starts is warned about too.
	w.MustInHost(t, "ip", "route", "add", "172.17.2.0/24", "dev", "eth0", "table", "50")
	d.Stop()
	d = w.Start(t)
	eventually(t, "the warning after a restart", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	// Deleting it clears the warning, though the watcher only saw it in the start-up scan.
	w.MustInHost(t, "ip", "route", "del", "172.17.2.0/24", "table", "50")
	eventually(t, "the warning gone", func() bool { return len(networkWarnings(t, w, "bridge")) == 0 })

	// A VPN's interface that goes away takes its routes along, and IPv4
	// says nothing of the routes: the warning goes with the interface,
	// whether the route was seen arriving or in the start-up scan.
	w.MustInHost(t, "ip", "link", "add", "vpn0", "type", "veth", "peer", "name", "vpn0p")
	w.MustInHost(t, "ip", "link", "set", "vpn0", "up")
	w.MustInHost(t, "ip", "route", "add", "172.17.3.0/24", "dev", "vpn0")
	eventually(t, "a warning for vpn0's route", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	w.MustInHost(t, "ip", "link", "del", "vpn0")
	eventually(t, "vpn0's warning gone with it", func() bool { return len(networkWarnings(t, w, "bridge")) == 0 })
	w.MustInHost(t, "ip", "link", "add", "vpn1", "type", "veth", "peer", "name", "vpn1p")
	w.MustInHost(t, "ip", "link", "set", "vpn1", "up")
	w.MustInHost(t, "ip", "route", "add", "172.17.4.0/24", "dev", "vpn1", "table", "60")
	d.Stop()
	d = w.Start(t)
	eventually(t, "vpn1's warning after a restart", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	w.MustInHost(t, "ip", "link", "del", "vpn1")
	eventually(t, "vpn1's warning gone with it", func() bool { return len(networkWarnings(t, w, "bridge")) == 0 })
	if !strings.Contains(daemonLog(t, d), "overlapping host routes removed with their interface") {
		t.Errorf("the daemon did not log why the warning went:\n%s", daemonLog(t, d))
	}
	// A VPN that reconnects: its device is made again under the same
	// name, with the same route, before the old device's deletion is read.
	// The warning is about the new one, and stays.
	w.MustInHost(t, "sh", "-c", "ip link add vpn2 type veth peer name vpn2p && ip link set vpn2 up && ip route add 172.17.5.0/24 dev vpn2")
	eventually(t, "a warning for vpn2's route", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	w.MustInHost(t, "sh", "-c", "ip link del vpn2 && ip link add vpn2 type veth peer name vpn2p && ip link set vpn2 up && ip route add 172.17.5.0/24 dev vpn2")
	time.Sleep(time.Second) // the link watcher reads its burst and rests 0.1 s
	if got := networkWarnings(t, w, "bridge"); len(got) != 1 || !strings.Contains(got[0], "dev vpn2") {
		t.Errorf("warnings after vpn2 reconnected = %q, want the one of its route", got)
	}
	w.MustInHost(t, "ip", "link", "del", "vpn2")
	eventually(t, "vpn2's warning gone with it", func() bool { return len(networkWarnings(t, w, "bridge")) == 0 })

	// More route changes than the route socket holds, while the daemon
	// cannot read (stopped): the subscription ends with ENOBUFS, and the
	// daemon follows the routes again: a later overlap is still noticed.
	var batch strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&batch, "route add 10.222.%d.%d/32 dev eth0 table 77\n", i/250, i%250)
	}
	batchFile := filepath.Join(w.Dir, "routes.batch")
	if err := os.WriteFile(batchFile, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := w.InHost(t, "ip", "-batch", batchFile)
	syscall.Kill(d.Pid(), syscall.SIGCONT)
	if code != 0 {
		t.Fatalf("ip -batch: %s", errOut)
	}
	eventually(t, "the route watcher following again", func() bool {
		return strings.Contains(daemonLog(t, d), "following the host's routes again")
	})
	w.MustInHost(t, "ip", "route", "add", "172.17.7.0/24", "dev", "eth0")
	eventually(t, "a warning after the watcher came back", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	w.MustInHost(t, "ip", "route", "del", "172.17.7.0/24", "dev", "eth0")
	eventually(t, "that warning gone", func() bool { return len(networkWarnings(t, w, "bridge")) == 0 })

	// A route in another table keeps new networks off its subnet.
	w.MustInHost(t, "ip", "route", "add", "172.18.0.0/24", "dev", "eth0", "table", "100")
	w.MustBerth(t, "network", "create", "avoid")
	n, _ := inspectNetwork(t, w.Berth, "avoid")
	if got := n.IPAM.Config[0].Subnet; got == "172.18.0.0/16" {
		t.Errorf("network avoid took %s, which a route in table 100 overlaps", got)
	}
	// A subnet the user chooses over a route that was there first: the
	// create answer carries the warning (Docker's Warning field).
	w.MustInHost(t, "ip", "route", "add", "10.93.0.0/24", "dev", "eth0")
	out, err := reliability.NewClient(w.Socket).Want(http.MethodPost, "/networks/create",
		map[string]any{"Name": "vpnnet", "IPAM": map[string]any{"Config": []map[string]string{{"Subnet": "10.93.0.0/16"}}}}, http.StatusCreated)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Warning string }
	if err := json.Unmarshal(out, &created); err != nil || !strings.Contains(created.Warning, `route 10.93.0.0/24 dev eth0 overlaps network "vpnnet"`) {
		t.Errorf("create over a route answered %s, want the overlap in Warning", out)
	}
	// An IPv6 route over a network's IPv6 subnet, alike.
	w.MustBerth(t, "network", "create", "--ipv6", "--subnet", "fd00:e2a::/64", "six")
	w.MustInHost(t, "ip", "-6", "route", "add", "fd00:e2a::/56", "dev", "eth0")
	eventually(t, "an IPv6 warning in network inspect", func() bool { return len(networkWarnings(t, w, "six")) == 1 })
	if warn := networkWarnings(t, w, "six")[0]; !strings.Contains(warn, `route fd00:e2a::/56 dev eth0 overlaps network "six" (fd00:e2a::/64)`) {
		t.Errorf("IPv6 warning = %q", warn)
	}
	w.MustInHost(t, "ip", "-6", "route", "del", "fd00:e2a::/56", "dev", "eth0")
	eventually(t, "the IPv6 warning gone", func() bool { return len(networkWarnings(t, w, "six")) == 0 })
	// The docker CLI still reads the inspect (it ignores the extra field).
	w.MustInHost(t, "ip", "route", "add", "172.17.1.0/24", "dev", "eth0")
	eventually(t, "a warning in network inspect", func() bool { return len(networkWarnings(t, w, "bridge")) == 1 })
	if _, errOut, code := w.Docker(t, "network", "inspect", "bridge"); code != 0 {
		t.Errorf("docker network inspect with a warning: exit %d: %s", code, errOut)
	}
}

func networkWarnings(t *testing.T, w *testworld.World, name string) []string {
	t.Helper()
	out := w.MustBerth(t, "network", "inspect", name)
	var got []struct{ Warnings []string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("decode network inspect: %v\n%s", err, out)
	}
	return got[0].Warnings
}

// hostEnd is the name of the host end of ctr's eth0 in the host namespace.
func hostEnd(t *testing.T, w *testworld.World, ctr string) string {
	t.Helper()
	index := strings.TrimSpace(w.MustBerth(t, "exec", ctr, "cat", "/sys/class/net/eth0/iflink"))
	out, errOut, code := w.InHost(t, "ip", "-o", "link", "show")
	if code != 0 {
		t.Fatalf("ip link: %s", errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if i, rest, ok := strings.Cut(line, ": "); ok && i == index {
			name, _, _ := strings.Cut(rest, ":")
			name, _, _ = strings.Cut(name, "@")
			return name
		}
	}
	t.Fatalf("no host link with index %s:\n%s", index, out)
	return ""
}

// TestLinksHealLive: a bridge or a veth of berth's deleted, set down or
// taken off its bridge by hand, or a bridge's address flushed, while the
// daemon runs, is mended at once (link notifications), as a restart
// would mend it: the containers reach each other, their gateway and the
// outside again. Docker leaves them cut off until its next restart.
// berth's own link changes (run, connect, disconnect, stop, network rm)
// are not mended.
func TestLinksHealLive(t *testing.T) {
	w, d := startWorld(t)
	w.MustBerth(t, "network", "create", "--subnet", "10.78.0.0/24", "-o", "com.docker.network.bridge.name=br-live", "live")
	runSleeper(t, w, "l1", "--network", "live", "--ip", "10.78.0.11")
	runSleeper(t, w, "l2", "--network", "live", "--ip", "10.78.0.12")
	runSleeper(t, w, "c1")
	gw, l2 := netip.MustParseAddr("10.78.0.1"), netip.MustParseAddr("10.78.0.12")
	if !pings(t, w, "l1", l2) || !pings(t, w, "l1", gw) {
		t.Fatal("l1 cannot reach l2 and the gateway before the test")
	}
	if got := fetchAnswer(t, w, "c1"); got != "you are 198.51.100.2\n" {
		t.Fatalf("c1 reached the outside as %q before the test", got)
	}
	if strings.Contains(daemonLog(t, d), "put back a bridge's subnet route") {
		t.Errorf("the daemon put back a subnet route before anyone deleted one:\n%s", daemonLog(t, d))
	}
	mends := func() int { return strings.Count(daemonLog(t, d), "mending them") }
	for _, tc := range []struct {
		name string
		cmd  func() []string
	}{
		{"bridge set down", func() []string { return []string{"ip", "link", "set", "br-live", "down"} }},
		{"l2's veth deleted", func() []string { return []string{"ip", "link", "del", hostEnd(t, w, "l2")} }},
		{"l1's veth taken off the bridge", func() []string { return []string{"ip", "link", "set", hostEnd(t, w, "l1"), "nomaster"} }},
		{"l1's veth set down", func() []string { return []string{"ip", "link", "set", hostEnd(t, w, "l1"), "down"} }},
		{"l2's veth moved to another bridge", func() []string {
			if _, errOut, code := w.InHost(t, "ip", "link", "add", "adminbr", "type", "bridge"); code != 0 {
				t.Fatalf("ip link add adminbr: %s", errOut)
			}
			return []string{"ip", "link", "set", hostEnd(t, w, "l2"), "master", "adminbr"}
		}},
		{"bridge's address flushed", func() []string { return []string{"ip", "addr", "flush", "dev", "br-live"} }},
		// Without the route, the host's answers to the containers leave by
		// its default route: l1 no longer reaches the gateway.
		{"bridge's subnet route deleted", func() []string { return []string{"ip", "route", "del", "10.78.0.0/24", "dev", "br-live"} }},
		{"bridge deleted", func() []string { return []string{"ip", "link", "del", "br-live"} }},
	} {
		before := mends()
		cmd := tc.cmd()
		if _, errOut, code := w.InHost(t, cmd...); code != 0 {
			t.Fatalf("%s: %s", strings.Join(cmd, " "), errOut)
		}
		if !pings(t, w, "l1", l2) || !pings(t, w, "l1", gw) || !pings(t, w, "l2", gw) {
			out, _, _ := w.InHost(t, "ip", "-d", "link")
			t.Fatalf("after %s (%s), l1 and l2 do not reach each other and the gateway again; host links:\n%s\ndaemon log:\n%s",
				tc.name, strings.Join(cmd, " "), out, daemonLog(t, d))
		}
		if mends() == before {
			t.Errorf("after %s, the daemon did not log a mend", tc.name)
		}
	}
	if out, _, _ := w.InHost(t, "ip", "-br", "addr", "show", "br-live"); !strings.Contains(out, "10.78.0.1/24") || !strings.Contains(out, "UP") {
		t.Errorf("br-live after the mends: %q, want it up with 10.78.0.1/24", out)
	}
	// The default bridge too: c1 reaches the outside again.
	w.InHost(t, "ip", "link", "del", "berth0")
	if got := fetchAnswer(t, w, "c1"); got != "you are 198.51.100.2\n" {
		t.Errorf("after berth0 was deleted and mended, c1 reached the outside as %q", got)
	}

	for _, line := range strings.Split(daemonLog(t, d), "\n") {
		if strings.Contains(line, "links mended") {
			t.Log(line)
		}
	}

	// berth's own changes are not mended.
	// Quiet for longer than the pacer's wait: past 10 passes in 10 s (as
	// here) a pass waits a second before it starts.
	eventually(t, "the mends settle", func() bool { before := mends(); time.Sleep(1500 * time.Millisecond); return mends() == before })
	before := mends()
	w.MustBerth(t, "network", "connect", "live", "c1")
	w.MustBerth(t, "network", "disconnect", "live", "c1")
	w.MustBerth(t, "stop", "-t", "1", "l2")
	w.MustBerth(t, "rm", "-f", "l1", "l2")
	w.MustBerth(t, "network", "rm", "live")
	w.MustBerth(t, "network", "create", "quiet")
	w.MustBerth(t, "network", "rm", "quiet")
	time.Sleep(300 * time.Millisecond) // past the watcher's settling
	if after := mends(); after != before {
		t.Errorf("berth's own link changes were mended: %d mends before, %d after:\n%s", before, after, daemonLog(t, d))
	}
}

// TestLinksHealAfterAFight: a bridge, then a veth, deleted over and over
// by another program (faster than berth makes them again, so some are
// deleted before berth has tagged them and the deletion goes unseen): once
// the fight stops, everything is mended (failed passes are tried again),
// and the network shows no route warning for its own bridge's route.
func TestLinksHealAfterAFight(t *testing.T) {
	w, d := startWorld(t)
	w.MustBerth(t, "network", "create", "--subnet", "10.79.0.0/24", "-o", "com.docker.network.bridge.name=br-fight", "fight")
	runSleeper(t, w, "f1", "--network", "fight", "--ip", "10.79.0.11")
	runSleeper(t, w, "f2", "--network", "fight", "--ip", "10.79.0.12")
	gw, f2 := netip.MustParseAddr("10.79.0.1"), netip.MustParseAddr("10.79.0.12")
	if !pings(t, w, "f1", f2) {
		t.Fatal("f1 cannot reach f2 before the test")
	}
	fight := func(link string) {
		w.InHost(t, "sh", "-c", "for i in $(seq 60); do ip link del "+link+" 2>/dev/null; sleep 0.01; done")
	}
	fight("br-fight")
	if !pings(t, w, "f1", f2) || !pings(t, w, "f1", gw) {
		out, _, _ := w.InHost(t, "ip", "-br", "link")
		t.Fatalf("after the bridge fight, f1 does not reach f2 and the gateway; host links:\n%s\ndaemon log:\n%s", out, daemonLog(t, d))
	}
	fight(hostEnd(t, w, "f2"))
	if !pings(t, w, "f1", f2) || !pings(t, w, "f2", gw) {
		out, _, _ := w.InHost(t, "ip", "-br", "link")
		t.Fatalf("after the veth fight, f1 and f2 do not reach each other and the gateway; host links:\n%s\ndaemon log:\n%s", out, daemonLog(t, d))
	}
	if warnings := networkWarnings(t, w, "fight"); len(warnings) != 0 {
		t.Errorf("network inspect warns after the fight: %q", warnings)
	}
}
