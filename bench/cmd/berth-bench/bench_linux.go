package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// bench runs every part of the plan in this (private) namespace and prints
// the table. The parts run in an order that keeps each one's conditions
// known: attach scale on an otherwise idle daemon, then runs, then
// throughput, then the pure benchmarks.
func bench(ctx context.Context, p plan, bin string, log *slog.Logger) (err error) {
	start := time.Now()
	r := &results{plan: p}
	w, err := newWorld(ctx, bin, p.tmpfs, log)
	if w != nil {
		defer func() {
			err = errors.Join(err, w.close(context.WithoutCancel(ctx)))
			if err != nil && w.d != nil {
				printTail(os.Stderr, w.d.LogPath, 40)
			}
		}()
	}
	if err != nil {
		return err
	}
	if r.scale.rssIdle, err = w.d.RSS(); err != nil {
		return err
	}
	if r.commit, err = storeCommits(w.dir, p.commits); err != nil {
		return fmt.Errorf("store commits: %w", err)
	}
	if err := w.setUpBridges(ctx); err != nil {
		return err
	}
	if err := w.scale(ctx, p, &r.scale); err != nil {
		return fmt.Errorf("attach scale: %w", err)
	}
	log.Info("daemon restarts", "n", p.restarts)
	if err := w.restarts(ctx, p, &r.restart); err != nil {
		return fmt.Errorf("restarts: %w", err)
	}
	log.Info("run -d samples")
	if err := w.runs(ctx, p, &r.run); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	log.Info("concurrent runs", "n", p.parallel)
	r.par = w.parallel(ctx, p.parallel)
	if err := w.dataPlane(ctx, p, &r.data); err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	log.Info("go benchmarks")
	if r.goBench, err = goBenches(p.goBench); err != nil {
		return err
	}
	log.Info("removing every container")
	if err := w.d.RemoveAll(ctx); err != nil {
		return err
	}
	if r.leftVeths, err = w.settledVeths(ctx, 0); err != nil {
		return err
	}
	r.elapsed = time.Since(start)
	if err := report(os.Stdout, r, machine()); err != nil {
		return err
	}
	// A figure that is a failure (a leak, a container cut off, a run
	// refused) fails the bench too, so that CI's --quick run catches it.
	if f := failures(r); len(f) > 0 {
		return fmt.Errorf("the bench found failures: %s", strings.Join(f, "; "))
	}
	return nil
}

// settledVeths waits (a bounded while) for berth's veths to come down to
// want, and returns how many there are.
func (w *world) settledVeths(ctx context.Context, want int) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := berthVeths()
		if err != nil || n <= want || time.Now().After(deadline) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// machine describes where the figures come from.
func machine() string {
	var u unix.Utsname
	kernel := "?"
	if unix.Uname(&u) == nil {
		kernel = strings.TrimRight(string(u.Release[:]), "\x00")
	}
	return fmt.Sprintf("%d CPUs, Linux %s, %s", runtime.NumCPU(), kernel, runtime.Version())
}

// printTail copies the last n lines of the file at path to out: the
// daemon's log lives in a directory the bench removes when it ends.
func printTail(out io.Writer, path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	fmt.Fprintf(out, "--- last lines of %s ---\n%s\n", path, strings.Join(lines[max(len(lines)-n, 0):], "\n"))
}
