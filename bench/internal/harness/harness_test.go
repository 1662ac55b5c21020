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
