package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestIPv6DualStackNetwork: with the docker CLI, a network made with
// --ipv6 gives its containers an IPv6 address beside the IPv4 one (the
// lowest free, or --ip6), an IPv6 default route via the bridge, AAAA
// answers for their names, /etc/hosts lines, and a way out to the
// outside world's IPv6 server through masquerade; docker inspect shows
// it all as Docker does; a daemon restart keeps the addresses; an
// --internal IPv6 network has no way out; a network without --ipv6
// gives its containers no IPv6 address.
func TestIPv6DualStackNetwork(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "network", "create", "--ipv6", "--subnet", "fd00:e2e::/64", "v6net")
	mustDocker(t, w, "network", "create", "--ipv6", "auto6")
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{.EnableIPv4}} {{.EnableIPv6}} {{len .IPAM.Config}} {{(index .IPAM.Config 1).Subnet}} {{(index .IPAM.Config 1).Gateway}}", "v6net")); got != "true true 2 fd00:e2e::/64 fd00:e2e::1" {
		t.Errorf("v6net: %q", got)
	}
	auto := strings.Fields(mustDocker(t, w, "network", "inspect", "-f", "{{(index .IPAM.Config 1).Subnet}}", "auto6"))
	if len(auto) != 1 || !strings.HasPrefix(auto[0], "fd") || !strings.HasSuffix(auto[0], "::/64") {
		t.Errorf("auto6's IPv6 subnet = %q, want a ULA /64", auto)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "network", "ls", "--filter", "name=v6net", "--format", "{{.IPv6}}")); got != "true" {
		t.Errorf("network ls IPv6 column = %q", got)
	}

	for _, c := range [][]string{{"v6a"}, {"v6b", "--ip6", "fd00:e2e::99"}} {
		args := append([]string{"run", "-d", "--name", c[0], "--network", "v6net"}, c[1:]...)
		mustDocker(t, w, append(args, testworld.BusyboxImage, "sleep", "3600")...)
	}
	if got := dockerInspect(t, w, `{{with index .NetworkSettings.Networks "v6net"}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} via {{.IPv6Gateway}}{{end}}`, "v6a"); got != "fd00:e2e::2/64 via fd00:e2e::1" {
		t.Errorf("a's IPv6 = %q", got)
	}
	if got := dockerInspect(t, w, `{{with index .NetworkSettings.Networks "v6net"}}{{.GlobalIPv6Address}} {{.IPAMConfig.IPv6Address}}{{end}}`, "v6b"); got != "fd00:e2e::99 fd00:e2e::99" {
		t.Errorf("b's IPv6 and --ip6 = %q", got)
	}
	if got := mustDocker(t, w, "network", "inspect", "-f", `{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}`, "v6net"); !strings.Contains(got, "v6a=fd00:e2e::2/64") || !strings.Contains(got, "v6b=fd00:e2e::99/64") {
		t.Errorf("network inspect Containers: %q", got)
	}

	if out := mustDocker(t, w, "exec", "v6a", "ip", "-6", "route", "show", "default"); !strings.HasPrefix(out, "default via fd00:e2e::1 ") {
		t.Errorf("a's IPv6 default route = %q", out)
	}
	// IPv6 is off on an interface of an IPv4-only network, as moby's
	// setInterfaceIPv6 (CVE-2024-32473: else a neighbour's forged router
	// advertisement gives it an address and a route), and on only there.
	mustDocker(t, w, "network", "connect", "bridge", "v6a")
	if got := mustDocker(t, w, "exec", "v6a", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "/proc/sys/net/ipv6/conf/eth1/disable_ipv6"); got != "0\n1\n" {
		t.Errorf("disable_ipv6 of v6net's eth0 and bridge's eth1: %q, want 0 and 1", got)
	}
	// On the IPv6 network its routes are berth's: router advertisements
	// (a neighbour's, forged) are refused.
	if got := mustDocker(t, w, "exec", "v6a", "cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra"); got != "0\n" {
		t.Errorf("accept_ra of v6net's eth0: %q, want 0", got)
	}
	if got := mustDocker(t, w, "exec", "v6a", "ip", "-6", "-o", "addr", "show", "dev", "eth1"); got != "" {
		t.Errorf("IPv6 addresses on the IPv4-only eth1: %q", got)
	}
	mustDocker(t, w, "network", "disconnect", "bridge", "v6a")
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "v6a", "ping", "-6", "-c", "1", "-W", "2", "v6b")
		return code == 0
	}) {
		t.Errorf("a cannot ping b over IPv6 by name")
	}
	if out, _, _ := w.Docker(t, "exec", "v6a", "nslookup", "-type=AAAA", "v6b", "127.0.0.11"); !strings.Contains(out, "fd00:e2e::99") {
		t.Errorf("AAAA for b: %q", out)
	}
	if out := mustDocker(t, w, "exec", "v6a", "cat", "/etc/hosts"); !strings.Contains(out, "fd00:e2e::2\t") {
		t.Errorf("a's /etc/hosts lacks its IPv6 address:\n%s", out)
	}
	want := "you are " + testworld.HostAddr6.String() + "\n"
	fetch6 := func(name string) string {
		out, _, _ := w.Docker(t, "exec", name, "timeout", "10", "wget", "-q", "-O", "-", "http://["+testworld.ServerAddr6.String()+"]/")
		return out
	}
	var got string
	if !retried(func() bool { got = fetch6("v6a"); return got == want }) {
		t.Errorf("a → outside over IPv6: %q, want %q (masquerade to the host's address)", got, want)
	}

	// A restart keeps what was handed out.
	d.Stop()
	w.Start(t)
	mustDocker(t, w, "run", "-d", "--name", "v6c", "--network", "v6net", testworld.BusyboxImage, "sleep", "3600")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "v6net").GlobalIPv6Address}}`, "v6c"); got != "fd00:e2e::3" {
		t.Errorf("after a restart c got %q, want fd00:e2e::3", got)
	}
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "v6c", "ping", "-6", "-c", "1", "-W", "2", "fd00:e2e::2")
		return code == 0
	}) {
		t.Errorf("c cannot ping a over IPv6 after the restart")
	}

	// An internal IPv6 network leads nowhere; an IPv4-only one has IPv6 off.
	mustDocker(t, w, "network", "create", "--internal", "--ipv6", "--subnet", "fd00:e2f::/64", "int6")
	mustDocker(t, w, "run", "-d", "--name", "v6i", "--network", "int6", testworld.BusyboxImage, "sleep", "3600")
	if got := fetch6("v6i"); got != "" {
		t.Errorf("a container on an internal IPv6 network reached the outside: %q", got)
	}
	mustDocker(t, w, "network", "create", "v4net")
	mustDocker(t, w, "run", "-d", "--name", "v4c", "--network", "v4net", testworld.BusyboxImage, "sleep", "3600")
	// Docker writes disable_ipv6=1 there; berth turns the interface's
	// IPv6 address generation off before it is up (one netlink message
	// in the join's batch, no sysctl write): no IPv6 address either way.
	if out := strings.TrimSpace(mustDocker(t, w, "exec", "v4c", "ip", "-6", "addr", "show", "dev", "eth0")); out != "" {
		t.Errorf("eth0 of a container on an IPv4-only network has IPv6 addresses:\n%s", out)
	}

	// A container with IPv6 turned off gets no IPv6 address (moby's
	// CreateOptionDisableIPv6) and no IPv6 lines in /etc/hosts.
	mustDocker(t, w, "run", "-d", "--name", "v6off", "--network", "v6net", "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", testworld.BusyboxImage, "sleep", "3600")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "v6net").GlobalIPv6Address}}|{{(index .NetworkSettings.Networks "v6net").IPv6Gateway}}`, "v6off"); got != "|" {
		t.Errorf("v6off's IPv6 address and gateway = %q, want none", got)
	}
	if out := mustDocker(t, w, "exec", "v6off", "cat", "/etc/hosts"); strings.Contains(out, "::") {
		t.Errorf("v6off's /etc/hosts has IPv6 lines:\n%s", out)
	}

	// A dual-stack network outranks an IPv4-only one as the gateway, for
	// both families, and takes the published port with it (moby's
	// TestGatewaySelection).
	mustDocker(t, w, "run", "-d", "--name", "gwsel", "--network", "v4net", "-p", "8096:80", testworld.BusyboxImage, "sleep", "3600")
	mustDocker(t, w, "network", "connect", "v6net", "gwsel")
	v6gw4 := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "v6net"))
	if out := mustDocker(t, w, "exec", "gwsel", "ip", "route", "show", "default"); !strings.HasPrefix(out, "default via "+v6gw4+" ") {
		t.Errorf("gwsel's IPv4 default route = %q, want via v6net's %s", out, v6gw4)
	}
	if out := mustDocker(t, w, "exec", "gwsel", "ip", "-6", "route", "show", "default"); !strings.HasPrefix(out, "default via fd00:e2e::1 ") {
		t.Errorf("gwsel's IPv6 default route = %q", out)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, "gwsel")); got != "8096" {
		t.Errorf("gwsel's port after the connect: %q", got)
	}

	mustDocker(t, w, "rm", "-f", "v6a", "v6b", "v6c", "v6i", "v4c", "v6off", "gwsel")
	for _, n := range []string{"v6net", "auto6", "int6", "v4net"} {
		mustDocker(t, w, "network", "rm", n)
	}
}

