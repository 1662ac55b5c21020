package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-net/berth/bench/internal/harness"
	"github.com/berth-net/berth/bench/internal/stats"
)

// A comparison of two berth binaries (--against): the daemon's side of a
// connect, a disconnect and a ping, with no floor, the two daemons taking
// turns. Two builds differ by tens of microseconds where the floor's own
// median moves by hundreds from run to run: compared through their ratios
// to the floor in separate runs, such a change was "inside one run's
// spread" (the notebook, sessions 30 to 35). Here each round starts one
// daemon and then the other on the same namespaces, each doing the same
// work, and which goes first alternates.

// againstPlan sizes a comparison.
type againstPlan struct {
	rounds int // per daemon, alternating
	probes int // running containers connected and disconnected in turn
	cycles int // connect-all then disconnect-all, per round
	pings  int // back-to-back pings, per round
}

func defaultAgainstPlan(quick bool) againstPlan {
	if quick {
		return againstPlan{rounds: 2, probes: 3, cycles: 10, pings: 100}
	}
	return againstPlan{rounds: 10, probes: 5, cycles: 40, pings: 300}
}

// daemonRound is one daemon's samples in one round.
type daemonRound struct {
	connect, disconnect, ping stats.Samples
}

// against runs the comparison of bin (A) with other (B).
func against(ctx context.Context, p againstPlan, bin, other string, log *slog.Logger) error {
	start := time.Now()
	bins := [2]string{bin, other}
	rounds := make([][2]daemonRound, p.rounds)
	for round := range rounds {
		for i := range 2 {
			which := i
			if round%2 == 1 {
				which = 1 - i // B first in odd rounds
			}
			log.Info("comparison round", "round", round, "daemon", bins[which])
			r, err := againstRound(ctx, p, bins[which])
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", bins[which], round, err)
			}
			rounds[round][which] = r
		}
	}
	return reportAgainst(os.Stdout, bins, rounds, time.Since(start))
}

// againstRound starts bin on a data-root of its own, times its connects,
// disconnects and pings, and removes what it made.
func againstRound(ctx context.Context, p againstPlan, bin string) (r daemonRound, err error) {
	dir, err := os.MkdirTemp("", "against-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	d, err := harness.StartDaemon(ctx, bin, dir)
	if err != nil {
		return r, err
	}
	defer func() {
		if rmErr := d.RemoveAll(ctx); rmErr != nil && err == nil {
			err = rmErr
		}
		if stopErr := d.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		if err != nil {
			printTail(os.Stderr, d.LogPath, 40)
		}
	}()
	if err := d.ImportBusybox(ctx, image); err != nil {
		return r, err
	}
	if err := d.CreateNetwork(ctx, benchNet, benchBridge, benchSubnet); err != nil {
		return r, err
	}
	names := make([]string, p.probes)
	for i := range names {
		names[i] = fmt.Sprintf("probe%d", i)
		if _, err := d.Run(ctx, names[i], image, "bridge", "sleep", "100000"); err != nil {
			return r, err
		}
		// The first connect also starts the container's resolver: untimed.
		if err := d.NetworkConnect(ctx, benchNet, names[i], nil); err != nil {
			return r, err
		}
		if err := d.NetworkDisconnect(ctx, benchNet, names[i], false); err != nil {
			return r, err
		}
	}
	for range p.cycles {
		for _, n := range names {
			if err := timed(&r.connect, func() error { return d.NetworkConnect(ctx, benchNet, n, nil) })(); err != nil {
				return r, fmt.Errorf("connect %s: %w", n, err)
			}
		}
		for _, n := range names {
			if err := timed(&r.disconnect, func() error { return d.NetworkDisconnect(ctx, benchNet, n, false) })(); err != nil {
				return r, fmt.Errorf("disconnect %s: %w", n, err)
			}
		}
		time.Sleep(20 * time.Millisecond) // the reaper's share lands here, not on the next connect
	}
	for range p.pings {
		if err := timed(&r.ping, func() error { _, err := d.Ping(ctx); return err })(); err != nil {
			return r, fmt.Errorf("ping: %w", err)
		}
	}
	return r, nil
}

// reportAgainst prints the comparison's table: per round each daemon's
// medians and their ratio, then the median of the rounds' ratios.
func reportAgainst(w io.Writer, bins [2]string, rounds [][2]daemonRound, took time.Duration) error {
	fmt.Fprintf(w, "berth-bench --against: A = %s, B = %s, took %s\n\n", bins[0], bins[1], took.Round(time.Second))
	t := stats.NewTable("round", "measure", "A, ms p50", "B, ms p50", "A/B")
	ratios := map[string][]float64{}
	measures := []struct {
		name string
		of   func(daemonRound) stats.Samples
	}{
		{"connect", func(r daemonRound) stats.Samples { return r.connect }},
		{"disconnect", func(r daemonRound) stats.Samples { return r.disconnect }},
		{"ping", func(r daemonRound) stats.Samples { return r.ping }},
	}
	for i, r := range rounds {
		first := "A first"
		if i%2 == 1 {
			first = "B first"
		}
		for _, m := range measures {
			a, b := m.of(r[0]).Median(), m.of(r[1]).Median()
			ratio := stats.Ratio(a, b)
			ratios[m.name] = append(ratios[m.name], ratio)
			t.Add(fmt.Sprintf("%d (%s)", i, first), m.name, stats.MS(a), stats.MS(b), stats.X(ratio))
		}
	}
	for _, m := range measures {
		t.Add("all", m.name+": median of the rounds' ratios", "", "", stats.X(median(ratios[m.name])))
	}
	return t.Render(w)
}

// absBinary is path made absolute, checked to be a file.
func absBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() {
		return "", fmt.Errorf("--against %s: not a berth binary (%v)", path, err)
	}
	return abs, nil
}
