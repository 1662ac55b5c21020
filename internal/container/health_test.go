package container

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheckHealthConfig(t *testing.T) {
	for _, tt := range []struct {
		hc   HealthConfig
		want string
	}{
		{HealthConfig{Test: []string{"CMD", "true"}}, ""},
		{HealthConfig{Interval: time.Microsecond}, "Interval in Healthcheck cannot be less than 1ms"},
		{HealthConfig{Timeout: time.Microsecond}, "Timeout in Healthcheck cannot be less than 1ms"},
		{HealthConfig{StartPeriod: time.Microsecond}, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{HealthConfig{StartInterval: time.Microsecond}, "StartInterval in Healthcheck cannot be less than 1ms"},
		{HealthConfig{Retries: -1}, "Retries in Healthcheck cannot be negative"},
	} {
		err := CheckHealthConfig(&tt.hc)
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("%+v: %v, want %q", tt.hc, err, tt.want)
		}
	}
}

func TestHealthProbe(t *testing.T) {
	for _, tt := range []struct {
		test  []string
		shell []string
		want  []string
	}{
		{[]string{"CMD", "test", "-e", "/ok"}, nil, []string{"test", "-e", "/ok"}},
		{[]string{"CMD", "test"}, []string{"/bin/ash", "-c"}, []string{"test"}},
		{[]string{"CMD-SHELL", "test -e /ok || exit 1"}, nil, []string{"/bin/sh", "-c", "test -e /ok || exit 1"}},
		// Config.Shell, as moby's getShell.
		{[]string{"CMD-SHELL", "test -e /ok"}, []string{"/bin/ash", "-eo", "pipefail", "-c"}, []string{"/bin/ash", "-eo", "pipefail", "-c", "test -e /ok"}},
		{[]string{"NONE"}, nil, nil},
		{[]string{"CMD"}, nil, nil},
		{[]string{"HTTP", "x"}, nil, nil},
		{nil, nil, nil},
	} {
		hc := &HealthConfig{Test: tt.test}
		if diff := cmp.Diff(tt.want, hc.Probe(tt.shell)); diff != "" {
			t.Errorf("%q: (-want +got):\n%s", tt.test, diff)
		}
	}
	var none *HealthConfig
	if none.Probe(nil) != nil {
		t.Errorf("nil config has a probe")
	}
}

func TestHealthNextProbe(t *testing.T) {
	hc := &HealthConfig{Interval: 10 * time.Second, StartPeriod: time.Minute, StartInterval: time.Second}
	if got := hc.NextProbe(0, HealthStarting); got != time.Second {
		t.Errorf("starting within the start period: %v", got)
	}
	if got := hc.NextProbe(0, HealthHealthy); got != 10*time.Second {
		t.Errorf("healthy within the start period: %v", got)
	}
	if got := hc.NextProbe(2*time.Minute, HealthStarting); got != 10*time.Second {
		t.Errorf("starting after the start period: %v", got)
	}
	if got := (&HealthConfig{}).NextProbe(0, HealthStarting); got != 30*time.Second {
		t.Errorf("defaults: %v", got)
	}
	if got := (&HealthConfig{StartPeriod: time.Minute}).NextProbe(0, HealthStarting); got != 5*time.Second {
		t.Errorf("default start interval: %v", got)
	}
}

// Record follows moby's handleProbeResult: retries failures in a row make
// a container unhealthy, one success healthy again, failures in the start
// period do not count while it is starting, and the log keeps five.
func TestHealthRecord(t *testing.T) {
	started := time.Unix(1000, 0)
	hc := &HealthConfig{Retries: 2, StartPeriod: 10 * time.Second}
	h := &Health{Status: HealthStarting}
	at := func(s int, code int) HealthResult {
		return HealthResult{Start: started.Add(time.Duration(s) * time.Second), ExitCode: code}
	}
	steps := []struct {
		r       HealthResult
		status  string
		streak  int
		changed bool
	}{
		{at(1, 1), HealthStarting, 0, false}, // in the start period: not counted
		{at(5, 1), HealthStarting, 0, false},
		{at(11, 1), HealthStarting, 1, false}, // past it: counted
		{at(12, 0), HealthHealthy, 0, true},
		{at(13, 1), HealthHealthy, 1, false},
		{at(14, 1), HealthUnhealthy, 2, true},
		{at(15, 1), HealthUnhealthy, 3, false},
		{at(16, 0), HealthHealthy, 0, true},
	}
	for i, st := range steps {
		changed := h.Record(st.r, hc, started)
		if h.Status != st.status || h.FailingStreak != st.streak || changed != st.changed {
			t.Fatalf("step %d: %s streak %d changed %v, want %s %d %v", i, h.Status, h.FailingStreak, changed, st.status, st.streak, st.changed)
		}
	}
	if len(h.Log) != 5 || h.Log[4].Start != at(16, 0).Start || h.Log[0].Start != at(12, 0).Start {
		t.Errorf("log keeps the last five: %+v", h.Log)
	}
	if got := (&Health{Status: HealthStarting}).PsNote(); got != "health: starting" {
		t.Errorf("PsNote starting = %q", got)
	}
	if got := (&Health{Status: HealthUnhealthy}).PsNote(); got != "unhealthy" {
		t.Errorf("PsNote unhealthy = %q", got)
	}
	// Retries 0 is Docker's 3.
	h = &Health{Status: HealthHealthy}
	for i := 0; i < 3; i++ {
		h.Record(at(20+i, 1), &HealthConfig{}, started)
	}
	if h.Status != HealthUnhealthy {
		t.Errorf("default retries: %s after 3 failures", h.Status)
	}
}
