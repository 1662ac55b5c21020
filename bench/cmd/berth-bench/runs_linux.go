package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/berth-net/berth/bench/internal/floor"
)

func (w *world) runs(ctx context.Context, p plan, res *runResult) error {
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
		if err := w.floor.Attach(ns, floorEndpoint("vrun", i, netip.MustParseAddr("10.250.230.2"))); err != nil {
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
