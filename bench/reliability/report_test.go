package reliability

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 99, 0},
		{ms(5), 50, 5 * time.Millisecond},
		{ms(9, 1, 5, 3, 7), 50, 5 * time.Millisecond},
		{ms(9, 1, 5, 3, 7), 100, 9 * time.Millisecond},
		{ms(9, 1, 5, 3, 7), 0, 1 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
	in := ms(3, 1, 2)
	Percentile(in, 50)
	if in[0] != 3*time.Millisecond {
		t.Error("Percentile sorted its input")
	}
}

func TestReportsPrintTheirFigures(t *testing.T) {
	var b strings.Builder
	StormReport{Kills: 3, Ops: 10, Interrupted: map[string]int{"run": 2, "rm -f": 1},
		Restarts: []time.Duration{time.Second}, Leaks: []string{"after kill 2: x"}}.Print(&b)
	for _, want := range []string{"3 SIGKILLs, 10 API operations", "killed during: rm -f 1, run 2", "after restarts: 1", "after kill 2: x"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("storm report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	ConcurrencyReport{ListLatency: []time.Duration{time.Millisecond}, RunErrors: []string{"x"}}.Print(&b, 100)
	for _, want := range []string{"100 runs at once", "(1 failed)", "1 answers, 0 failures"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("concurrency report lacks %q:\n%s", want, b.String())
		}
	}
}
