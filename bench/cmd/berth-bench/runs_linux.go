package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/berth-net/berth/bench/internal/floor"
)

// runs takes the run -d pairs, and beside each pair a floor attach into a
// namespace made beforehand (each side's run makes a namespace, so the
// pair's difference leaves it out too). The floor attaches to a bridge
// of its own with as many ports as berth's default bridge has when the
// rows begin (naive ports, as the floor makes them): on floor0, with
// the scale rows' 1,000 ports, its attach carried a bigger bridge than
// berth's run did.
func (w *world) runs(ctx context.Context, p plan, res *runResult) (err error) {
	ports, err := bridgePorts(defaultBridge)
	if err != nil {
		return fmt.Errorf("ports of %q: %w", defaultBridge, err)
	}
	fl, err := floor.New(floor.Config{Bridge: "floor2", Gateway: runFloorGateway, Table: "floor2", HostNS: w.floorHost})
	if err != nil {
		return fmt.Errorf("the run rows' floor bridge: %w", err)
	}
	defer func() { err = errors.Join(err, fl.Close()) }()
	for i := range ports {
		ns, err := w.newNetns()
		if err != nil {
			return err
		}
		if err := fl.Attach(ns, floorEndpoint("vrf", i, runFloorGateway.Addr().Next())); err != nil {
			return fmt.Errorf("the run rows' floor bridge, port %d: %w", i, err)
		}
	}
	res.floorPorts = ports
	for i := range p.runPairs {
		// Odd pairs run "none" first: whichever goes first must not carry
		// the cost of coming first.
		order := []string{"bridge", "none"}
		if i%2 == 1 {
			order = []string{"none", "bridge"}
		}
		for _, mode := range order {
			t0 := time.Now()
			if _, err := w.d.Run(ctx, fmt.Sprintf("run%s%d", mode, i), image, mode, "sleep", "100000"); err != nil {
				return err
			}
			d := time.Since(t0)
			if mode == "bridge" {
				res.bridge = append(res.bridge, d)
			} else {
				res.none = append(res.none, d)
			}
		}
		ns, err := w.newNetns()
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := fl.Attach(ns, floorEndpoint("vrun", i, runFloorFirst)); err != nil {
			return fmt.Errorf("floor attach: %w", err)
		}
		res.floorFull = append(res.floorFull, time.Since(t0))
		if err := floor.DropNetns(ns); err != nil {
			return err
		}
	}
	return nil
}

// parallel starts n containers on "bridge" at once and checks that each got
// an address of its own.
func (w *world) parallel(ctx context.Context, n int) parallelResult {
	res := parallelResult{n: n}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
		names []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("par%d", i)
			<-start
			_, err := w.d.Run(ctx, name, image, "bridge", "sleep", "100000")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if res.firstErr == nil {
					res.firstErr = err
				}
				return
			}
			names = append(names, name)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.wall = time.Since(t0)
	res.ok = len(names)
	seen := map[netip.Addr]bool{}
	for _, name := range names {
		_, addr, err := w.d.Where(ctx, name, "bridge")
		if err == nil && addr.IsValid() {
			seen[addr] = true
		}
	}
	res.distinct = len(seen)
	return res
}
