package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/berth-net/berth/bench/internal/floor"
	"github.com/berth-net/berth/bench/internal/harness"
)

// dataPlane measures TCP throughput between two containers on berth's user
// network and from one of them to the outside server (through berth's
// masquerade), each followed by the same path over the floor's bridge and
// table.
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
	if res.c2c, err = harness.Throughput(ctx, ns[0], ns[1], addr[0], p.iperf); err != nil {
		return fmt.Errorf("berth container to container: %w", err)
	}
	if res.c2cFloor, err = harness.Throughput(ctx, fns[0], fns[1], fep[0].Address.Addr(), p.iperf); err != nil {
		return fmt.Errorf("floor container to container: %w", err)
	}
	w.log.Info("iperf3 container to outside")
	if res.c2o, err = harness.Throughput(ctx, w.outside, ns[1], harness.ServerAddr, p.iperf); err != nil {
		return fmt.Errorf("berth container to outside: %w\n%s", err, diagnose(ctx, ns[1], harness.ServerAddr))
	}
	if res.c2oFloor, err = harness.Throughput(ctx, w.outside, fns[1], harness.ServerAddr, p.iperf); err != nil {
		return fmt.Errorf("floor container to outside: %w\n%s", err, diagnose(ctx, fns[1], harness.ServerAddr))
	}
	return nil
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
