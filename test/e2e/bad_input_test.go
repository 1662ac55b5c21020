package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/testworld"
)

// observable is everything a failed request must leave as it was: the
// networks, the running containers, and the host's links, sandboxes and rules.
type observable struct {
	Networks string
	Running  string
	Host     hostState
}

func observe(t *testing.T, w *testworld.World) observable {
	t.Helper()
	return observable{
		Networks: w.MustBerth(t, "network", "ls"),
		Running:  w.MustBerth(t, "ps", "-q"),
		Host:     snapshot(t, w),
	}
}

// TestBadInputLeavesNoTrace sends bad requests through the CLI: each must
// fail with a message on stderr and leave networks, running containers and
// the kernel exactly as they were. A `run` that fails after its create may
// leave a created container, as Docker does; it is removed before comparing,
// which must also give back whatever it held.
func TestBadInputLeavesNoTrace(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	w.MustBerth(t, "network", "create", "--subnet", "10.9.0.0/24", "used")
	w.MustBerth(t, "network", "create", "--subnet", "10.30.0.0/30", "tiny") // room for one container
	runSleeper(t, w, "keep")
	runSleeper(t, w, "keeper", "--network", "used")
	runSleeper(t, w, "filler", "--network", "tiny")
	before := observe(t, w)

	cases := []struct {
		name string
		args []string
	}{
		{"prefix too long", []string{"network", "create", "--subnet", "10.1.0.0/33", "bad1"}},
		{"subnet not a CIDR", []string{"network", "create", "--subnet", "notacidr", "bad2"}},
		{"gateway outside subnet", []string{"network", "create", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1", "bad3"}},
		{"subnet overlaps bridge", []string{"network", "create", "--subnet", "172.17.0.0/24", "bad4"}},
		{"subnet overlaps user network", []string{"network", "create", "--subnet", "10.9.0.128/25", "bad5"}},
		{"duplicate network name", []string{"network", "create", "used"}},
		{"predefined network name", []string{"network", "create", "bridge"}},
		{"unknown driver", []string{"network", "create", "--driver", "nosuch", "bad6"}},
		{"bad mtu", []string{"network", "create", "-o", "com.docker.network.driver.mtu=abc", "bad7"}},
		{"ip-range outside subnet", []string{"network", "create", "--subnet", "10.4.0.0/24", "--ip-range", "10.5.0.0/24", "bad8"}},
		{"invalid network name", []string{"network", "create", "bad\nname"}},
		{"remove bridge", []string{"network", "rm", "bridge"}},
		{"remove host", []string{"network", "rm", "host"}},
		{"remove none", []string{"network", "rm", "none"}},
		{"remove unknown network", []string{"network", "rm", "nosuch"}},
		{"remove network with endpoints", []string{"network", "rm", "used"}},
		{"connect to unknown network", []string{"network", "connect", "nosuch", "keep"}},
		{"connect unknown container", []string{"network", "connect", "used", "nosuch"}},
		{"--ip on bridge", []string{"run", "-d", "--name", "bad-ip-bridge", "--ip", "172.17.0.50", bb, "sleep", "60"}},
		{"unknown network on run", []string{"run", "-d", "--name", "bad-net", "--network", "nosuch", bb, "sleep", "60"}},
		{"unknown image", []string{"run", "-d", "--name", "bad-image", "nosuchimage", "sleep", "60"}},
		{"duplicate container name", []string{"run", "-d", "--name", "keep", bb, "sleep", "60"}},
		{"invalid container name", []string{"run", "-d", "--name", "bad/name", bb, "sleep", "60"}},
		{"--ip not an address", []string{"run", "-d", "--name", "bad-ip-syntax", "--network", "used", "--ip", "10.9.0.300", bb, "sleep", "60"}},
		{"--ip outside subnet", []string{"run", "-d", "--name", "bad-ip-outside", "--network", "used", "--ip", "10.10.0.5", bb, "sleep", "60"}},
		{"--ip taken", []string{"run", "-d", "--name", "bad-ip-taken", "--network", "used", "--ip", "10.9.0.2", bb, "sleep", "60"}},
		{"--ip is the gateway", []string{"run", "-d", "--name", "bad-ip-gw", "--network", "used", "--ip", "10.9.0.1", bb, "sleep", "60"}},
		{"pool exhausted", []string{"run", "-d", "--name", "bad-full", "--network", "tiny", bb, "sleep", "60"}},
		{"bad mac address", []string{"run", "-d", "--name", "bad-mac", "--mac-address", "zz:zz", bb, "sleep", "60"}},
		{"exec in unknown container", []string{"exec", "nosuch", "true"}},
		{"inspect unknown object", []string{"inspect", "nosuch"}},
		{"remove unknown container", []string{"rm", "nosuch"}},
		{"remove running container without -f", []string{"rm", "keep"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := w.Berth(t, tc.args...)
			if code == 0 || strings.TrimSpace(errOut) == "" {
				t.Errorf("berth %s: exit %d, stderr %q; want a failure with a message", strings.Join(tc.args, " "), code, errOut)
			}
			if tc.args[0] == "run" && strings.HasPrefix(tc.args[3], "bad-") {
				w.Berth(t, "rm", "-f", tc.args[3]) // a created container may remain, as in Docker
			}
			if diff := cmp.Diff(before, observe(t, w)); diff != "" {
				t.Errorf("state changed (-before +after):\n%s", diff)
			}
		})
	}
}
