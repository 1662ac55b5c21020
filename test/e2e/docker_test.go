package e2e

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestDockerCLIReads runs the seed's key commands through the real docker
// CLI against berth: network ls and inspect, ps, inspect --format, exec.
func TestDockerCLIReads(t *testing.T) {
	w, _ := startWorld(t)
	runSleeper(t, w, "test1")
	runSleeper(t, w, "test2")
	ip1, ip2 := containerIP(t, w, "test1"), containerIP(t, w, "test2")

	if out, errOut, code := w.Docker(t, "version", "--format", "{{.Server.APIVersion}}"); code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("docker version: exit %d, %q %s", code, out, errOut)
	}
	out, _, code := w.Docker(t, "network", "ls")
	for _, name := range []string{"bridge", "host", "none"} {
		if code != 0 || !strings.Contains(out, " "+name+" ") {
			t.Errorf("docker network ls: exit %d, output lacks %s:\n%s", code, name, out)
		}
	}
	bridge, _ := inspectNetwork(t, w.Docker, "bridge")
	checkSeedBridge(t, bridge, defaultBridge)
	checkNetworkContainers(t, w, bridge, map[string]netip.Addr{"test1": ip1, "test2": ip2}, 16)

	out, _, code = w.Docker(t, "ps")
	for _, name := range []string{"test1", "test2"} {
		if code != 0 || !strings.Contains(out, name) {
			t.Errorf("docker ps: exit %d, output lacks %s:\n%s", code, name, out)
		}
	}
	for name, want := range map[string]netip.Addr{"test1": ip1, "test2": ip2} {
		out, _, code := w.Docker(t, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", name)
		if code != 0 || strings.TrimSpace(out) != want.String() {
			t.Errorf("docker inspect IPAddress of %s: exit %d, %q; want %s", name, code, out, want)
		}
	}
	if out, _, code := w.Docker(t, "inspect", "--format", "{{.State.Pid}}", "test1"); code != 0 || strings.TrimSpace(out) != itoa(containerPID(t, w, "test1")) {
		t.Errorf("docker inspect State.Pid of test1: exit %d, %q; want berth's", code, out)
	}
	retried(func() bool {
		out, _, code = w.Docker(t, "exec", "test1", "ping", "-c", "2", ip2.String())
		return code == 0
	})
	if code != 0 || !strings.Contains(out, "64 bytes from "+ip2.String()) {
		t.Errorf("docker exec test1 ping %s: exit %d\n%s", ip2, code, out)
	}
}

// TestDockerCLIRunAndRemove: docker run -d, exec's exit code, rm -f.
func TestDockerCLIRunAndRemove(t *testing.T) {
	w, _ := startWorld(t)
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "d1", testworld.BusyboxImage, "sleep", "3600"); code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", code, errOut)
	}
	ip := containerIP(t, w, "d1")
	if ip != netip.MustParseAddr("172.17.0.2") {
		t.Errorf("d1 got %s, want 172.17.0.2", ip)
	}
	if _, _, code := w.Docker(t, "exec", "d1", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("docker exec exit code = %d, want 7", code)
	}
	if out, _, code := w.Docker(t, "rm", "-f", "d1"); code != 0 || strings.TrimSpace(out) != "d1" {
		t.Errorf("docker rm -f d1: exit %d, %q", code, out)
	}
	waitReaped(t, w) // rm -f cut the veth off; the reaper deletes it a little later
	if ports := w.BridgePorts(t, defaultBridge); len(ports) != 0 {
		t.Errorf("bridge ports after docker rm -f: %q", ports)
	}

	if _, errOut, code := w.Docker(t, "network", "create", "--subnet", "10.96.0.0/24", "dnet"); code != 0 {
		t.Fatalf("docker network create: exit %d: %s", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "-d", "--network", "dnet", "--name", "d2", testworld.BusyboxImage, "sleep", "3600"); code != 0 {
		t.Fatalf("docker run --network dnet: exit %d: %s", code, errOut)
	}
	out, _, code := w.Docker(t, "inspect", "--format", `{{(index .NetworkSettings.Networks "dnet").IPAddress}}`, "d2")
	if code != 0 || strings.TrimSpace(out) != "10.96.0.2" {
		t.Errorf("d2's address on dnet: exit %d, %q; want 10.96.0.2", code, out)
	}
	if _, _, code := w.Docker(t, "network", "rm", "dnet"); code == 0 {
		t.Errorf("docker network rm of a network with a container succeeded")
	}
	w.Docker(t, "rm", "-f", "d2")
	if _, errOut, code := w.Docker(t, "network", "rm", "dnet"); code != 0 {
		t.Errorf("docker network rm dnet: exit %d: %s", code, errOut)
	}
}
