package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestAuxAddresses: docker network create --aux-address holds the
// addresses for devices outside berth (a router on the subnet): no
// container gets one, inspect shows them, a restarted daemon still holds
// them, and one outside the subnet is refused as by Docker.
func TestAuxAddresses(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "10.77.0.0/24", "--ip-range", "10.77.0.0/28",
		"--aux-address", "router=10.77.0.2", "--aux-address", "nas=10.77.0.3", "auxnet")
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.AuxiliaryAddresses}}{{end}}", "auxnet")); got != "map[nas:10.77.0.3 router:10.77.0.2]" {
		t.Errorf("inspect's AuxiliaryAddresses: %q", got)
	}
	runDockerSleeper(t, w, "a1", "--network", "auxnet")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "auxnet").IPAddress}}`, "a1"); got != "10.77.0.4" {
		t.Errorf("a1's address %q, want 10.77.0.4 (.1 the gateway, .2 and .3 held)", got)
	}
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "a2", "--network", "auxnet", "--ip", "10.77.0.3", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "10.77.0.3") {
		t.Errorf("--ip of a held address: exit %d, %q", code, errOut)
	}
	d.Stop()
	w.Start(t)
	mustDocker(t, w, "rm", "-f", "a1")
	runDockerSleeper(t, w, "a3", "--network", "auxnet")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "auxnet").IPAddress}}`, "a3"); got != "10.77.0.4" {
		t.Errorf("after a restart a3 got %q, want 10.77.0.4", got)
	}
	if _, errOut, code := w.Docker(t, "network", "create", "--subnet", "10.78.0.0/24", "--aux-address", "x=10.79.0.5", "bad"); code == 0 || !strings.Contains(errOut, "no matching subnet for aux-address") {
		t.Errorf("an aux address outside every subnet: exit %d, %q", code, errOut)
	}
}
