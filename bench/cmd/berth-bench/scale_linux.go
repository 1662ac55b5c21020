package main

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-net/berth/bench/internal/floor"
	"github.com/berth-net/berth/bench/internal/harness"
	"github.com/berth-net/berth/bench/internal/stats"
)

// probe is one running container with its floor twin: a namespace that
// stays, as a running container's does, and the floor endpoint in it.
type probe struct {
	name string
	ns   string
	ep   floor.Endpoint
}

// settle is the pause after each side's block of work (a round's
// connects, a bridge's growth) and before sampling a tier: the kernel work
// a block leaves running finishes in it rather than in the next block.
const settle = time.Second

func (w *world) scale(ctx context.Context, p plan, res *scaleResult) error {
	probes, err := w.startProbes(ctx, p.probes)
	if err != nil {
		return err
	}
	cur := 0
	for _, n := range p.tiers {
		// One bridge, then the other, with a pause between (see cycle):
		// interleaved, each side's attaches would carry the kernel work
		// the other's leave running.
		w.log.Info("growing berth's bridge", "to", n)
		for i := cur; i < n; i++ {
			if err := w.growBerth(ctx, p, i, res); err != nil {
				return err
			}
			if i+1 == p.realPorts {
				if err := w.measureLoaded(ctx, res); err != nil {
					return err
				}
			}
		}
		time.Sleep(settle)
		w.log.Info("growing the floor's bridge", "to", n)
		for i := cur; i < n; i++ {
			if err := w.growFloor(i, res); err != nil {
				return err
			}
		}
		cur = n
		t := tier{n: n, real: min(n, p.realPorts)}
		if got, err := bridgePorts(benchBridge); err != nil || got != n {
			return fmt.Errorf("bridge %q has %d ports (%v), want %d", benchBridge, got, err, n)
		}
		// Let the growth's tail (containers just started, ports just
		// attached, veths being reaped) finish before sampling, so that
		// neither side's samples carry it.
		time.Sleep(settle)
		w.log.Info("sampling", "ports", n)
		before, err := berthVeths()
		if err != nil {
			return err
		}
		for round := range p.cycles {
			if err := w.cycle(ctx, probes, &t, round); err != nil {
				return err
			}
		}
		// Every pair a disconnect cut off must be reaped: a leak shows
		// here, while the containers still run (once they are removed,
		// their namespaces take any pair left in them along).
		after, err := w.settledVeths(ctx, before)
		if err != nil {
			return err
		}
		t.leftVeths = max(after-before, 0)
		res.tiers = append(res.tiers, t)
	}
	res.reachBerth, res.reachFloor = w.reachOutside(ctx, probes[0])
	return nil
}

// reachOutside checks, with the bridges at their largest, that a probe
// reaches the outside server over TCP through berth's network and through
// the floor's; "" means it does, otherwise what failed.
func (w *world) reachOutside(ctx context.Context, pr probe) (berth, floorErr string) {
	// Three tries for either side: a port attached a moment ago may still
	// be coming up (the kernel's link watch enables it asynchronously).
	check := func(outside, ns string) string {
		var err error
		for try := 0; try < 3; try++ {
			if _, err = harness.Throughput(ctx, outside, ns, harness.ServerAddr, time.Second); err == nil {
				return ""
			}
			time.Sleep(200 * time.Millisecond)
		}
		return err.Error()
	}
	if err := w.d.NetworkConnect(ctx, benchNet, pr.name, nil); err != nil {
		berth = err.Error()
	} else {
		if ns, _, err := w.d.Where(ctx, pr.name, benchNet); err != nil {
			berth = err.Error()
		} else {
			berth = check(w.outside, ns)
		}
		w.d.NetworkDisconnect(ctx, benchNet, pr.name, false)
	}
	if err := w.floor.Attach(pr.ns, pr.ep); err != nil {
		return berth, err.Error()
	}
	floorErr = check(w.floorOutside, pr.ns)
	w.floor.Detach(pr.ep)
	return berth, floorErr
}

// startProbes runs the probe containers on "bridge" (docker refuses to
// connect a container on "none") and makes their floor twins.
func (w *world) startProbes(ctx context.Context, n int) ([]probe, error) {
	probes := make([]probe, n)
	for i := range probes {
		pr := &probes[i]
		pr.name = fmt.Sprintf("probe%d", i)
		if _, err := w.d.Run(ctx, pr.name, image, "bridge", "sleep", "100000"); err != nil {
			return nil, err
		}
		// An untimed first round: a container's first connect to a user
		// network also starts its DNS resolver (once per sandbox), which
		// the growth series shows; the tiers measure the steady state.
		if err := w.d.NetworkConnect(ctx, benchNet, pr.name, nil); err != nil {
			return nil, err
		}
		if err := w.d.NetworkDisconnect(ctx, benchNet, pr.name, false); err != nil {
			return nil, err
		}
		var err error
		if pr.ns, err = w.newNetns(); err != nil {
			return nil, err
		}
		pr.ep = floorEndpoint("fpr", i, probeFirst)
	}
	return probes, nil
}

