package harness

import (
	"strings"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tberth\nVmPeak:\t  900000 kB\nVmRSS:\t   21464 kB\nThreads:\t9\n"
	got, err := parseVmRSS(strings.NewReader(status))
	if err != nil || got != 21464<<10 {
		t.Errorf("parseVmRSS = %d, %v; want %d", got, err, 21464<<10)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tmany kB\n"} {
		if _, err := parseVmRSS(strings.NewReader(bad)); err == nil {
			t.Errorf("parseVmRSS(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseIperf(t *testing.T) {
	got, err := parseIperf([]byte(`{"start":{},"end":{"sum_sent":{"bits_per_second":2e10},"sum_received":{"bits_per_second":1.5e10}}}`))
	if err != nil || got != 1.5e10 {
		t.Errorf("parseIperf = %v, %v; want 1.5e10", got, err)
	}
	for _, bad := range []string{`{"error":"unable to connect"}`, `{"end":{}}`, `not json`} {
		if _, err := parseIperf([]byte(bad)); err == nil {
			t.Errorf("parseIperf(%s) succeeded, want an error", bad)
		}
	}
}

// TestParseNetworkAction reads one action's count and sum from dockerd's
// histogram, not another action's, and 0, 0 for an action never timed.
func TestParseNetworkAction(t *testing.T) {
	text := `# TYPE engine_daemon_network_actions_seconds histogram
engine_daemon_network_actions_seconds_bucket{action="allocate",le="+Inf"} 2
engine_daemon_network_actions_seconds_sum{action="allocate"} 0.25
engine_daemon_network_actions_seconds_count{action="allocate"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="+Inf"} 120
engine_daemon_network_actions_seconds_sum{action="connect"} 0.117
engine_daemon_network_actions_seconds_count{action="connect"} 120
`
	n, sum, err := parseNetworkAction(strings.NewReader(text), "connect")
	if err != nil || n != 120 || sum != 0.117 {
		t.Errorf("connect: %v, %v, %v; want 120, 0.117", n, sum, err)
	}
	if n, sum, err := parseNetworkAction(strings.NewReader(text), "release"); err != nil || n != 0 || sum != 0 {
		t.Errorf("release, never timed: %v, %v, %v; want 0, 0", n, sum, err)
	}
	if _, _, err := parseNetworkAction(strings.NewReader(`engine_daemon_network_actions_seconds_count{action="connect"} many`), "connect"); err == nil {
		t.Error("a count that is not a number was taken")
	}
}
