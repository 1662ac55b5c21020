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
		t0 := time.Now()
		if _, err := w.d.Run(ctx, fmt.Sprintf("runb%d", i), image, "bridge", "sleep", "100000"); err != nil {
			return err
		}
		t1 := time.Now()
		ns, err := w.newNetns()
		if err != nil {
			return err
		}
		if err := w.floor.Attach(ns, floorEndpoint("vrun", i, netip.MustParseAddr("10.250.230.2"))); err != nil {
			return fmt.Errorf("floor attach: %w", err)
		}
		t2 := time.Now()
		if _, err := w.d.Run(ctx, fmt.Sprintf("runn%d", i), image, "none", "sleep", "100000"); err != nil {
			return err
		}
		t3 := time.Now()
		res.bridge = append(res.bridge, t1.Sub(t0))
		res.floorFull = append(res.floorFull, t2.Sub(t1))
		res.none = append(res.none, t3.Sub(t2))
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
