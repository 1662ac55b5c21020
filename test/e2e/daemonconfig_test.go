package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/testworld"
)

// writeDaemonJSON writes a daemon.json into the world's directory (the
// host sees it there too) and returns its path.
func writeDaemonJSON(t *testing.T, w *testworld.World, name, body string) string {
	t.Helper()
	path := filepath.Join(w.Dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDaemonConfigFile: a daemon.json with dockerd's keys makes the
// default bridge (bip, fixed-cidr, mtu, icc, ip-masq, ip), the address
// pools new networks draw from, the options new networks get
// (default-network-opts) and containers' DNS (dns, dns-search, dns-opts),
// as the docker CLI shows them. Changed while a container is on the
// bridge, the bridge waits; once it is empty a restart applies the change
// and the bridge device loses its old address.
func TestDaemonConfigFile(t *testing.T) {
	w := testworld.New(t)
	conf := writeDaemonJSON(t, w, "daemon.json", `{
		"bip": "10.66.0.1/24", "fixed-cidr": "10.66.0.128/25", "mtu": 1400, "icc": false, "ip": "127.0.0.1",
		"default-address-pools": [{"base": "10.200.0.0/16", "size": 24}],
		"default-network-opts": {"bridge": {"com.docker.network.driver.mtu": "1300"}},
		"dns": ["10.0.0.53"], "dns-search": ["corp.example"], "dns-opts": ["ndots:2"],
		"log-driver": "local", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": true, "log-level": "warn",
		"registry-mirrors": ["https://mirror.example"], "features": {"buildkit": true}, "experimental": false
	}`)
	d := w.Start(t, "--config-file", conf)
	w.Busybox(t)

	format := `{{range .IPAM.Config}}{{.Subnet}} {{.IPRange}} {{.Gateway}}{{end}} ` +
		`{{index .Options "com.docker.network.driver.mtu"}} {{index .Options "com.docker.network.bridge.enable_icc"}} {{index .Options "com.docker.network.bridge.host_binding_ipv4"}}`
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", format, "bridge")); got != "10.66.0.0/24 10.66.0.128/25 10.66.0.1 1400 false 127.0.0.1" {
		t.Errorf("docker network inspect bridge: %q", got)
	}
	if out := w.MustInHost(t, "ip", "-4", "addr", "show", "dev", defaultBridge); !strings.Contains(out, "inet 10.66.0.1/24 ") || !strings.Contains(out, "mtu 1400 ") {
		t.Errorf("the bridge device:\n%s", out)
	}
	if info := mustDocker(t, w, "info"); !strings.Contains(info, "Default Address Pools:\n   Base: 10.200.0.0/16, Size: 24") || !strings.Contains(info, "Logging Driver: local\n") {
		t.Errorf("docker info shows no pools:\n%s", info)
	}
	// Keys for what berth does not do: taken, each a warning.
	if got := mustDocker(t, w, "info", "--format", "{{json .Warnings}}"); !strings.Contains(got, `daemon.json's \"registry-mirrors\" has no effect: berth pulls no images`) ||
		!strings.Contains(got, `daemon.json's \"features\" has no effect`) || strings.Contains(got, "experimental") {
		t.Errorf("docker info's warnings %s: want registry-mirrors' and features', not experimental's (false)", got)
	}

	runDockerSleeper(t, w, "a1")
	runDockerSleeper(t, w, "a2", "--log-driver", "local", "--log-opt", "max-size=1m")
	// The daemon's log defaults, as dockerd merges them at create.
	if got := dockerInspect(t, w, "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}}", "a1"); got != "local map[max-file:3 max-size:10m]" {
		t.Errorf("a1's log config: %q", got)
	}
	if got := dockerInspect(t, w, "{{.HostConfig.LogConfig.Config}}", "a2"); got != "map[max-file:3 max-size:1m]" {
		t.Errorf("a2's log config (its max-size over the default): %q", got)
	}
	mustDocker(t, w, "create", "--name", "jf", "--log-driver", "json-file", testworld.BusyboxImage, "true")
	if got := dockerInspect(t, w, "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}}", "jf"); got != "json-file map[]" {
		t.Errorf("--log-driver json-file under a local default: %q", got)
	}
	mustDocker(t, w, "rm", "jf")
	if out := mustDocker(t, w, "logs", "a1"); !strings.Contains(out, "started") {
		t.Errorf("docker logs a1 on the local driver: %q", out)
	}
	if got := dockerInspect(t, w, "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}", "a1"); got != "10.66.0.128 10.66.0.1" {
		t.Errorf("a1 on the default bridge: %q, want fixed-cidr's first address", got)
	}
	if out := mustDocker(t, w, "exec", "a1", "ip", "link", "show", "eth0"); !strings.Contains(out, "mtu 1400 ") {
		t.Errorf("a1's eth0:\n%s", out)
	}
	if got := fetchAnswer(t, w, "a1"); got != "you are "+testworld.HostAddr.String()+"\n" {
		t.Errorf("a1 → outside through NAT: %q", got)
	}
	if canPing(t, w, "a1", containerIP(t, w, "a2")) {
		t.Error(`"icc": false, yet a1 pings a2`)
	}
	resolv := mustDocker(t, w, "exec", "a1", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 10.0.0.53\n", "search corp.example\n", "options ndots:2\n"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("a1's resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	// A container's own --dns wins over the daemon's.
	if out := mustDocker(t, w, "run", "--rm", "--dns", "10.9.9.9", testworld.BusyboxImage, "cat", "/etc/resolv.conf"); strings.Contains(out, "10.0.0.53") || !strings.Contains(out, "nameserver 10.9.9.9\n") {
		t.Errorf("--dns 10.9.9.9 over the daemon's:\n%s", out)
	}

	// "ip": ports published without a host address go on 127.0.0.1 only.
	mustDocker(t, w, "run", "-d", "--name", "web", "-p", "8080:80", testworld.BusyboxImage,
		"sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
	if got := strings.TrimSpace(mustDocker(t, w, "port", "web", "80")); got != "127.0.0.1:8080" {
		t.Errorf("docker port web 80: %q", got)
	}
	if !retried(func() bool {
		out, _, _ := w.InHost(t, "timeout", "10", "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
		return out == "published\n"
	}) {
		t.Error("the published port does not answer on the host's 127.0.0.1")
	}
	if out, _, _ := w.InOutside(t, "timeout", "3", "busybox", "wget", "-q", "-O", "-", "http://"+testworld.HostAddr.String()+":8080/"); out != "" {
		t.Errorf(`"ip": "127.0.0.1", yet the outside reached the port: %q`, out)
	}

	// A new network: a subnet of the daemon's pools, the default MTU option.
	mustDocker(t, w, "network", "create", "web")
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", `{{(index .IPAM.Config 0).Subnet}} {{index .Options "com.docker.network.driver.mtu"}}`, "web")); got != "10.200.0.0/24 1300" {
		t.Errorf("docker network inspect web: %q", got)
	}
	runDockerSleeper(t, w, "b1", "--network", "web")
	if out := mustDocker(t, w, "exec", "b1", "ip", "link", "show", "eth0"); !strings.Contains(out, "mtu 1300 ") {
		t.Errorf("b1's eth0 on web:\n%s", out)
	}
	if resolv := mustDocker(t, w, "exec", "b1", "cat", "/etc/resolv.conf"); !strings.Contains(resolv, "nameserver 127.0.0.11\n") || !strings.Contains(resolv, "search corp.example\n") {
		t.Errorf("b1's resolv.conf on a user network:\n%s", resolv)
	}

	// A changed bip while containers are on the bridge: nothing moves.
	d.Stop()
	conf2 := writeDaemonJSON(t, w, "daemon2.json", `{"bip": "10.77.0.1/24"}`)
	d = w.Start(t, "--config-file", conf2)
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", `{{(index .IPAM.Config 0).Subnet}}`, "bridge")); got != "10.66.0.0/24" {
		t.Errorf("bip changed under running containers: the bridge is %q", got)
	}
	if log, _ := os.ReadFile(d.LogPath); !strings.Contains(string(log), "the default bridge has containers") {
		t.Errorf("no warning that the change waits; log:\n%s", log)
	}
	if got := fetchAnswer(t, w, "a1"); got != "you are "+testworld.HostAddr.String()+"\n" {
		t.Errorf("a1 → outside after the restart: %q", got)
	}
	mustDocker(t, w, "rm", "-f", "a1", "a2", "web")
	d.Stop()
	d = w.Start(t, "--config-file", conf2)
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", format, "bridge")); got != "10.77.0.0/24  10.77.0.1 1500 true 0.0.0.0" {
		t.Errorf("docker network inspect bridge after the change: %q", got)
	}
	if out := w.MustInHost(t, "ip", "-4", "addr", "show", "dev", defaultBridge); !strings.Contains(out, "inet 10.77.0.1/24 ") || strings.Contains(out, "10.66.0.1") || !strings.Contains(out, "mtu 1500 ") {
		t.Errorf("the bridge device after the change:\n%s", out)
	}
	time.Sleep(200 * time.Millisecond) // past the link watcher's settle
	if log, _ := os.ReadFile(d.LogPath); strings.Contains(string(log), "changed by another process") {
		t.Errorf("berth took its own removal of the old gateway for damage:\n%s", log)
	}
	runDockerSleeper(t, w, "c1")
	runDockerSleeper(t, w, "c2")
	if got := dockerInspect(t, w, "{{.NetworkSettings.IPAddress}}", "c1"); got != "10.77.0.2" {
		t.Errorf("c1 after the change: %q", got)
	}
	if got := fetchAnswer(t, w, "c1"); got != "you are "+testworld.HostAddr.String()+"\n" {
		t.Errorf("c1 → outside after the change: %q", got)
	}
	if !pings(t, w, "c1", containerIP(t, w, "c2")) {
		t.Error("icc back on, yet c1 cannot ping c2")
	}
}

// TestDaemonConfigFileRefused: a daemon.json with a key berth does not
// have, or a key also given as a flag, stops the daemon before it
// touches anything, with dockerd's words.
func TestDaemonConfigFileRefused(t *testing.T) {
	w := testworld.New(t)
	for _, tc := range []struct {
		body string
		args []string
		want string
	}{
		{`{"bip": "10.66.0.1/24", "storage-opts": ["size=1G"]}`, nil, "dockerd's options berth does not have: storage-opts"},
		{`{"storage-driver": "btrfs"}`, nil, "--storage-driver btrfs is not supported"},
		{`{"ip6tables": false}`, nil, "--ip6tables=false is not supported"},
		{`{"bip": "10.66.0.1/24", "storage_driver": "overlay2"}`, nil, "the following directives don't match any configuration option of berth's: storage_driver"},
		{`{"mtu": 1400}`, []string{"--mtu", "1300"}, "the following directives are specified both as a flag and in the configuration file: mtu: (from flag: 1300, from file: 1400)"},
		{`{"bip": "10.66.0.0/24"}`, nil, "network or broadcast address"},
	} {
		conf := writeDaemonJSON(t, w, "bad.json", tc.body)
		args := append([]string{"daemon", "--config-file", conf, "--data-root", filepath.Join(w.Dir, "bad-data"),
			"--exec-root", filepath.Join(w.Dir, "bad-exec"), "--host", "unix://" + filepath.Join(w.Dir, "bad.sock")}, tc.args...)
		_, errOut, code := w.InHost(t, append([]string{testworld.Binary(t)}, args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s %v: exit %d, stderr %q; want it refused saying %q", tc.body, tc.args, code, errOut, tc.want)
		}
	}
	if out := w.MustInHost(t, "ip", "-o", "link", "show", "type", "bridge"); out != "" {
		t.Errorf("a refused daemon made a bridge:\n%s", out)
	}
}

// TestDefaultBridgeRenamed: a new --bridge-name moves the default bridge
// to a device of that name, and the old device goes; a bridge of the
// administrator's that berth adopted under its name, which still has a
// port of theirs, is not taken apart: the start stops and says why.
func TestDefaultBridgeRenamed(t *testing.T) {
	w := testworld.New(t)
	d := w.Start(t)
	d.Stop()
	d = w.Start(t, "--bridge-name", "docker0")
	time.Sleep(200 * time.Millisecond) // past the link watcher's settle
	if log, _ := os.ReadFile(d.LogPath); strings.Contains(string(log), "changed by another process") {
		t.Errorf("berth took its own delete of the old device for damage:\n%s", log)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, "bridge")); got != "docker0" {
		t.Errorf("bridge name option after --bridge-name docker0: %q", got)
	}
	if _, _, code := w.InHost(t, "ip", "link", "show", defaultBridge); code == 0 {
		t.Errorf("the old device %s is still there", defaultBridge)
	}
	if out := w.MustInHost(t, "ip", "-4", "addr", "show", "dev", "docker0"); !strings.Contains(out, "inet 172.17.0.1/16 ") {
		t.Errorf("docker0:\n%s", out)
	}
	d.Stop()

	// The administrator's br0, with a port of theirs, adopted by berth.
	w.MustInHost(t, "ip", "link", "add", "br0", "type", "bridge")
	w.MustInHost(t, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
	w.MustInHost(t, "ip", "link", "set", "uplink0", "master", "br0")
	d = w.Start(t, "--bridge-name", "br0")
	d.Stop()
	conf := []string{"daemon", "--data-root", w.DataRoot, "--exec-root", w.ExecRoot, "--host", "unix://" + w.Socket}
	_, errOut, code := w.InHost(t, append([]string{testworld.Binary(t)}, conf...)...)
	if code == 0 || !strings.Contains(errOut, "ports that are not berth's: berth will not delete it") {
		t.Errorf("renaming away from the administrator's br0: exit %d, stderr %q", code, errOut)
	}
	if out := w.MustInHost(t, "ip", "-o", "link", "show", "master", "br0"); !strings.Contains(out, "uplink0") {
		t.Errorf("br0 lost its port:\n%s", out)
	}
}

// TestDaemonReloadsOnSIGHUP: a SIGHUP (systemctl reload, a logrotate
// hook) reads debug and log-level again, as dockerd's reload does, and
// never ends the daemon (Go's default for the signal would: the API gone,
// every -t container's terminal with it).
func TestDaemonReloadsOnSIGHUP(t *testing.T) {
	w := testworld.New(t)
	conf := writeDaemonJSON(t, w, "hup.json", `{"log-level": "warn"}`)
	d := w.Start(t, "--config-file", conf)
	w.Busybox(t)
	runDockerSleeper(t, w, "hup")
	if err := os.WriteFile(conf, []byte(`{"debug": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload in the log", func() bool {
		b, _ := os.ReadFile(d.LogPath)
		return strings.Contains(string(b), "configuration reloaded") && strings.Contains(string(b), "DEBUG")
	})
	if got := dockerInspect(t, w, "{{.State.Running}}", "hup"); got != "true" {
		t.Errorf("after a SIGHUP the daemon answers %q for its container", got)
	}
}

// TestUserManagedDefaultBridge: dockerd's --bridge puts the default
// bridge network on a bridge of the administrator's, with its address as
// the network's gateway and subnet: containers get addresses there, reach
// each other and the outside through it. A missing device, or --bip
// beside it, stops the daemon in dockerd's words. Without --bridge again
// the default bridge is berth's own with a subnet of the pools, and the
// administrator's device stays as it was.
func TestUserManagedDefaultBridge(t *testing.T) {
	w := testworld.New(t)
	conf := []string{testworld.Binary(t), "daemon", "--data-root", w.DataRoot, "--exec-root", w.ExecRoot, "--host", "unix://" + w.Socket}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bridge", "br-lan"}, "bridge device with non default name br-lan must be created manually"},
		{[]string{"-b", "br-lan", "--bip", "10.50.0.1/24"}, "You specified -b & --bip, mutually exclusive options. Please specify only one"},
	} {
		if _, errOut, code := w.InHost(t, append(conf, tc.args...)...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("berth daemon %v: exit %d, stderr %q; want it refused saying %q", tc.args, code, errOut, tc.want)
		}
	}
	w.MustInHost(t, "ip", "link", "add", "br-lan", "type", "bridge")
	w.MustInHost(t, "ip", "addr", "add", "10.50.0.1/24", "dev", "br-lan")
	w.MustInHost(t, "ip", "link", "set", "br-lan", "up")
	// A host of the administrator's LAN behind br-lan's uplink port.
	lan := lanPeer(t, w, "br-lan", netip.MustParsePrefix("10.50.0.200/24"))
	listenInHost(t, w, "0.0.0.0:8099")

	d := w.Start(t, "--bridge", "br-lan")
	w.Busybox(t)
	// The LAN still reaches the host's own services (its ssh): the
	// administrator's bridge is open to them, as Docker's bridges are.
	if err := lanDial(lan, "10.50.0.1:8099"); err != nil {
		t.Errorf("the LAN's host to the host's service on br-lan: %v", err)
	}
	got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f",
		`{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{index .Options "com.docker.network.bridge.name"}}`, "bridge"))
	if got != "10.50.0.0/24 10.50.0.1 br-lan" {
		t.Errorf("the default bridge on br-lan: %q", got)
	}
	if _, _, code := w.InHost(t, "ip", "link", "show", defaultBridge); code == 0 {
		t.Errorf("--bridge br-lan: berth made %s too", defaultBridge)
	}
	runDockerSleeper(t, w, "u1")
	runDockerSleeper(t, w, "u2")
	ip2 := dockerInspect(t, w, "{{.NetworkSettings.IPAddress}}", "u2")
	if !strings.HasPrefix(ip2, "10.50.0.") {
		t.Errorf("u2's address %q, want one of br-lan's 10.50.0.0/24", ip2)
	}
	if out := w.MustInHost(t, "ip", "-o", "link", "show", "master", "br-lan"); strings.Count(out, "\n") != 3 {
		t.Errorf("br-lan's ports, want the uplink and the two containers':\n%s", out)
	}
	for _, dst := range []string{ip2, testworld.ServerAddr.String(), "10.50.0.200"} {
		if _, errOut, code := w.Docker(t, "exec", "u1", "ping", "-c", "1", "-W", "5", dst); code != 0 {
			t.Errorf("u1 pings %s across br-lan: exit %d, %q", dst, code, errOut)
		}
	}
	// --bridge dropped while containers are on br-lan: the default
	// bridge stays there until they are gone, open to the LAN as before.
	d.Stop()
	d = w.Start(t)
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, "bridge")); got != "br-lan" {
		t.Errorf("--bridge dropped with containers on br-lan: the default bridge is on %q", got)
	}
	if err := lanDial(lan, "10.50.0.1:8099"); err != nil {
		t.Errorf("the LAN's host to the host's service, the default bridge kept on br-lan: %v", err)
	}
	mustDocker(t, w, "rm", "-f", "u1", "u2")
	d.Stop()

	w.Start(t)
	got = strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f",
		`{{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Options "com.docker.network.bridge.name"}}`, "bridge"))
	if got != "172.17.0.0/16 "+defaultBridge {
		t.Errorf("--bridge dropped: the default bridge is %q, want berth's own on a subnet of the pools", got)
	}
	if out := w.MustInHost(t, "ip", "-d", "addr", "show", "dev", "br-lan"); !strings.Contains(out, "inet 10.50.0.1/24 ") || strings.Contains(out, "alias") {
		t.Errorf("br-lan after berth let go of it, want it as the administrator made it (its address, no tag of berth's):\n%s", out)
	}
	if out := w.MustInHost(t, "ip", "-o", "link", "show", "master", "br-lan"); !strings.Contains(out, "lan0") {
		t.Errorf("br-lan lost its uplink:\n%s", out)
	}
	runDockerSleeper(t, w, "u3")
	if ip := dockerInspect(t, w, "{{.NetworkSettings.IPAddress}}", "u3"); !strings.HasPrefix(ip, "172.17.") {
		t.Errorf("u3 on berth's bridge: %q", ip)
	}
}

// TestNoDefaultBridge: dockerd's --bridge none: no default bridge
// network and no device for it; a container on the default network (or
// asking for "bridge") runs with its loopback alone, as Docker's
// NetworkDisabled, while user networks work as ever. Without the option
// the default bridge is back.
func TestNoDefaultBridge(t *testing.T) {
	w, d := startWorld(t, "--bridge", "none")
	if out := mustDocker(t, w, "network", "ls", "--format", "{{.Name}}"); strings.Contains(out, "bridge") || !strings.Contains(out, "none") {
		t.Errorf("docker network ls with --bridge none:\n%s", out)
	}
	if _, errOut, code := w.Docker(t, "network", "inspect", "bridge"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("docker network inspect bridge: exit %d, %q", code, errOut)
	}
	if _, _, code := w.InHost(t, "ip", "link", "show", defaultBridge); code == 0 {
		t.Errorf("--bridge none: berth made %s", defaultBridge)
	}
	for _, args := range [][]string{{"run", "--rm"}, {"run", "--rm", "--network", "bridge"}} {
		out := mustDocker(t, w, append(args, testworld.BusyboxImage, "ip", "-o", "link")...)
		if !strings.Contains(out, ": lo:") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("docker %v with --bridge none, want the loopback alone:\n%s", args, out)
		}
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--add-host", "h:host-gateway", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "unable to derive the IP value for host-gateway") {
		t.Errorf("--add-host h:host-gateway with no default bridge: exit %d, %q; want dockerd's refusal", code, errOut)
	}
	mustDocker(t, w, "network", "create", "web")
	if out := mustDocker(t, w, "run", "--rm", "--network", "web", testworld.BusyboxImage, "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, "inet ") {
		t.Errorf("a user network with --bridge none:\n%s", out)
	}
	mustDocker(t, w, "create", "--name", "later", testworld.BusyboxImage, "ip", "-o", "-4", "addr", "show", "eth0")
	d.Stop()

	d = w.Start(t)
	// web took 172.17.0.0/16 meanwhile, the pools' first, as it would
	// on dockerd without docker0: the bridge comes back on the next.
	gw := dockerInspect(t, w, "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "bridge")
	if out, _, code := w.Docker(t, "start", "-a", "later"); code != 0 || !strings.Contains(out, "inet "+strings.TrimSuffix(gw, ".0.1")+".") {
		t.Errorf("a container created under --bridge none, started without it: exit %d\n%s", code, out)
	}

	// --bridge none with a container on the bridge: the network stays
	// until it is gone, and nothing new joins it meanwhile.
	runDockerSleeper(t, w, "stay")
	runDockerSleeper(t, w, "other", "--network", "web")
	d.Stop()
	d = w.Start(t, "--bridge", "none")
	mustDocker(t, w, "network", "inspect", "bridge")
	if out := mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Errorf("a new container joined the default bridge kept for another under --bridge none:\n%s", out)
	}
	if _, errOut, code := w.Docker(t, "network", "connect", "bridge", "other"); code == 0 || !strings.Contains(errOut, "--bridge none") {
		t.Errorf("network connect to the kept default bridge: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "rm", "-f", "stay")
	d.Stop()
	w.Start(t, "--bridge", "none")
	if _, _, code := w.Docker(t, "network", "inspect", "bridge"); code == 0 {
		t.Error("--bridge none: the default bridge stayed once its last container was gone")
	}
}

// TestDockerHostDaemonJSON: a Docker host's daemon.json, whose keys say
// what berth is (overlay2, the cgroupfs driver, iptables and ip6tables
// on, live-restore) or what berth does not do (shutdown-timeout), starts
// berth; log-format json makes the daemon's log JSON lines and pidfile
// holds its PID while it runs.
func TestDockerHostDaemonJSON(t *testing.T) {
	w := testworld.New(t)
	pid := filepath.Join(w.Dir, "run", "berth.pid")
	conf := writeDaemonJSON(t, w, "docker.json", `{
		"storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
		"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
		"iptables": true, "ip6tables": true, "ip-forward": true, "live-restore": true,
		"shutdown-timeout": 30, "selinux-enabled": false, "default-runtime": "runc", "log-format": "json", "pidfile": "`+pid+`"
	}`)
	d := w.Start(t, "--config-file", conf)
	if b, err := os.ReadFile(pid); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(d.Pid()) {
		t.Errorf("pidfile %q (%v), want the daemon's PID %d", b, err, d.Pid())
	}
	if out := mustDocker(t, w, "info", "--format", "{{json .Warnings}}"); !strings.Contains(out, "shutdown-timeout") {
		t.Errorf("docker info's warnings, want the one of shutdown-timeout: %s", out)
	}
	d.Stop()
	if _, err := os.Stat(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pidfile after the daemon stopped: %v, want it gone", err)
	}
	log, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["msg"] == nil {
			t.Errorf("a log line that is not a JSON entry: %q (%v)", line, err)
			continue
		}
		n++
	}
	if n == 0 {
		t.Error("the daemon logged nothing")
	}
}

// lanPeer makes a host of an administrator's LAN on bridge br: a
// namespace of its own, bound in the world's directory, with addr on a
// veth whose other end, lan0, is a port of br (the uplink). It returns
// the namespace's path; the test's cleanup unbinds it.
func lanPeer(t *testing.T, w *testworld.World, br string, addr netip.Prefix) string {
	t.Helper()
	path := filepath.Join(w.Dir, "lan.netns")
	if err := sandbox.NewBound(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sandbox.Unbind(path) })
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = sandbox.Do(w.HostNS(), func() error {
		master, err := netlink.LinkByName(br)
		if err != nil {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MasterIndex, attrs.Flags = "lan0", master.Attrs().Index, net.FlagUp
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(f.Fd()))})
	})
	if err != nil {
		t.Fatalf("the LAN's uplink on %s: %v", br, err)
	}
	err = sandbox.Do(path, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("the LAN's host %s: %v", addr, err)
	}
	return path
}

// lanDial connects from the namespace at ns to addr and reads the
// host listener's greeting (listenInHost).
func lanDial(ns, addr string) error {
	return sandbox.Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || !strings.Contains(string(b), "hello") {
			return fmt.Errorf("read %q: %v", b, err)
		}
		return nil
	})
}
