package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestEndpointDriverOptions: Docker 28's endpoint driver options, through
// the docker CLI: com.docker.network.endpoint.ifname names the
// container's interface (Compose's interface_name), and
// com.docker.network.endpoint.sysctls sets its sysctls (IFNAME standing
// for it), on run and on network connect; inspect keeps them; a sysctl
// naming eth0 is refused in moby's words.
func TestEndpointDriverOptions(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "lan")
	mustDocker(t, w, "network", "create", "wan")
	mustDocker(t, w, "run", "-d", "--name", "r1",
		"--network", "name=lan,driver-opt=com.docker.network.endpoint.ifname=lan0,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1",
		testworld.BusyboxImage, "sleep", "3600")
	mustDocker(t, w, "network", "connect", "--driver-opt", "com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.arp_ignore=2", "wan", "r1")
	links := mustDocker(t, w, "exec", "r1", "ip", "-o", "link", "show")
	if !strings.Contains(links, ": lan0@") || !strings.Contains(links, ": eth0@") {
		t.Errorf("r1's interfaces, want lan0 and eth0:\n%s", links)
	}
	for path, want := range map[string]string{
		"/proc/sys/net/ipv4/conf/lan0/log_martians": "1",
		"/proc/sys/net/ipv4/conf/eth0/arp_ignore":   "2",
		"/proc/sys/net/ipv4/conf/eth0/log_martians": "0",
	} {
		if got := strings.TrimSpace(mustDocker(t, w, "exec", "r1", "cat", path)); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if got := dockerInspect(t, w, `{{index (index .NetworkSettings.Networks "lan").DriverOpts "com.docker.network.endpoint.ifname"}}`, "r1"); got != "lan0" {
		t.Errorf("inspect's driver options: %q", got)
	}
	// The name and the sysctls come back with a restart of the container.
	mustDocker(t, w, "restart", "-t", "0", "r1")
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "r1", "cat", "/proc/sys/net/ipv4/conf/lan0/log_martians")); got != "1" {
		t.Errorf("after a restart lan0's log_martians = %q", got)
	}
	// Another network's automatic ethN makes way for a name asked for,
	// whatever the order of the joins.
	mustDocker(t, w, "run", "-d", "--name", "r2", "--network", "lan",
		"--network", "name=wan,driver-opt=com.docker.network.endpoint.ifname=eth0", testworld.BusyboxImage, "sleep", "3600")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "wan").IPAddress}}`, "r2"); got == "" {
		t.Error("r2 has no address on wan")
	}
	if out := mustDocker(t, w, "exec", "r2", "ip", "-o", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, dockerInspect(t, w, `{{(index .NetworkSettings.Networks "wan").IPAddress}}`, "r2")+"/") {
		t.Errorf("r2's eth0 is not its wan interface:\n%s", out)
	}
	// A name another network of a stopped container asks for is refused
	// at connect, not at its next start.
	mustDocker(t, w, "create", "--name", "r4", "--network", "name=lan,driver-opt=com.docker.network.endpoint.ifname=zz0", testworld.BusyboxImage, "true")
	if _, errOut, code := w.Docker(t, "network", "connect", "--driver-opt", "com.docker.network.endpoint.ifname=zz0", "wan", "r4"); code == 0 || !strings.Contains(errOut, "interface name zz0 is already in use in the container") {
		t.Errorf("connect of a stopped container asking a name taken: exit %d, %q", code, errOut)
	}
	// A sysctl the kernel has not: exit 125 with berth's words (the OS's
	// "no such file or directory" would make the docker CLI exit 127).
	if _, errOut, code := w.Docker(t, "run", "--rm", "--network", "name=lan,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.nonexistent=1",
		testworld.BusyboxImage, "true"); code != 125 || !strings.Contains(errOut, "does not exist in the container's network namespace") {
		t.Errorf("a sysctl the kernel has not: exit %d, %q", code, errOut)
	}
	// IPv6 turned off on the interface: no IPv6 address, the join works.
	mustDocker(t, w, "network", "create", "--ipv6", "--subnet", "fd00:e31::/64", "dual")
	mustDocker(t, w, "run", "-d", "--name", "r3", "--network", "name=dual,driver-opt=com.docker.network.endpoint.sysctls=net.ipv6.conf.IFNAME.disable_ipv6=1",
		testworld.BusyboxImage, "sleep", "3600")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "dual").GlobalIPv6Address}}`, "r3"); got != "" {
		t.Errorf("r3's IPv6 address %q with IPv6 off on its interface", got)
	}
	_, errOut, code := w.Docker(t, "run", "--rm", "--network", "name=lan,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.eth0.forwarding=1",
		testworld.BusyboxImage, "true")
	if code == 0 || !strings.Contains(errOut, "represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V'") {
		t.Errorf("a sysctl naming eth0: exit %d, %q", code, errOut)
	}
	// A name the kernel takes is taken, non-ASCII too (Docker passes it
	// on); a control character is refused at create, not at every start.
	if out := mustDocker(t, w, "run", "--rm", "--network", "name=lan,driver-opt=com.docker.network.endpoint.ifname=wlanü", testworld.BusyboxImage, "ip", "-o", "link", "show", "wlanü"); !strings.Contains(out, "wlanü") {
		t.Errorf("an interface named wlanü: %q", out)
	}
	if _, errOut, code := w.Docker(t, "create", "--network", "name=lan,driver-opt=com.docker.network.endpoint.ifname=x\x01y", testworld.BusyboxImage, "true"); code == 0 {
		t.Errorf("an interface name with a control character was taken at create: %q", errOut)
	}
	// --sysctl naming an interface (moby's handleSysctlBC): refused from
	// API 1.48 in moby's words; an older client's eth0 one moves to the
	// endpoint's driver option, with moby's warning, and applies; another
	// ethN is refused at create (it went to runc and failed the start).
	_, errOut, code = w.Docker(t, "run", "--rm", "--network", "lan", "--sysctl", "net.ipv4.conf.eth0.log_martians=1", testworld.BusyboxImage, "true")
	if code != 125 || !strings.Contains(errOut, `interface specific sysctl setting "net.ipv4.conf.eth0.log_martians" must be supplied using driver option 'com.docker.network.endpoint.sysctls'`) {
		t.Errorf("--sysctl net.ipv4.conf.eth0.log_martians=1 at API 1.50: exit %d, %q", code, errOut)
	}
	t.Setenv("DOCKER_API_VERSION", "1.47")
	out, errOut, code := w.Docker(t, "run", "--rm", "--network", "lan", "--sysctl", "net.ipv4.conf.eth0.log_martians=1", testworld.BusyboxImage, "cat", "/proc/sys/net/ipv4/conf/eth0/log_martians")
	if code != 0 || strings.TrimSpace(out) != "1" || !strings.Contains(errOut, `WARNING: Migrated sysctl "net.ipv4.conf.eth0.log_martians" to DriverOpts{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.IFNAME.log_martians=1"}.`) {
		t.Errorf("--sysctl net.ipv4.conf.eth0.log_martians=1 at API 1.47: exit %d, %q, %q", code, out, errOut)
	}
	_, errOut, code = w.Docker(t, "create", "--network", "lan", "--sysctl", "net.ipv4.conf.eth1.log_martians=1", testworld.BusyboxImage, "true")
	if code == 0 || !strings.Contains(errOut, "unable to determine network endpoint for sysctl net.ipv4.conf.eth1.log_martians") {
		t.Errorf("--sysctl naming eth1 at API 1.47: exit %d, %q", code, errOut)
	}
}
