package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestConfigOnlyNetworks: the docker CLI's --config-only and --config-from,
// as Docker: a configuration network is settings under a name (driver
// null, no bridge, no containers); a network made from it gets them and a
// bridge of its own; the configuration stays while such a network exists,
// across a restart, and prune keeps it.
func TestConfigOnlyNetworks(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "network", "create", "--config-only", "--subnet", "10.79.0.0/24", "--gateway", "10.79.0.254",
		"--ip-range", "10.79.0.128/25", "-o", "com.docker.network.bridge.name=br-cfg", "--label", "team=a", "cfg")
	const shape = `{{.Driver}} {{.Scope}} {{.ConfigOnly}} {{.ConfigFrom.Network}} {{.EnableIPv4}} {{.EnableIPv6}} {{json .IPAM.Config}} {{json .Options}} {{json .Labels}}`
	if got, want := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", shape, "cfg")),
		`null local true  true false [{"Subnet":"10.79.0.0/24","IPRange":"10.79.0.128/25","Gateway":"10.79.0.254"}] {"com.docker.network.bridge.name":"br-cfg"} {"team":"a"}`; got != want {
		t.Errorf("inspect cfg:\n got %s\nwant %s", got, want)
	}
	if got := strings.Fields(mustDocker(t, w, "network", "ls", "--filter", "driver=null", "--format", "{{.Name}}")); !slices.Equal(got, []string{"cfg", "none"}) {
		t.Errorf("network ls driver=null: %q", got)
	}
	if slices.Contains(w.LinkNames(t, w.HostNS()), "br-cfg") {
		t.Error("a configuration network made its bridge")
	}
	const noEndpoint = "cannot create endpoint on configuration-only network"
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "c0", "--network", "cfg", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, noEndpoint) {
		t.Errorf("run on a configuration network: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "rm", "-f", "c0")

	if _, errOut, code := w.Docker(t, "network", "create", "--config-from", "cfg", "--subnet", "10.80.0.0/24", "bad"); code == 0 ||
		!strings.Contains(errOut, "user specified configurations are not supported if the network depends on a configuration network") {
		t.Errorf("--config-from with --subnet: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "network", "create", "--config-from", "nope", "bad"); code == 0 || !strings.Contains(errOut, `configuration network "nope" does not exist`) {
		t.Errorf("--config-from a network that is not there: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "network", "create", "--config-from", "cfg", "web")
	const made = `{{.Driver}} {{.ConfigOnly}} {{.ConfigFrom.Network}} {{json .IPAM.Config}} {{json .Options}} {{json .Labels}}`
	if got, want := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", made, "web")),
		`bridge false cfg [{"Subnet":"10.79.0.0/24","IPRange":"10.79.0.128/25","Gateway":"10.79.0.254"}] {"com.docker.network.bridge.name":"br-cfg"} {"team":"a"}`; got != want {
		t.Errorf("inspect web:\n got %s\nwant %s", got, want)
	}
	runDockerSleeper(t, w, "c1", "--network", "web")
	runDockerSleeper(t, w, "c2", "--network", "web")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "web").IPAddress}} {{(index .NetworkSettings.Networks "web").Gateway}}`, "c1"); got != "10.79.0.128 10.79.0.254" {
		t.Errorf("c1's address and gateway on web: %q", got)
	}
	if got := w.BridgePorts(t, "br-cfg"); len(got) != 2 {
		t.Errorf("br-cfg's ports: %q, want c1's and c2's", got)
	}
	if _, errOut, code := w.Docker(t, "exec", "c2", "ping", "-c", "1", "-W", "5", "c1"); code != 0 {
		t.Errorf("c2 pings c1 by name: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "network", "connect", "cfg", "c1"); code == 0 || !strings.Contains(errOut, noEndpoint) {
		t.Errorf("connect to a configuration network: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "network", "rm", "cfg"); code == 0 || !strings.Contains(errOut, `configuration network "cfg" is in use`) {
		t.Errorf("rm of a configuration in use: exit %d, %q", code, errOut)
	}

	d.Stop()
	w.Start(t)
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{.ConfigFrom.Network}} {{.ConfigOnly}}", "web", "cfg")); got != "cfg false\n true" {
		t.Errorf("after a restart, web and cfg: %q", got)
	}
	mustDocker(t, w, "rm", "-f", "c1", "c2")
	mustDocker(t, w, "network", "rm", "web")
	if got := strings.TrimSpace(mustDocker(t, w, "network", "prune", "-f")); got != "" {
		t.Errorf("prune removed %q: a configuration network stays", got)
	}
	mustDocker(t, w, "network", "rm", "cfg")
	if _, _, code := w.Docker(t, "network", "inspect", "cfg"); code == 0 {
		t.Error("cfg still there after its removal")
	}
}
