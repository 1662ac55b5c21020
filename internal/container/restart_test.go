package container

import (
	"testing"
	"time"
)

func TestShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		policy  RestartPolicy
		exit    int
		stopped bool
		count   int
		want    bool
	}{
		{RestartPolicy{}, 1, false, 0, false},
		{RestartPolicy{Name: RestartNo}, 1, false, 0, false},
		{RestartPolicy{Name: RestartAlways}, 0, false, 5, true},
		{RestartPolicy{Name: RestartAlways}, 0, true, 0, true}, // at daemon start
		{RestartPolicy{Name: RestartUnlessStopped}, 0, false, 0, true},
		{RestartPolicy{Name: RestartUnlessStopped}, 1, true, 0, false},
		{RestartPolicy{Name: RestartOnFailure}, 0, false, 0, false},
		{RestartPolicy{Name: RestartOnFailure}, 3, false, 100, true},
		{RestartPolicy{Name: RestartOnFailure}, -1, false, 0, false}, // unknown: a re-adopted container
		{RestartPolicy{Name: RestartAlways}, -1, false, 0, true},
		{RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 2}, 3, false, 1, true},
		{RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 2}, 3, false, 2, false},
	} {
		if got := tc.policy.ShouldRestart(tc.exit, tc.stopped, tc.count); got != tc.want {
			t.Errorf("%+v.ShouldRestart(exit %d, stopped %v, count %d) = %v, want %v", tc.policy, tc.exit, tc.stopped, tc.count, got, tc.want)
		}
	}
}

func TestNextRestartDelay(t *testing.T) {
	d := time.Duration(0)
	var got []time.Duration
	for range 12 {
		d = NextRestartDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, time.Minute, time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	if got := NextRestartDelay(time.Minute, 10*time.Second); got != 100*time.Millisecond {
		t.Errorf("after a 10 s run the delay is %v, want 100ms again", got)
	}
}
