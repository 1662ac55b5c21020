package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// plan sizes one bench run.
type plan struct {
	name string
	// tiers are the numbers of ports on the bridge at which connect and
	// disconnect are sampled, ascending.
	tiers []int
	// realPorts of each tier's ports are running containers connected one
	// by one (the growth series); the rest are bare ports the floor code
	// adds to berth's bridge, because runc starts ~2 containers a second
	// here and 1,000 would take the whole budget.
	realPorts int
	probes    int           // running containers (and floor namespaces) that connect and disconnect at each tier
	cycles    int           // rounds of connect-all then disconnect-all per tier (12 × 10 probes: 120 samples a side, enough for a median that holds still on a shared VM)
	runPairs  int           // run -d on bridge / on none, alternating
	parallel  int           // concurrent runs
	iperf     time.Duration // per side, in halves of whole seconds
	exchange  time.Duration // per side, of each kind of small TCP exchange
	goBench   time.Duration // benchtime of each Go benchmark
	commits   int           // store commits timed
	restarts  int           // daemon restarts timed, with the scale's containers running
	tmpfs     bool          // data-root on a tmpfs
}

func defaultPlan() plan {
	return plan{
		name: "default", tiers: []int{10, 100, 1000}, realPorts: 100, probes: 10, cycles: 12,
		runPairs: 10, parallel: 50, iperf: 10 * time.Second, exchange: 4 * time.Second, goBench: time.Second, commits: 30, restarts: 5,
	}
}

func quickPlan() plan {
	return plan{
		name: "quick", tiers: []int{10, 100}, realPorts: 10, probes: 4, cycles: 3,
		runPairs: 3, parallel: 10, iperf: 2 * time.Second, exchange: time.Second, goBench: 100 * time.Millisecond, commits: 10, restarts: 2,
	}
}

// override replaces the tiers (a comma-separated list, ascending) and the
// number of real containers, when given.
func (p *plan) override(tiers string, realPorts int) error {
	if tiers != "" {
		var ts []int
		for _, f := range strings.Split(tiers, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 4000 {
				return fmt.Errorf("invalid tier %q in --tiers %q: want a number of ports from 1 to 4000", f, tiers)
			}
			ts = append(ts, n)
		}
		if !slices.IsSorted(ts) || len(slices.Compact(slices.Clone(ts))) != len(ts) {
			return fmt.Errorf("--tiers %q must be ascending", tiers)
		}
		p.tiers = ts
	}
	if realPorts < 0 {
		return fmt.Errorf("--real %d: want 0 or more", realPorts)
	}
	if realPorts > 0 {
		p.realPorts = realPorts
	}
	p.realPorts = min(p.realPorts, p.tiers[len(p.tiers)-1])
	return nil
}
