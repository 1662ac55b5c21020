package container

import "time"

// Restart policy names, Docker's.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartUnlessStopped = "unless-stopped"
	RestartOnFailure     = "on-failure"
)

// RestartPolicy is HostConfig.RestartPolicy: what happens when the
// container's process exits on its own.
type RestartPolicy struct {
	Name string `json:"name,omitempty"` // "" is "no"
	// MaximumRetryCount bounds on-failure's restarts; 0 is no bound.
	MaximumRetryCount int `json:"maximumRetryCount,omitempty"`
}

// IsNone reports whether the policy never restarts.
func (p RestartPolicy) IsNone() bool { return p.Name == "" || p.Name == RestartNo }

// ShouldRestart is moby's restart manager's rule: always restarts,
// unless-stopped restarts unless the user stopped the container, and
// on-failure restarts after a failed exit while restarts remain.
// (A container the user stops is never restarted when it exits; the
// daemon's next start is when always brings it back.) An exit code below
// 0 is unknown (a container re-adopted by a restarted daemon, which is
// not its parent): on-failure does not take it for a failure, so that a
// job that succeeded is not run twice; moby always knows the code.
func (p RestartPolicy) ShouldRestart(exitCode int, manuallyStopped bool, restartCount int) bool {
	switch p.Name {
	case RestartAlways:
		return true
	case RestartUnlessStopped:
		return !manuallyStopped
	case RestartOnFailure:
		return exitCode > 0 && (p.MaximumRetryCount == 0 || restartCount < p.MaximumRetryCount)
	}
	return false
}

// Docker's restart back-off: 100 ms, doubled on each restart up to a
// minute, and back to 100 ms after a run of 10 s or more.
const (
	restartDelayFirst = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// NextRestartDelay is how long to wait before the next restart, given the
// previous wait (0 for none) and how long the container ran.
func NextRestartDelay(prev, ran time.Duration) time.Duration {
	if ran >= restartResetAfter || prev == 0 {
		return restartDelayFirst
	}
	return min(prev*2, restartDelayMax)
}
