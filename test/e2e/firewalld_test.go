package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/testworld"
)

// TestFirewalld: on a host where firewalld runs (Fedora, RHEL), whose
// forward chain rejects what comes from an interface in no zone, berth
// binds its bridges to firewalld's trusted zone over D-Bus, as netavark
// does: containers reach the outside, published ports answer, and docker
// info has no warning, over IPv4 and IPv6 (moby#49680). A firewall-cmd --reload (which forgets runtime
// bindings) and a restart of firewalld are followed by the bindings
// again; a removed network's bridge is unbound; berth's own drops still
// hold (the outside cannot reach a container directly).
func TestFirewalld(t *testing.T) {
	w := testworld.New(t)
	fwd := nstest.StartFirewalld(t, w.HostNetns())
	w.DaemonEnv = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + fwd.Bus}
	d := w.Start(t)
	w.Busybox(t)

	trusted := func() []string { return strings.Fields(fwd.MustCmd("--zone=trusted", "--list-interfaces")) }
	eventually(t, "the default bridge is bound after the start", func() bool { return slices.Contains(trusted(), defaultBridge) })
	mustDocker(t, w, "network", "create", "-o", "com.docker.network.bridge.name=br-fw", "fwnet")
	eventually(t, "br-fw is bound after network create", func() bool { return slices.Contains(trusted(), "br-fw") })
	runDockerSleeper(t, w, "c1")
	runDockerSleeper(t, w, "c2", "--network", "fwnet")
	mustDocker(t, w, "run", "-d", "--name", "web", "-p", "8080:80", testworld.BusyboxImage,
		"sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
	published := func() string {
		out, _, _ := w.InOutside(t, "timeout", "3", "busybox", "wget", "-q", "-O", "-", "http://"+testworld.HostAddr.String()+":8080/")
		return out
	}
	reachable := func(when string) {
		t.Helper()
		for _, c := range []string{"c1", "c2"} {
			if got := fetchAnswer(t, w, c); got != "you are "+testworld.HostAddr.String()+"\n" {
				t.Errorf("%s: %s → outside: %q", when, c, got)
			}
		}
		eventually(t, when+": the published port answers", func() bool { return published() == "published\n" })
	}
	reachable("with firewalld")

	// IPv6 too (moby#49680: IPv6 broke beside firewalld): a dual-stack
	// network's container reaches the outside over IPv6 and answers on
	// its published port to an IPv6 client.
	mustDocker(t, w, "network", "create", "--ipv6", "--subnet", "fd00:e30::/64", "-o", "com.docker.network.bridge.name=br-fw6", "fw6")
	mustDocker(t, w, "run", "-d", "--name", "web6", "--network", "fw6", "-p", "8086:80", testworld.BusyboxImage,
		"sh", "-c", "mkdir -p /www && echo published6 > /www/index.html && exec httpd -f -p 80 -h /www")
	var got6 string
	if !retried(func() bool {
		got6, _, _ = w.Docker(t, "exec", "web6", "timeout", "10", "wget", "-q", "-O", "-", "http://["+testworld.ServerAddr6.String()+"]/")
		return got6 == "you are "+testworld.HostAddr6.String()+"\n"
	}) {
		t.Errorf("web6 → outside over IPv6 beside firewalld: %q", got6)
	}
	eventually(t, "the published port answers an IPv6 client", func() bool {
		out, _, _ := w.InOutside(t, "timeout", "3", "busybox", "wget", "-q", "-O", "-", "http://["+testworld.HostAddr6.String()+"]:8086/")
		return out == "published6\n"
	})
	if info := mustDockerCombined(t, w, "info"); strings.Contains(info, "drops what berth forwards") {
		t.Errorf("docker info warns with the bridges in the trusted zone:\n%s", info)
	}
	if got := mustDocker(t, w, "info", "-f", "{{.FirewallBackend.Driver}}"); got != "nftables+firewalld\n" {
		t.Errorf("docker info's firewall backend beside firewalld: %q", got)
	}

	// Unbound by hand, the bridge is cut off: the zone is what lets it out.
	fwd.MustCmd("--zone=trusted", "--remove-interface="+defaultBridge)
	if got := fetch(t, w, "c1"); got != "" {
		t.Errorf("c1 reached the outside with %s in no zone (%q): the test proves nothing", defaultBridge, got)
	}
	if info := mustDockerCombined(t, w, "info"); !strings.Contains(info, "table inet firewalld") {
		t.Errorf("docker info does not name firewalld's table with %s in no zone:\n%s", defaultBridge, info)
	}

	fwd.MustCmd("--reload")
	eventually(t, "the bridges are bound again after a reload", func() bool {
		got := trusted()
		return slices.Contains(got, defaultBridge) && slices.Contains(got, "br-fw")
	})
	reachable("after firewall-cmd --reload")
	if log, _ := os.ReadFile(d.LogPath); !strings.Contains(string(log), "firewalld reloaded") {
		t.Errorf("the daemon did not log firewalld's reload:\n%s", log)
	}
	if got := mustDocker(t, w, "info", "-f", "{{range .FirewallBackend.Info}}{{index . 0}} {{end}}"); !strings.Contains(got, "ReloadedAt") {
		t.Errorf("docker info's firewall backend after a reload: %q, want its ReloadedAt", got)
	}

	fwd.Stop()
	fwd.Start()
	eventually(t, "the bridges are bound again after firewalld restarted", func() bool {
		got := trusted()
		return slices.Contains(got, defaultBridge) && slices.Contains(got, "br-fw")
	})
	reachable("after firewalld restarted")

	// berth's own table still decides: the outside cannot reach c1 directly.
	c1 := containerIP(t, w, "c1")
	if _, errOut, code := w.InOutside(t, "ip", "route", "replace", "172.17.0.0/16", "via", testworld.HostAddr.String()); code != 0 {
		t.Fatalf("route to the containers from the outside: %s", errOut)
	}
	if _, _, code := w.InOutside(t, "ping", "-c", "1", "-W", "2", c1.String()); code == 0 {
		t.Errorf("the outside pings %s directly: the trusted zone overrode berth's drop", c1)
	}

	// A daemon started again takes the bindings it finds as its own:
	// network rm still unbinds the bridge.
	d.Stop()
	d = w.Start(t)
	mustDocker(t, w, "rm", "-f", "c2")
	mustDocker(t, w, "network", "rm", "fwnet")
	eventually(t, "br-fw is unbound after network rm", func() bool { return !slices.Contains(trusted(), "br-fw") })
	// A network removed just before the daemon stops is unbound too.
	mustDocker(t, w, "network", "create", "-o", "com.docker.network.bridge.name=br-last", "lastnet")
	eventually(t, "br-last is bound", func() bool { return slices.Contains(trusted(), "br-last") })
	mustDocker(t, w, "network", "rm", "lastnet")
	d.Stop()
	if got := trusted(); slices.Contains(got, "br-last") {
		t.Errorf("a network removed just before the stop left its bridge bound: %v", got)
	}
	if got := trusted(); !slices.Contains(got, defaultBridge) {
		t.Errorf("the daemon's stop unbound %s, whose containers run on: %v", defaultBridge, got)
	}
	// The default bridge renamed (once it is empty): the old name is
	// unbound, the new one bound.
	d = w.Start(t)
	mustDocker(t, w, "rm", "-f", "c1", "web")
	d.Stop()
	d = w.Start(t, "--bridge-name", "br-renamed")
	eventually(t, "the renamed default bridge is bound and the old name unbound", func() bool {
		got := trusted()
		return slices.Contains(got, "br-renamed") && !slices.Contains(got, defaultBridge)
	})
}
