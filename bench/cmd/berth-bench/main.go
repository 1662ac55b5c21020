// Command berth-bench measures berth beside the bare-kernel floor and
// prints one table: attach (network connect/disconnect of a running
// container) at 10, 100 and 1,000 ports on one bridge, the networking share
// of `run -d`, 50 concurrent runs, TCP throughput container-to-container
// and container-to-outside, the daemon's memory, and the pure hot paths.
//
// It needs root and runs entirely in namespaces of its own: it re-executes
// itself under `unshare --net --mount --pid --fork`, so everything it makes
// (bridges, namespaces, rules, mounts, containers' processes) dies with it.
//
//	go build -o /tmp/b/berth ./cmd/berth && go run ./bench/cmd/berth-bench --berth /tmp/b/berth [--quick]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

// insideEnv marks the re-executed bench inside its namespaces.
const insideEnv = "BERTH_BENCH_INSIDE"

func main() {
	quick := flag.Bool("quick", false, "a reduced set in under a minute (what CI runs)")
	bin := flag.String("berth", os.Getenv("BERTH_BIN"), "the berth binary to benchmark (default: build ./cmd/berth)")
	verbose := flag.Bool("v", false, "log progress to stderr")
	tmpfs := flag.Bool("tmpfs", false, "put the daemon's data-root on a tmpfs (no fsync cost), to separate the store's share")
	tiers := flag.String("tiers", "", "ports on the bridge at which attach is sampled, e.g. 10,100,1000 (default: the plan's)")
	realPorts := flag.Int("real", 0, "how many of those ports are running containers (default: the plan's)")
	other := flag.String("against", "", "instead of the table: compare --berth (A) with this other berth binary (B), the daemon's side of connect, disconnect and ping, the two daemons taking turns, no floor")
	flag.Parse()
	o := options{quick: *quick, bin: *bin, verbose: *verbose, tmpfs: *tmpfs, tiers: *tiers, realPorts: *realPorts, against: *other}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "berth-bench:", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	quick, verbose, tmpfs bool
	bin, tiers, against   string
	realPorts             int
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (it makes namespaces, bridges and containers in a private namespace)")
	}
	if os.Getenv(insideEnv) != "1" {
		return reexec(o)
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := requirePrivateNamespace(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.against != "" {
		return against(ctx, defaultAgainstPlan(o.quick), o.bin, o.against, log)
	}
	plan := defaultPlan()
	if o.quick {
		plan = quickPlan()
	}
	plan.tmpfs = o.tmpfs
	if err := plan.override(o.tiers, o.realPorts); err != nil {
		return err
	}
	return bench(ctx, plan, o.bin, log)
}

// reexec builds berth if no binary was given, then runs this program again
// under unshare: a new network, mount and PID namespace, with mounts
// private and its own /proc. When the bench exits, its PID namespace ends
// and the kernel kills every process left in it.
func reexec(o options) error {
	bin := o.bin
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "berth")
		fmt.Fprintln(os.Stderr, "berth-bench: building ./cmd/berth")
		build := exec.Command("go", "build", "-o", bin, "./cmd/berth")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build berth (run from the repository root, or pass --berth): %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--mount-proc",
		"--", self, "--berth", bin}
	for flag, on := range map[string]bool{"--quick": o.quick, "-v": o.verbose, "--tmpfs": o.tmpfs} {
		if on {
			args = append(args, flag)
		}
	}
	if o.tiers != "" {
		args = append(args, "--tiers", o.tiers)
	}
	if o.realPorts != 0 {
		args = append(args, "--real", strconv.Itoa(o.realPorts))
	}
	if o.against != "" {
		other, err := absBinary(o.against)
		if err != nil {
			return err
		}
		args = append(args, "--against", other)
	}
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), insideEnv+"=1", "TMPDIR="+dir)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench in private namespaces: %w", err)
	}
	return nil
}
