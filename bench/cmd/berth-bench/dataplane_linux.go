package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/berth-net/berth/bench/internal/floor"
	"github.com/berth-net/berth/bench/internal/harness"
)

// dataPlane measures TCP throughput between two containers on berth's user
// network and from one of them to the outside server (through berth's
// masquerade), and small TCP exchanges between the two containers (each
// on a new connection, then all on one), each followed by the same path
// over the floor's bridge and table.
func (w *world) dataPlane(ctx context.Context, p plan, res *dataResult) error {
	// Fresh, small bridges: the figures are about the path, not the scale.
	if err := w.d.CreateNetwork(ctx, dpNet, dpBridge, dpSubnet); err != nil {
		return fmt.Errorf("create network %q: %w", dpNet, err)
	}
	fl, err := floor.New(floor.Config{Bridge: "floor1", Gateway: dpFloorGateway, Table: "floor1"})
	if err != nil {
		return err
	}
	w.extra = append(w.extra, fl)
	var ns [2]string
	var addr [2]netip.Addr
	for i := range ns {
		name := fmt.Sprintf("iperf%d", i)
		if _, err := w.d.Run(ctx, name, image, dpNet, "sleep", "100000"); err != nil {
			return err
		}
		var err error
		if ns[i], addr[i], err = w.d.Where(ctx, name, dpNet); err != nil {
			return err
		}
	}
	var fns [2]string
	var fep [2]floor.Endpoint
	for i := range fns {
		var err error
		if fns[i], err = w.newNetns(); err != nil {
			return err
		}
		fep[i] = floorEndpoint("vip", i, dpFloorGateway.Addr().Next())
		if err := fl.Attach(fns[i], fep[i]); err != nil {
			return err
		}
	}
	w.log.Info("iperf3 container to container")
	c2c := func(berth bool) (float64, error) {
		if berth {
			return harness.Throughput(ctx, ns[0], ns[1], addr[0], p.iperf/2)
		}
		return harness.Throughput(ctx, fns[0], fns[1], fep[0].Address.Addr(), p.iperf/2)
	}
	if res.c2c, res.c2cFloor, err = abba(c2c); err != nil {
		return fmt.Errorf("container to container: %w", err)
	}
	w.log.Info("TCP exchanges container to container")
	for _, fresh := range []bool{true, false} {
		ex := &res.trips
		if fresh {
			ex = &res.conns
		}
		// Short blocks, the side going first alternating: the machine's
		// load moves on a scale of seconds, and a ratio of two blocks
		// taken back to back sees little of it.
		block := p.exchange / time.Duration(exchangeRounds)
		for round := range exchangeRounds {
			var rate [2]float64
			for i, berth := range [2]bool{round%2 == 0, round%2 != 0} {
				var err error
				if berth {
					rate[i], err = harness.Exchanges(ctx, ns[0], ns[1], addr[0], block, fresh)
				} else {
					rate[i], err = harness.Exchanges(ctx, fns[0], fns[1], fep[0].Address.Addr(), block, fresh)
				}
				if err != nil {
					return fmt.Errorf("TCP exchanges container to container (berth %v): %w", berth, err)
				}
			}
			if round%2 != 0 {
				rate[0], rate[1] = rate[1], rate[0]
			}
			ex.berth = append(ex.berth, rate[0])
			ex.floor = append(ex.floor, rate[1])
		}
	}
	w.log.Info("iperf3 container to outside")
	c2o := func(berth bool) (float64, error) {
		client := fns[1]
		if berth {
			client = ns[1]
		}
		bps, err := harness.Throughput(ctx, w.outside, client, harness.ServerAddr, p.iperf/2)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, diagnose(ctx, client, harness.ServerAddr))
		}
		return bps, err
	}
	if res.c2o, res.c2oFloor, err = abba(c2o); err != nil {
		return fmt.Errorf("container to outside: %w", err)
	}
	return nil
}

// exchangeRounds is how many blocks of each side the exchange rows take.
const exchangeRounds = 8

// abba measures berth, floor, floor, berth (each for half the time) and
// returns the mean of each: a drift of the machine's load during the four
// runs weighs on both sides alike.
func abba(measure func(berth bool) (float64, error)) (berth, floor float64, err error) {
	for _, b := range []bool{true, false, false, true} {
		v, err := measure(b)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", map[bool]string{true: "berth", false: "floor"}[b], err)
		}
		if b {
			berth += v / 2
		} else {
			floor += v / 2
		}
	}
	return berth, floor, nil
}

// diagnose gathers what explains a path that does not work: the route the
// client's namespace takes, a ping, and the host's routes and neighbours.
func diagnose(ctx context.Context, clientNS string, to netip.Addr) string {
	var b strings.Builder
	for _, args := range [][]string{
		{"nsenter", "--net=" + clientNS, "ip", "route", "get", to.String()},
		{"nsenter", "--net=" + clientNS, "ping", "-c1", "-W1", to.String()},
		{"nsenter", "--net=" + clientNS, "ip", "neigh"},
		{"nsenter", "--net=" + clientNS, "ip", "-s", "link"},
		{"sh", "-c", "bridge link | grep -v forwarding | head; echo forwarding ports: $(bridge link | grep -c forwarding)"},
		{"ip", "route"},
		{"sh", "-c", "ip -4 neigh | grep -v FAILED | head -20; echo neighbours: $(ip -4 neigh | wc -l)"},
		{"sh", "-c", "nft list ruleset | head -80"},
	} {
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s (%v)\n%s\n", strings.Join(args, " "), err, out)
	}
	return b.String()
}
