package container

import (
	"errors"
	"slices"
	"time"
)

// HealthConfig is Config.Healthcheck, as moby's HealthConfig: Test is
// ["CMD", arg...], ["CMD-SHELL", command] or ["NONE"] (--no-healthcheck);
// a zero duration or retry count takes Docker's default.
type HealthConfig struct {
	Test          []string      `json:"test,omitempty"`
	Interval      time.Duration `json:"interval,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	StartPeriod   time.Duration `json:"startPeriod,omitempty"`
	StartInterval time.Duration `json:"startInterval,omitempty"`
	Retries       int           `json:"retries,omitempty"`
}

// Health statuses, as Docker names them.
const (
	HealthNone      = "none" // no health check
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Docker's defaults (moby's daemon/health.go) and its limits.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	// HealthOutputMax is how much of a probe's output is kept.
	HealthOutputMax = 4096
	healthLogMax    = 5
	minHealthPeriod = time.Millisecond
)

// CheckHealthConfig applies moby's validateHealthCheck.
func CheckHealthConfig(hc *HealthConfig) error {
	if hc == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", hc.Interval}, {"Timeout", hc.Timeout}, {"StartPeriod", hc.StartPeriod}, {"StartInterval", hc.StartInterval}} {
		if d.v != 0 && d.v < minHealthPeriod {
			return errors.New(d.name + " in Healthcheck cannot be less than 1ms")
		}
	}
	if hc.Retries < 0 {
		return errors.New("Retries in Healthcheck cannot be negative")
	}
	return nil
}

// Probe is the command a health check runs, nil when there is none: no
// config, NONE, or a type moby does not know (it warns and runs nothing).
// CMD-SHELL runs through shell (the container's Config.Shell), or /bin/sh
// -c when it is empty, as moby's getShell.
func (hc *HealthConfig) Probe(shell []string) []string {
	if hc == nil || len(hc.Test) < 2 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return append([]string(nil), hc.Test[1:]...)
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(slices.Clone(shell), hc.Test[1:]...)
	}
	return nil
}

func orDefault(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

// ProbeTimeout is how long one probe may run.
func (hc *HealthConfig) ProbeTimeout() time.Duration {
	return orDefault(hc.Timeout, defaultHealthTimeout)
}

// NextProbe is the wait before the next probe, as moby's monitor: the
// start interval while the container is starting within its start
// period, the interval otherwise (and before the first probe).
func (hc *HealthConfig) NextProbe(sinceStart time.Duration, status string) time.Duration {
	if sinceStart < hc.StartPeriod && status == HealthStarting {
		return orDefault(hc.StartInterval, defaultHealthStartInterval)
	}
	return orDefault(hc.Interval, defaultHealthInterval)
}

// HealthResult is one probe's run (moby's HealthcheckResult).
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"`
}

// Health is State.Health: the status, the failures in a row and the last
// five results.
type Health struct {
	Status        string         `json:"status"`
	FailingStreak int            `json:"failingStreak"`
	Log           []HealthResult `json:"log,omitempty"`
}

// Record applies a probe's result as moby's handleProbeResult: success
// makes the container healthy; a failure counts toward the retries
// unless the container is still starting within its start period
// (started is when the container started), and retries failures in a row
// make it unhealthy. It reports whether the status changed.
func (h *Health) Record(r HealthResult, hc *HealthConfig, started time.Time) (changed bool) {
	old := h.Status
	h.Log = append(h.Log, r)
	if len(h.Log) > healthLogMax {
		h.Log = append([]HealthResult(nil), h.Log[len(h.Log)-healthLogMax:]...)
	}
	if r.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = HealthHealthy
		return h.Status != old
	}
	if h.Status == HealthStarting && r.Start.Sub(started) < hc.StartPeriod {
		return false
	}
	h.FailingStreak++
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	if h.FailingStreak >= retries {
		h.Status = HealthUnhealthy
	}
	return h.Status != old
}

// PsNote is what docker ps adds to "Up …": "health: starting" or the
// status, as moby's Health.String.
func (h *Health) PsNote() string {
	if h.Status == HealthStarting {
		return "health: starting"
	}
	return h.Status
}
