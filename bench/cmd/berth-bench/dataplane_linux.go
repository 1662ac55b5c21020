package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/berth-net/berth/bench/internal/floor"
	"github.com/berth-net/berth/bench/internal/harness"
)

// dataPlane measures TCP throughput between two containers on berth's user
// network and from one of them to the outside server (through berth's
// masquerade), each followed by the same path over the floor's bridge and
// table.
func (w *world) dataPlane(ctx context.Context, p plan, res *dataResult) error {
	var ns [2]string
	var addr [2]netip.Addr
	for i := range ns {
		name := fmt.Sprintf("iperf%d", i)
		if _, err := w.d.Run(ctx, name, image, benchNet, "sleep", "100000"); err != nil {
			return err
		}
		var err error
		if ns[i], addr[i], err = w.d.Where(ctx, name, benchNet); err != nil {
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
		fep[i] = floorEndpoint("vip", i, netip.MustParseAddr("10.250.220.2"))
		if err := w.floor.Attach(fns[i], fep[i]); err != nil {
			return err
		}
	}
	var err error
	w.log.Info("iperf3 container to container")
	if res.c2c, err = harness.Throughput(ctx, ns[0], ns[1], addr[0], p.iperf); err != nil {
		return fmt.Errorf("berth container to container: %w", err)
	}
	if res.c2cFloor, err = harness.Throughput(ctx, fns[0], fns[1], fep[0].Address.Addr(), p.iperf); err != nil {
		return fmt.Errorf("floor container to container: %w", err)
	}
	w.log.Info("iperf3 container to outside")
	if res.c2o, err = harness.Throughput(ctx, w.outside, ns[1], harness.ServerAddr, p.iperf); err != nil {
		return fmt.Errorf("berth container to outside: %w", err)
	}
	if res.c2oFloor, err = harness.Throughput(ctx, w.outside, fns[1], harness.ServerAddr, p.iperf); err != nil {
		return fmt.Errorf("floor container to outside: %w", err)
	}
	return nil
}