// growBerth adds port number i to berth's bridge: up to realPorts, a
// container started on "bridge" and connected (each connect a sample);
// beyond, a bare port made by the floor code berth's way (each a sample).
func (w *world) growBerth(ctx context.Context, p plan, i int, res *scaleResult) error {
	if i < p.realPorts {
		name := fmt.Sprintf("fill%d", i)
		if _, err := w.d.Run(ctx, name, image, "bridge", "sleep", "100000"); err != nil {
			return err
		}
		t0 := time.Now()
		if err := w.d.NetworkConnect(ctx, benchNet, name, nil); err != nil {
			return fmt.Errorf("connect %q: %w", name, err)
		}
		res.growBerth = append(res.growBerth, time.Since(t0))
	} else {
		bns, err := w.newNetns()
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := w.fill.Attach(bns, floorEndpoint("vfill", i, fillFirst)); err != nil {
			return fmt.Errorf("bare port %d on %q: %w", i, benchBridge, err)
		}
		res.growBare = append(res.growBare, time.Since(t0))
	}
	return nil
}

// growFloor adds port number i to the floor's bridge: an attach into a
// ready namespace (each a sample).
func (w *world) growFloor(i int, res *scaleResult) error {
	fns, err := w.newNetns()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := w.floor.Attach(fns, floorEndpoint("vfl", i, floorFirst)); err != nil {
		return fmt.Errorf("floor port %d: %w", i, err)
	}
	res.growFloor = append(res.growFloor, time.Since(t0))
	return nil
}

// cycle is one round at a tier: berth connects every probe, then
// disconnects every probe; the floor attaches and detaches its twins the
// same way; which of the two goes first alternates from round to round.
// After each block the bench waits settle, so that the kernel
// work each side leaves running in the background (the floor's IPv6
// duplicate-address detection and MLD reports, queued for up to a second
// after an attach and run by kernel workers under the RTNL lock that every
// attach takes, in every namespace; berth's reaper) is charged to the side
// that caused it rather than to whichever attaches next. Pairing single
// calls (as the bench first did) let the naive floor's IPv6 work at 1,000
// ports land on berth's next connect.
func (w *world) cycle(ctx context.Context, probes []probe, t *tier, round int) error {
	// each runs step for every probe in turn, timing each into samples.
	each := func(samples *stats.Samples, step func(probe) error) error {
		for _, pr := range probes {
			if err := timed(samples, func() error { return step(pr) })(); err != nil {
				return err
			}
		}
		return nil
	}
	berth := func() error {
		n0, s0, err := harness.NetworkActionTotals(ctx, metricsAddr, "connect")
		if err != nil {
			return err
		}
		if err := each(&t.connect, func(pr probe) error {
			return wrapErr(w.d.NetworkConnect(ctx, benchNet, pr.name, nil), "connect %q", pr.name)
		}); err != nil {
			return err
		}
		n1, s1, err := harness.NetworkActionTotals(ctx, metricsAddr, "connect")
		if err != nil {
			return err
		}
		t.daemonConnects += n1 - n0
		t.daemonConnectSeconds += s1 - s0
		return each(&t.disconnect, func(pr probe) error {
			return wrapErr(w.d.NetworkDisconnect(ctx, benchNet, pr.name, false), "disconnect %q", pr.name)
		})
	}
	floor := func() error {
		// The attach's last step is its nftables element: timed apart,
		// for the row that leaves it out.
		var element time.Time
		w.floor.OnStep = func(step string) {
			if step == "nftables element" {
				element = time.Now()
			}
		}
		defer func() { w.floor.OnStep = nil }()
		if err := each(&t.floorAttach, func(pr probe) error {
			err := wrapErr(w.floor.Attach(pr.ns, pr.ep), "floor attach %q", pr.ep.HostIf)
			if err == nil {
				t.floorElement = append(t.floorElement, time.Since(element))
			}
			return err
		}); err != nil {
			return err
		}
		return each(&t.floorDetach, func(pr probe) error {
			return wrapErr(w.floor.Detach(pr.ep), "floor detach %q", pr.ep.HostIf)
		})
	}
	settled := func(f func() error) func() error {
		return func() error {
			if err := f(); err != nil {
				return err
			}
			time.Sleep(settle)
			return nil
		}
	}
	return inTurn(round%2 == 0, settled(berth), settled(floor))
}

// timed is f that, when it succeeds, appends how long it took to samples.
func timed(samples *stats.Samples, f func() error) func() error {
	return func() error {
		t0 := time.Now()
		if err := f(); err != nil {
			return err
		}
		*samples = append(*samples, time.Since(t0))
		return nil
	}
}

// wrapErr says what failed, or is nil.
func wrapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// inTurn runs a then b, or b then a.
func inTurn(aFirst bool, a, b func() error) error {
	if !aFirst {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}

// measureLoaded records the daemon's RSS with every container so far running.
func (w *world) measureLoaded(ctx context.Context, res *scaleResult) error {
	list, err := w.d.ContainerList(ctx, false, nil)
	if err != nil {
		return err
	}
	res.loaded = len(list)
	if res.rssLoaded, err = w.d.RSS(); err != nil {
		return err
	}
	res.reaperRSS, res.reaperPrivate, err = w.d.ReaperRSS()
	return err
}
