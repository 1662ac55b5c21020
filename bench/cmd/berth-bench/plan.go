package main

import "time"

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
	probes    int // running containers (and floor namespaces) that connect and disconnect at each tier
	cycles    int // rounds of connect-all then disconnect-all per tier
	runPairs  int // run -d on bridge / on none, alternating
	parallel  int // concurrent runs
	iperf     time.Duration
	goBench   time.Duration // benchtime of each Go benchmark
}

func defaultPlan() plan {
	return plan{
		name: "default", tiers: []int{10, 100, 1000}, realPorts: 100, probes: 10, cycles: 10,
		runPairs: 20, parallel: 50, iperf: 10 * time.Second, goBench: time.Second,
	}
}

func quickPlan() plan {
	return plan{
		name: "quick", tiers: []int{10, 100}, realPorts: 10, probes: 4, cycles: 3,
		runPairs: 4, parallel: 10, iperf: time.Second, goBench: 100 * time.Millisecond,
	}
}