// TestDefaultBridgeIPv6: `berth daemon --ipv6 --fixed-cidr-v6` gives the
// default bridge IPv6, as dockerd's options do (host-gateway then names
// its IPv6 gateway too), and a restart without them takes it away again
// (the bridge device keeps no IPv6 gateway).
func TestDefaultBridgeIPv6(t *testing.T) {
	w, d := startWorld(t, "--ipv6", "--fixed-cidr-v6", "fd00:d0c::/64")
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{.EnableIPv6}} {{(index .IPAM.Config 1).Subnet}} {{(index .IPAM.Config 1).Gateway}}", "bridge")); got != "true fd00:d0c::/64 fd00:d0c::1" {
		t.Errorf("bridge with --ipv6: %q", got)
	}
	mustDocker(t, w, "run", "-d", "--name", "db6", testworld.BusyboxImage, "sleep", "3600")
	if got := dockerInspect(t, w, "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.IPv6Gateway}}", "db6"); got != "fd00:d0c::2 fd00:d0c::1" {
		t.Errorf("db6's legacy IPv6 fields: %q", got)
	}
	want := "you are " + testworld.HostAddr6.String() + "\n"
	var got string
	if !retried(func() bool {
		got, _, _ = w.Docker(t, "exec", "db6", "timeout", "10", "wget", "-q", "-O", "-", "http://["+testworld.ServerAddr6.String()+"]/")
		return got == want
	}) {
		t.Errorf("db6 → outside over IPv6: %q, want %q", got, want)
	}
	// host-gateway is both of the default bridge's gateways, as Docker
	// 28's default host-gateway-ips.
	hosts := mustDocker(t, w, "run", "--rm", "--add-host", "gw:host-gateway", testworld.BusyboxImage, "cat", "/etc/hosts")
	for _, want := range []string{bridgeGateway.String() + "\tgw\n", "fd00:d0c::1\tgw\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("/etc/hosts with --add-host gw:host-gateway lacks %q:\n%s", want, hosts)
		}
	}
	mustDocker(t, w, "rm", "-f", "db6")
	d.Stop()
	w.Start(t)
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{.EnableIPv6}} {{len .IPAM.Config}}", "bridge")); got != "false 1" {
		t.Errorf("bridge after a restart without --ipv6: %q", got)
	}
	if out, _, _ := w.InHost(t, "ip", "-6", "addr", "show", "dev", defaultBridge, "scope", "global"); strings.Contains(out, "fd00:d0c") {
		t.Errorf("the bridge kept its IPv6 gateway:\n%s", out)
	}
}

