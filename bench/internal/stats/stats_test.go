package stats

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func ms(v ...int) Samples {
	s := make(Samples, len(v))
	for i, x := range v {
		s[i] = time.Duration(x) * time.Millisecond
	}
	return s
}

func TestPercentile(t *testing.T) {
	hundred := make(Samples, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // reversed: order must not matter
	}
	tests := []struct {
		name string
		s    Samples
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p95 of 1..100", hundred, 95, 95 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the minimum", hundred, 0.001, time.Millisecond},
		{"p95 of 10 is the maximum", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 95, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Percentile(tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestPercentileKeepsOrder(t *testing.T) {
	s := ms(3, 1, 2)
	s.Percentile(50)
	if diff := cmp.Diff(ms(3, 1, 2), s); diff != "" {
		t.Errorf("Percentile reordered the samples (-want +got):\n%s", diff)
	}
}

func TestSummarize(t *testing.T) {
	// 20 samples growing from 1 to 20 ms: the first tenth is {1,2}, the last {19,20}.
	s := make(Samples, 20)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond
	}
	want := Summary{
		N: 20, Median: 10 * time.Millisecond, P95: 19 * time.Millisecond, P99: 20 * time.Millisecond,
		FirstTen: time.Millisecond, LastTen: 19 * time.Millisecond,
	}
	if diff := cmp.Diff(want, s.Summarize()); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
}

func TestFirstLastShortSeries(t *testing.T) {
	first, last := ms(4, 9, 6).FirstLast()
	if first != 4*time.Millisecond || last != 6*time.Millisecond {
		t.Errorf("FirstLast of 3 samples = %v, %v; want the first and the last sample", first, last)
	}
	if f, l := Samples(nil).FirstLast(); f != 0 || l != 0 {
		t.Errorf("FirstLast of nothing = %v, %v; want 0, 0", f, l)
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{MS(184 * time.Microsecond), "0.184"},
		{MS(2412 * time.Microsecond), "2.41"},
		{MS(31720 * time.Microsecond), "31.7"},
		{MS(412 * time.Millisecond), "412"},
		{MS(-946576 * time.Microsecond), "-947"},
		{MS(-2412 * time.Microsecond), "-2.41"},
		{X(1.0749), "1.07×"},
		{X(Ratio(time.Second, 0)), "-"},
		{X(math.Inf(1)), "-"},
		{Triple(Summary{}), "-"},
		{Triple(ms(1, 2, 3).Summarize()), "2.00 / 3.00 / 3.00"},
		{Pair(ms(1, 2, 3).Summarize()), "2.00 / 3.00"},
		{Bytes(21 << 20), "21.0 MiB"},
		{Gbits(12.345e9), "12.35 Gbit/s"},
		{Gbits(0), "-"},
		{Rate(7411.6), "7,412/s"},
		{Rate(123456789), "123,456,789/s"},
		{Rate(999), "999/s"},
		{Rate(0), "-"},
		{Rounds([]float64{1.62, 1.05, 1.3, 1.31}, 1.3), "rounds 1.05–1.62×, 2 of 4 ≤ 1.30×"},
		{Rounds(nil, 1.3), ""},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestTableGolden(t *testing.T) {
	tab := NewTable("measure", "berth", "floor", "berth/floor", "note")
	tab.Section("attach")
	tab.Add("connect, N=10", Triple(ms(2, 3, 4).Summarize()), Triple(ms(2, 2, 3).Summarize()), X(1.5))
	tab.Add("run -d bridge − none", Pair(ms(40, 50).Summarize()), "", "", "a | in a note")
	tab.Add("too", "many", "cells", "are", "dropped", "here")
	var b strings.Builder
	if err := tab.Render(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestDiff(t *testing.T) {
	if diff := cmp.Diff(ms(2, -1), Diff(ms(5, 3, 9), ms(3, 4))); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if got := Diff(nil, ms(1)); len(got) != 0 {
		t.Errorf("Diff with an empty series = %v, want none", got)
	}
}

func TestRoundRatios(t *testing.T) {
	// Two rounds of three a side and a third that b has only in part: the
	// ratio of each whole round's medians, the torn one left out.
	a := ms(2, 4, 3, 10, 30, 20, 7)
	b := ms(1, 2, 2, 10, 5, 40, 1)
	if diff := cmp.Diff([]float64{1.5, 2}, RoundRatios(a, b, 3)); diff != "" {
		t.Errorf("RoundRatios (-want +got):\n%s", diff)
	}
	if got := RoundRatios(a, b, 0); got != nil {
		t.Errorf("RoundRatios with no round size = %v, want none", got)
	}
}

// TestMean: the average of the samples, 0 for none.
func TestMean(t *testing.T) {
	if got := (Samples{time.Millisecond, 2 * time.Millisecond, 6 * time.Millisecond}).Mean(); got != 3*time.Millisecond {
		t.Errorf("Mean = %v, want 3ms", got)
	}
	if got := Samples(nil).Mean(); got != 0 {
		t.Errorf("Mean of none = %v", got)
	}
}
