package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/bench/internal/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// series is n samples rising linearly from lo to hi milliseconds.
func series(n int, lo, hi float64) stats.Samples {
	s := make(stats.Samples, n)
	for i := range s {
		ms := lo
		if n > 1 {
			ms += (hi - lo) * float64(i) / float64(n-1)
		}
		s[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return s
}

// TestReportGolden renders a fixed set of results, so that a change to
// the table's layout shows up as a diff of the golden file.
func TestReportGolden(t *testing.T) {
	r := &results{
		plan:    quickPlan(),
		elapsed: 42 * time.Second,
		scale: scaleResult{
			tiers: []tier{
				{n: 10, real: 10, connect: series(12, 3, 6), floorAttach: series(12, 2, 4), floorElement: series(12, 0.1, 0.3), disconnect: series(12, 1, 2), floorDetach: series(12, 30, 40),
					daemonConnects: 12, daemonConnectSeconds: 0.030},
				{n: 100, real: 10, connect: series(12, 3.5, 7), floorAttach: series(12, 3, 5), floorElement: series(12, 0.1, 0.3), disconnect: series(12, 1, 2.5), floorDetach: series(12, 31, 45), leftVeths: 1},
			},
			growBerth: series(10, 3, 4), growFloor: series(100, 2, 5), growBare: series(90, 1.5, 2.5),
			rssIdle: 17 << 20, rssLoaded: 22 << 20, reaperRSS: 16 << 20, reaperPrivate: 6 << 20, loaded: 14,
		},
		run: runResult{bridge: series(4, 250, 300), none: series(4, 200, 240), floorFull: series(4, 5, 7), floorPorts: 14},
		par: parallelResult{n: 10, ok: 9, distinct: 9, wall: 2200 * time.Millisecond, firstErr: errors.New("create \"par3\": boom")},
		data: dataResult{c2c: 5.1e9, c2cFloor: 5.3e9, c2o: 4.0e9, c2oFloor: 4.2e9,
			conns: exchangeResult{berth: []float64{5012, 4800, 5300, 5100}, floor: []float64{5230, 5000, 5100, 5600}},
			trips: exchangeResult{berth: []float64{11840, 12100}, floor: []float64{12010, 11900}}},
		goBench: goBenchResult{ipam: 165 * time.Nanosecond, rules: 1810600 * time.Nanosecond},
		commit:  series(10, 0.5, 2),
		restart: restartResult{containers: 14, stop: series(2, 9, 11), serve: series(2, 100, 140), flows: 380, lost: 2, flowErr: "enter namespace: boom",
			lookupTargets: 4, lookups: 300, lookupsFailed: 1, slowestLookup: 512 * time.Millisecond, lookupErr: "read udp4 127.0.0.1:40000->127.0.0.11:53: i/o timeout",
			proxied: proxyCount{lines: 2000, cut: 1, conns: 200, failed: 3, slowest: 480 * time.Millisecond, err: "read tcp6 [::1]:41000->[::1]:18080: read: connection reset by peer"}},
	}
	var b strings.Builder
	if err := report(&b, r, "2 CPUs, Linux test"); err != nil {
		t.Fatal(err)
	}
	// The figures that are failures fail the bench (and CI's --quick run).
	wantFailures := []string{"1 veths left after the disconnect rounds at N=100", "10 concurrent runs: 9 succeeded, 9 distinct addresses",
		"restarts: 2 flows lost enter namespace: boom", "restarts: 1 DNS lookups failed read udp4",
		"restarts: proxied connections cut 1, failed 3"}
	got := strings.Join(failures(r), "\n")
	for _, w := range wantFailures {
		if !strings.Contains(got, w) {
			t.Errorf("failures lack %q:\n%s", w, got)
		}
	}
	ok := &results{plan: quickPlan(), scale: scaleResult{tiers: []tier{{n: 10}}}, par: parallelResult{n: 3, ok: 3, distinct: 3}}
	if f := failures(ok); len(f) != 0 {
		t.Errorf("a clean run has failures: %q", f)
	}
	path := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("report differs from %s (-want +got):\n%s", path, diff)
	}
}

func TestPlansFitTheirBudget(t *testing.T) {
	for _, p := range []plan{defaultPlan(), quickPlan()} {
		if p.realPorts > p.tiers[len(p.tiers)-1] {
			t.Errorf("%s plan: %d real ports exceed the top tier %d", p.name, p.realPorts, p.tiers[len(p.tiers)-1])
		}
		for i := 1; i < len(p.tiers); i++ {
			if p.tiers[i] <= p.tiers[i-1] {
				t.Errorf("%s plan: tiers %v are not ascending", p.name, p.tiers)
			}
		}
	}
	if q := quickPlan(); q.iperf > 4*time.Second || q.parallel > 10 {
		t.Errorf("quick plan too heavy for CI: iperf %v, %d parallel runs", q.iperf, q.parallel)
	}
}

func TestPlanOverride(t *testing.T) {
	p := quickPlan()
	if err := p.override("5, 50,500", 20); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{5, 50, 500}, p.tiers); diff != "" || p.realPorts != 20 {
		t.Errorf("override: tiers (-want +got) %s, real %d", diff, p.realPorts)
	}
	for _, bad := range []struct {
		tiers string
		real  int
	}{{"10,x", 0}, {"100,10", 0}, {"10,10", 0}, {"0", 0}, {"5000", 0}, {"", -1}} {
		p := quickPlan()
		if err := p.override(bad.tiers, bad.real); err == nil {
			t.Errorf("override(%q, %d) succeeded, want an error", bad.tiers, bad.real)
		}
	}
}
