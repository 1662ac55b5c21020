package e2e

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestHostFirewallDroppingForwards: a host whose iptables FORWARD policy
// is DROP (as Docker and ufw leave it) drops what berth forwards, and
// berth, which never writes into another table, says so in docker info's
// warnings and in its log at start, with the rules to add. Once they
// are added the warning goes and the containers reach the outside and
// answer on their published ports; berth's own rules still hold. With
// br_netfilter (bridge-nf-call-iptables, on in every namespace of a
// kernel that has it built in) the chain also sees the containers'
// traffic to each other on one bridge, internal networks' too: it is
// named "between".
func TestHostFirewallDroppingForwards(t *testing.T) {
	w, d := startWorld(t)
	if _, _, code := w.InHost(t, "sh", "-c", "grep -qx 1 /proc/sys/net/bridge/bridge-nf-call-iptables"); code != 0 {
		w.MustInHost(t, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")
	}
	runDockerSleeper(t, w, "c1")
	runDockerSleeper(t, w, "c2")
	intID := strings.TrimSpace(mustDocker(t, w, "network", "create", "--internal", "int1"))
	runDockerSleeper(t, w, "i1", "--network", "int1")
	runDockerSleeper(t, w, "i2", "--network", "int1")
	intBridge := "br-" + intID[:12]
	pings := func(from, to, network string) bool {
		_, _, code := w.Docker(t, "exec", from, "ping", "-c", "1", "-W", "2", networkIP(t, w, to, network).String())
		return code == 0
	}
	if !pings("c1", "c2", "bridge") || !pings("i1", "i2", "int1") {
		t.Fatal("the containers of one bridge do not reach each other before any host firewall")
	}
	mustDocker(t, w, "run", "-d", "--name", "web", "-p", "8080:80", testworld.BusyboxImage,
		"sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
	published := func() string {
		out, _, _ := w.InOutside(t, "timeout", "3", "busybox", "wget", "-q", "-O", "-", "http://"+testworld.HostAddr.String()+":8080/")
		return out
	}
	eventually(t, "the published port answers", func() bool { return published() == "published\n" })
	if info := mustDockerCombined(t, w, "info"); strings.Contains(info, "drops what berth forwards") {
		t.Fatalf("a warning before any host firewall:\n%s", info)
	}

	w.MustInHost(t, "iptables", "-P", "FORWARD", "DROP")
	info := mustDockerCombined(t, w, "info")
	for _, want := range []string{
		"WARNING: table ip filter, chain FORWARD (policy drop) drops what berth forwards through " + defaultBridge + " (out, in, between), " + intBridge + " (between)",
		"iptables -I FORWARD -i " + defaultBridge + " -j ACCEPT; iptables -I FORWARD -o " + defaultBridge + " -j ACCEPT",
		"iptables -I FORWARD -i " + intBridge + " -j ACCEPT",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("docker info lacks %q:\n%s", want, info)
		}
	}
	if got := fetch(t, w, "c1"); got != "" {
		t.Errorf("with FORWARD policy DROP c1 still reached the outside (%q): the warning would be wrong", got)
	}
	if got := published(); got != "" {
		t.Errorf("with FORWARD policy DROP the published port answered %q", got)
	}
	if pings("c1", "c2", "bridge") || pings("i1", "i2", "int1") {
		t.Error("with FORWARD policy DROP the containers of one bridge still reach each other: the warning's \"between\" would be wrong")
	}
	d.Stop()
	d = w.Start(t)
	if log, _ := os.ReadFile(d.LogPath); !strings.Contains(string(log), "table ip filter, chain FORWARD (policy drop) drops what berth forwards through "+defaultBridge+" (out, in, between)") {
		t.Errorf("the start did not log the warning:\n%s", log)
	}

	// Half the answer: the warning stays, for what is still dropped.
	w.MustInHost(t, "iptables", "-I", "FORWARD", "-o", defaultBridge, "-j", "ACCEPT")
	if info := mustDockerCombined(t, w, "info"); !strings.Contains(info, "drops what berth forwards through "+defaultBridge+" (out), "+intBridge+" (between) ") {
		t.Errorf("with -o %s alone, docker info does not say the traffic out is still dropped:\n%s", defaultBridge, info)
	}
	w.MustInHost(t, "iptables", "-I", "FORWARD", "-i", defaultBridge, "-j", "ACCEPT")
	if info := mustDockerCombined(t, w, "info"); !strings.Contains(info, "drops what berth forwards through "+intBridge+" (between)") {
		t.Errorf("with %s accepted, docker info does not name the internal network's bridge:\n%s", defaultBridge, info)
	}
	w.MustInHost(t, "iptables", "-I", "FORWARD", "-i", intBridge, "-o", intBridge, "-j", "ACCEPT")
	if info := mustDockerCombined(t, w, "info"); strings.Contains(info, "drops what berth forwards") {
		t.Errorf("the warning stayed after the rules it asks for:\n%s", info)
	}
	if !pings("c1", "c2", "bridge") || !pings("i1", "i2", "int1") {
		t.Error("after the rules the containers of one bridge do not reach each other")
	}
	if got := fetchAnswer(t, w, "c1"); got != "you are "+testworld.HostAddr.String()+"\n" {
		t.Errorf("c1 → outside after the rules: %q", got)
	}
	eventually(t, "the published port answers after the rules", func() bool { return published() == "published\n" })
	// berth's own table still decides: the outside cannot reach c1's
	// address directly, whatever iptables' -o berth0 ACCEPT says.
	c1 := containerIP(t, w, "c1")
	if _, errOut, code := w.InOutside(t, "ip", "route", "replace", "172.17.0.0/16", "via", testworld.HostAddr.String()); code != 0 {
		t.Fatalf("route to the containers from the outside: %s", errOut)
	}
	if _, _, code := w.InOutside(t, "ping", "-c", "1", "-W", "2", c1.String()); code == 0 {
		t.Errorf("the outside pings %s directly: the accept in iptables overrode berth's drop", c1)
	}
}

// TestOwnTableFiltersPublishedPorts: the nftables answer to Docker's
// DOCKER-USER chain, as the README gives it: a table of the user's with a
// forward chain ahead of berth's drops traffic to a published port by its
// original (host) port, so the port stays closed to the outside while
// the host's own 127.0.0.1 (not forwarded) still reaches it; berth's
// restarts and heals leave that table alone.
func TestOwnTableFiltersPublishedPorts(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "web", "-p", "8080:80", testworld.BusyboxImage,
		"sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
	published := func(from func(testing.TB, ...string) (string, string, int), addr string) string {
		out, _, _ := from(t, "timeout", "3", "busybox", "wget", "-q", "-O", "-", "http://"+addr+":8080/")
		return out
	}
	eventually(t, "the published port answers", func() bool { return published(w.InOutside, testworld.HostAddr.String()) == "published\n" })
	// Only the outside's own network may reach the port: it still does
	// (the rule matches the original direction alone, so the replies,
	// which come from the container, pass).
	outsideNet := netip.PrefixFrom(testworld.HostAddr, 24).Masked().String()
	w.MustInHost(t, "nft", "add table inet mine; add chain inet mine forward { type filter hook forward priority filter - 1; }; "+
		"add rule inet mine forward ct direction original ct status dnat meta l4proto tcp ct original proto-dst 8080 ip saddr != "+outsideNet+" counter drop")
	if got := published(w.InOutside, testworld.HostAddr.String()); got != "published\n" {
		t.Errorf("the user's rule let only %s in, and the outside, in it, got %q", outsideNet, got)
	}
	// Another network only: the outside is shut out.
	w.MustInHost(t, "nft", "flush chain inet mine forward; "+
		"add rule inet mine forward ct direction original ct status dnat meta l4proto tcp ct original proto-dst 8080 ip saddr != 192.0.2.0/24 counter drop")
	if got := published(w.InOutside, testworld.HostAddr.String()); got != "" {
		t.Errorf("the user's drop did not close the published port to the outside: %q", got)
	}
	if got := published(w.InHost, "127.0.0.1"); got != "published\n" {
		t.Errorf("the host's own 127.0.0.1:8080 after the user's drop: %q", got)
	}
	mine := w.MustInHost(t, "nft", "list", "table", "inet", "mine")
	w.MustInHost(t, "nft", "delete", "table", "inet", "berth") // berth heals its own table
	eventually(t, "berth's table back", func() bool {
		_, _, code := w.InHost(t, "nft", "list", "table", "inet", "berth")
		return code == 0
	})
	d.Stop()
	w.Start(t)
	if got := w.MustInHost(t, "nft", "list", "table", "inet", "mine"); zeroCounters(got) != zeroCounters(mine) {
		t.Errorf("berth's heal and restart changed the user's table:\n%s\nwas\n%s", got, mine)
	}
	if got := published(w.InOutside, testworld.HostAddr.String()); got != "" {
		t.Errorf("after berth's restart the outside reached the port again: %q", got)
	}
}

var counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// zeroCounters makes two listings of one table comparable.
func zeroCounters(s string) string { return counterRE.ReplaceAllString(s, "counter") }
