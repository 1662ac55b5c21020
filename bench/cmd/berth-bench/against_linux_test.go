package main

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/bench/internal/stats"
)

// TestReportAgainst: each round's medians land in A's and B's columns
// whichever daemon went first, and the last rows are the medians of the
// rounds' ratios.
func TestReportAgainst(t *testing.T) {
	us := func(v ...int) stats.Samples {
		var s stats.Samples
		for _, x := range v {
			s = append(s, time.Duration(x)*time.Microsecond)
		}
		return s
	}
	rounds := [][2]daemonRound{
		{{connect: us(900, 1000, 1100), disconnect: us(500), ping: us(30)}, {connect: us(1000), disconnect: us(500), ping: us(30)}},
		{{connect: us(800), disconnect: us(600), ping: us(40)}, {connect: us(1000), disconnect: us(500), ping: us(20)}},
		{{connect: us(1200), disconnect: us(500), ping: us(30)}, {connect: us(1000), disconnect: us(500), ping: us(30)}},
	}
	var b strings.Builder
	if err := reportAgainst(&b, [2]string{"/a/berth", "/b/berth"}, rounds, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(b.String()), " ") // the columns' padding aside
	for _, want := range []string{
		"A = /a/berth, B = /b/berth, took 1m30s",
		"| 0 (A first) | connect | 1.00 | 1.00 | 1.00× |",
		"| 1 (B first) | connect | 0.800 | 1.00 | 0.80× |",
		"| 1 (B first) | ping | 0.040 | 0.020 | 2.00× |",
		"| 2 (A first) | connect | 1.20 | 1.00 | 1.20× |",
		"| all | connect: median of the rounds' ratios | | | 1.00× |",
		"| all | disconnect: median of the rounds' ratios | | | 1.00× |",
		"| all | ping: median of the rounds' ratios | | | 1.00× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