// TestUnusedIPv6Subnet: an IPv6 --subnet without --ipv6 gives the network
// no IPv6, and inspect shows it beside EnableIPv6 false, as Docker's does
// (the hint that --ipv6 is missing).
func TestUnusedIPv6Subnet(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "fd00:3::/64", "nov6")
	got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{.EnableIPv6}} {{len .IPAM.Config}} {{(index .IPAM.Config 1).Subnet}}", "nov6"))
	if got != "false 2 fd00:3::/64" {
		t.Errorf("inspect nov6: %q", got)
	}
	runDockerSleeper(t, w, "n6", "--network", "nov6")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "nov6").GlobalIPv6Address}}`, "n6"); got != "" {
		t.Errorf("n6 got the IPv6 address %q", got)
	}
}

// TestDefaultBridgeBIP6: dockerd's --bip6 is the default bridge's IPv6
// address and subnet, --fixed-cidr-v6 the range its containers get
// addresses from; the bridge device carries the address, and a container
// reaches it.
func TestDefaultBridgeBIP6(t *testing.T) {
	w, _ := startWorld(t, "--ipv6", "--bip6", "fd00:66::fe/64", "--fixed-cidr-v6", "fd00:66::100/120")
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{json (index .IPAM.Config 1)}}", "bridge")); got != `{"Subnet":"fd00:66::/64","IPRange":"fd00:66::100/120","Gateway":"fd00:66::fe"}` {
		t.Errorf("bridge with --bip6: %s", got)
	}
	runDockerSleeper(t, w, "b6")
	if got := dockerInspect(t, w, "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}", "b6"); got != "fd00:66::100/64 fd00:66::fe" {
		t.Errorf("b6's IPv6 address and gateway: %q", got)
	}
	if out := w.MustInHost(t, "ip", "-6", "addr", "show", "dev", defaultBridge, "scope", "global"); !strings.Contains(out, "fd00:66::fe/64") {
		t.Errorf("the bridge lacks fd00:66::fe/64:\n%s", out)
	}
	if _, errOut, code := w.Docker(t, "exec", "b6", "ping", "-6", "-c", "1", "-W", "5", "fd00:66::fe"); code != 0 {
		t.Errorf("b6 pings the bridge's --bip6 address: exit %d, %q", code, errOut)
	}
}

// TestIPv6PublishedPorts: a dual-stack container's published port
// answers IPv6 clients by DNAT, as Docker's ip6tables rules do, so the
// container sees the client's own IPv6 address; from the host's ::1 the
// daemon's proxy serves it (no DNAT to loopback in IPv6); containers of
// another network and the container itself reach it through the host's
// IPv6 address; rm withdraws it.
func TestIPv6PublishedPorts(t *testing.T) {
	w := startPortWorld(t)
	mustDocker(t, w.World, "network", "create", "--ipv6", "--subnet", "fd00:e2d::/64", "p6")
	mustDocker(t, w.World, "network", "create", "--ipv6", "--subnet", "fd00:e2c::/64", "q6")
	w.dockerPeer(t, "pub6", "--network", "p6", "-p", "8094:80")
	w.dockerPeer(t, "cli6", "--network", "q6")
	host6 := "[" + testworld.HostAddr6.String() + "]:8094"
	w.reach(t, "outside", "tcp", host6, testworld.GatewayAddr6.String())
	w.reach(t, "outside", "tcp", hostPort(8094), outsideAddr)
	w.reach(t, "host", "tcp", "[::1]:8094", "")
	w.reach(t, "container:cli6", "tcp", host6, "")
	w.reach(t, "container:pub6", "tcp", host6, "")
	mustDocker(t, w.World, "rm", "-f", "pub6")
	w.unreachable(t, "outside", "tcp", host6)
}

// TestIPv6OnlyNetwork: `docker network create --ipv6 --ipv4=false` makes
// an IPv6-only network, as Docker 28 does. Its containers have no IPv4
// address (inspect and the interface agree), reach each other by name
// over IPv6 and the outside world through the IPv6 masquerade; a port
// they publish answers on the host's IPv6 addresses (DNAT, the client's
// own address seen) and on [::1] (the proxy), and not on IPv4, where
// Docker publishes nothing for a container without an IPv4 address.
// --ip is refused in moby's words; IPv4 off without IPv6 too.
func TestIPv6OnlyNetwork(t *testing.T) {
	w := startPortWorld(t)
	if _, errOut, code := w.Docker(t, "network", "create", "--ipv4=false", "nofamily"); code == 0 || !strings.Contains(errOut, "IPv4 or IPv6 must be enabled") {
		t.Errorf("--ipv4=false without --ipv6: exit %d, %q", code, errOut)
	}
	mustDocker(t, w.World, "network", "create", "--ipv6", "--ipv4=false", "--subnet", "fd00:e2b::/64", "only6")
	if got := strings.TrimSpace(mustDocker(t, w.World, "network", "inspect", "-f", "{{.EnableIPv4}} {{.EnableIPv6}} {{len .IPAM.Config}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}", "only6")); got != "false true 1 fd00:e2b::/64 fd00:e2b::1" {
		t.Errorf("only6: %q", got)
	}
	w.dockerPeer(t, "o6pub", "--network", "only6", "-p", "8093:80")
	w.dockerPeer(t, "o6b", "--network", "only6")
	if got := dockerInspect(t, w.World, `{{with index .NetworkSettings.Networks "only6"}}{{.IPAddress}}|{{.Gateway}}|{{.GlobalIPv6Address}}|{{.IPv6Gateway}}{{end}}`, "o6pub"); got != "||fd00:e2b::2|fd00:e2b::1" {
		t.Errorf("o6pub's addresses = %q", got)
	}
	if out := strings.TrimSpace(mustDocker(t, w.World, "exec", "o6b", "ip", "-4", "addr", "show", "dev", "eth0")); out != "" {
		t.Errorf("eth0 of an IPv6-only container has IPv4 addresses:\n%s", out)
	}
	if out := strings.TrimSpace(mustDocker(t, w.World, "exec", "o6b", "ip", "-4", "route")); out != "" {
		t.Errorf("an IPv6-only container has IPv4 routes:\n%s", out)
	}
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "o6b", "ping", "-6", "-c", "1", "-W", "2", "o6pub")
		return code == 0
	}) {
		t.Errorf("o6b cannot ping o6pub by name")
	}
	want := "you are " + testworld.HostAddr6.String() + "\n"
	var got string
	if !retried(func() bool {
		got, _, _ = w.Docker(t, "exec", "o6b", "timeout", "10", "wget", "-q", "-O", "-", "http://["+testworld.ServerAddr6.String()+"]/")
		return got == want
	}) {
		t.Errorf("o6b → outside over IPv6: %q, want %q", got, want)
	}

	host6 := "[" + testworld.HostAddr6.String() + "]:8093"
	w.reach(t, "outside", "tcp", host6, testworld.GatewayAddr6.String())
	w.reach(t, "host", "tcp", "[::1]:8093", "")
	w.reach(t, "container:o6b", "tcp", host6, "")
	w.unreachable(t, "outside", "tcp", hostPort(8093))
	if out := strings.TrimSpace(mustDocker(t, w.World, "port", "o6pub")); out != "80/tcp -> [::]:8093" {
		t.Errorf("docker port = %q, want the IPv6 mapping alone", out)
	}

	mustDocker(t, w.World, "create", "--name", "o6ip", testworld.BusyboxImage, "sleep", "3600")
	if _, errOut, code := w.Docker(t, "network", "connect", "--ip", "10.1.2.3", "only6", "o6ip"); code == 0 || !strings.Contains(errOut, "no configured subnet contains IP address 10.1.2.3") {
		t.Errorf("connect --ip to an IPv6-only network: exit %d, %q", code, errOut)
	}
	mustDocker(t, w.World, "rm", "-f", "o6pub", "o6b", "o6ip")
	w.unreachable(t, "outside", "tcp", host6)
	mustDocker(t, w.World, "network", "rm", "only6")
}
