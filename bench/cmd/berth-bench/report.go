package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/berth-net/berth/bench/internal/stats"
)

// report renders the one table of a run.
func report(w io.Writer, r *results, machine string) error {
	fmt.Fprintf(w, "berth-bench, %s plan, %s, took %s\n\n", r.plan.name, machine, r.elapsed.Round(time.Second))
	t := stats.NewTable("measure", "berth", "floor", "berth/floor", "target", "note")
	attachRows(t, r)
	runRows(t, r)
	restartRows(t, r)
	dataRows(t, r)
	otherRows(t, r)
	return t.Render(w)
}

// connectTarget is the bound on connect's berth/floor ratio.
const connectTarget = 1.3

func attachRows(t *stats.Table, r *results) {
	s := r.scale
	t.Section("network connect of a running container, ms median / p95 / p99")
	for _, tr := range s.tiers {
		c, f := tr.connect.Summarize(), tr.floorAttach.Summarize()
		note := portsNote(tr)
		if rounds := stats.Rounds(stats.RoundRatios(tr.connect, tr.floorAttach, r.plan.probes), connectTarget); rounds != "" {
			note += "; " + rounds
		}
		t.Add(fmt.Sprintf("connect, N=%d", tr.n), stats.Triple(c), stats.Triple(f),
			stats.X(stats.Ratio(c.Median, f.Median)), "≤ "+stats.X(connectTarget), note)
	}
	// The floor adds one nftables element an attach; berth's
	// connect adds none (its rules match a bridge by name), so the floor
	// does a step berth does not: the same ratio without it.
	for _, tr := range s.tiers {
		if len(tr.floorElement) != len(tr.floorAttach) || len(tr.floorElement) == 0 {
			continue
		}
		e, f := tr.floorElement.Summarize(), stats.Diff(tr.floorAttach, tr.floorElement).Summarize()
		t.Add(fmt.Sprintf("connect, N=%d, floor without its nftables element", tr.n), "", stats.Triple(f),
			stats.X(stats.Ratio(tr.connect.Median(), f.Median)), "",
			fmt.Sprintf("the element, median %s ms, is a step berth's connect does not take", stats.MS(e.Median)))
	}
	for _, tr := range s.tiers {
		if tr.daemonConnects == 0 || len(tr.floorAttach) == 0 {
			continue
		}
		own := time.Duration(tr.daemonConnectSeconds / tr.daemonConnects * float64(time.Second))
		floorMean := tr.floorAttach.Mean()
		t.Add(fmt.Sprintf("connect, N=%d, the daemon's own part (mean)", tr.n), stats.MS(own), stats.MS(floorMean),
			stats.X(stats.Ratio(own, floorMean)), "",
			fmt.Sprintf("from its metrics (engine_daemon_network_actions_seconds, connect), %.0f connects, without the API's way in and out; the whole connect's mean %s ms", tr.daemonConnects, stats.MS(tr.connect.Mean())))
	}
	if len(s.tiers) > 1 {
		lo, hi := s.tiers[0], s.tiers[len(s.tiers)-1]
		t.Add(fmt.Sprintf("connect median, N=%d ÷ N=%d", hi.n, lo.n),
			stats.X(stats.Ratio(hi.connect.Median(), lo.connect.Median())),
			stats.X(stats.Ratio(hi.floorAttach.Median(), lo.floorAttach.Median())), "", "flat (≈ 1×)", "growth with the bridge")
	}
	if n := len(s.growBerth); n > 0 {
		bf, bl := s.growBerth.FirstLast()
		ff, fl := s.growFloor[:min(n, len(s.growFloor))].FirstLast()
		t.Add(fmt.Sprintf("growing 0→%d: first → last 10 %%", n), stats.MS(bf)+" → "+stats.MS(bl), stats.MS(ff)+" → "+stats.MS(fl),
			"", "flat", "first connect of each: starts its DNS resolver too")
	}
	if n := len(s.growFloor); n > len(s.growBerth) {
		ff, fl := s.growFloor.FirstLast()
		t.Add(fmt.Sprintf("floor growing 0→%d: first → last 10 %%", n), "", stats.MS(ff)+" → "+stats.MS(fl), "", "", "the naive floor's own growth")
	}
	if n := len(s.growBare); n > 0 {
		bf, bl := s.growBare.FirstLast()
		t.Add(fmt.Sprintf("bare ports, IPv6 off, %d→%d: first → last 10 %%", len(s.growBerth), len(s.growBerth)+n), "", stats.MS(bf)+" → "+stats.MS(bl), "", "",
			"the floor made berth's way, on berth's bridge: the kernel's own growth")
	}
	if c := r.commit.Summarize(); c.N > 0 {
		fs := "disk"
		if r.plan.tmpfs {
			fs = "tmpfs"
		}
		t.Add("store commit (journal append + fdatasync)", stats.Triple(c), "", "", "",
			fmt.Sprintf("data-root on %s; a connect or disconnect waits for 1, overlapped with the kernel work", fs))
	}
	t.Section("network disconnect of a running container, ms median / p95 / p99")
	for _, tr := range s.tiers {
		d, f := tr.disconnect.Summarize(), tr.floorDetach.Summarize()
		t.Add(fmt.Sprintf("disconnect, N=%d", tr.n), stats.Triple(d), stats.Triple(f),
			stats.X(stats.Ratio(d.Median, f.Median)), "fast, no leak", "floor: synchronous veth delete")
	}
}

func portsNote(tr tier) string {
	if tr.real == tr.n {
		return fmt.Sprintf("%d containers on the bridge", tr.n)
	}
	return fmt.Sprintf("%d containers + %d bare ports", tr.real, tr.n-tr.real)
}

func runRows(t *stats.Table, r *results) {
	t.Section("run -d, ms median / p95")
	b, n, f := r.run.bridge.Summarize(), r.run.none.Summarize(), r.run.floorFull.Summarize()
	t.Add("run -d --network bridge", stats.Pair(b), "", "", "", fmt.Sprintf("%d pairs, order alternating", b.N))
	t.Add("run -d --network none", stats.Pair(n))
	share := stats.Diff(r.run.bridge, r.run.none).Summarize()
	t.Add("networking share (bridge − none, paired)", stats.Pair(share), stats.Pair(f),
		stats.X(stats.Ratio(share.Median, f.Median)), "",
		fmt.Sprintf("floor: an attach into a namespace made beforehand (each side's run makes one), on a bridge of %d ports as berth's", r.run.floorPorts))
	p := r.par
	t.Section(fmt.Sprintf("%d concurrent run -d on bridge", p.n))
	note := fmt.Sprintf("wall %.1f s", p.wall.Seconds())
	if p.firstErr != nil {
		note += "; first error: " + p.firstErr.Error()
	}
	t.Add("succeeded / distinct addresses", fmt.Sprintf("%d / %d of %d", p.ok, p.distinct, p.n), "", "", "all", note)
}

// restartTarget is the bound on a restart's time to serving that
// user-pain's goals set: re-applied in under a second with 500 containers.
const restartTarget = time.Second

func restartRows(t *stats.Table, r *results) {
	rs := r.restart
	if len(rs.serve) == 0 {
		return
	}
	t.Section(fmt.Sprintf("daemon restart (SIGTERM, start again) with %d containers running, ms median / max", rs.containers))
	t.Add("new daemon: exec → API answers", stats.MS(rs.serve.Median())+" / "+stats.MS(slices.Max(rs.serve)), "", "", "< "+stats.MS(restartTarget),
		fmt.Sprintf("%d restarts: re-adopts every container, checks its links, resolver and the table", len(rs.serve)))
	t.Add("old daemon: SIGTERM → exited", stats.MS(rs.stop.Median())+" / "+stats.MS(slices.Max(rs.stop)), "", "", "", "containers run on (live restore)")
	note := fmt.Sprintf("of %d new UDP flows container → outside, one after another across the restarts, each waiting up to %s for its echo", rs.flows, flowTimeout)
	if rs.flowErr != "" {
		note += "; " + rs.flowErr
	}
	t.Add("flows lost", failedOr(rs.flowErr != "" && rs.flows == 0, rs.lost), "", "", "0", note)
	note = fmt.Sprintf("of %d lookups from %d containers on the user network in turn, one after another, each waiting up to %s", rs.lookups, rs.lookupTargets, lookupTimeout)
	if rs.lookupErr != "" {
		note += "; first failure: " + rs.lookupErr
	}
	t.Add("DNS lookups failed", failedOr(rs.lookupErr != "" && rs.lookups == 0, rs.lookupsFailed), "", "", "0", note)
	t.Add("slowest DNS answer, ms", stats.MS(rs.slowestLookup), "", "", "", "a lookup sent while no daemon runs waits in the socket the reaper holds")
	px := rs.proxied
	note = fmt.Sprintf("[::1] → an IPv4-only container through the daemon's proxy: one connection open across the restarts, %d lines on it; slowest answer %s ms", px.lines, stats.MS(px.slowest))
	if px.err != "" {
		note += "; first failure: " + px.err
	}
	t.Add("proxied connection cut", failedOr(px.err != "" && px.conns == 0, px.cut), "", "", "0", note)
	t.Add("new proxied connections failed", fmt.Sprint(px.failed), "", "", "0", fmt.Sprintf("of %d: one every 10 lines, and the open one's again after a cut", px.conns))
}

func dataRows(t *stats.Table, r *results) {
	d := r.data
	t.Section(fmt.Sprintf("TCP throughput, iperf3 %s per side (berth, floor, floor, berth)", r.plan.iperf))
	t.Add("container → container", stats.Gbits(d.c2c), stats.Gbits(d.c2cFloor), stats.X(d.c2c/d.c2cFloor), "≥ 0.95×", "same bridge")
	t.Add("container → outside", stats.Gbits(d.c2o), stats.Gbits(d.c2oFloor), stats.X(d.c2o/d.c2oFloor), "≥ 0.95×", "routed, masquerade")
	t.Section(fmt.Sprintf("TCP exchanges, 64 bytes each way, %s per side in %d alternating blocks", r.plan.exchange, exchangeRounds))
	for _, row := range []struct {
		name, note string
		e          exchangeResult
	}{
		{"container → container, a new connection each", "dial, request, answer, the server's close; same bridge", d.conns},
		{"container → container, one connection", "request, answer", d.trips},
	} {
		b, f, x, lo, hi := row.e.summary()
		t.Add(row.name, stats.Rate(b), stats.Rate(f), stats.X(x), "≥ 0.95×", fmt.Sprintf("%s; blocks %.2f–%.2f×", row.note, lo, hi))
	}
}

func otherRows(t *stats.Table, r *results) {
	t.Section("daemon memory (RSS)")
	t.Add("idle", stats.Bytes(r.scale.rssIdle))
	t.Add(fmt.Sprintf("%d containers running", r.scale.loaded), stats.Bytes(r.scale.rssLoaded))
	t.Add("the reaper, at the same time", stats.Bytes(r.scale.reaperRSS), "", "", "",
		fmt.Sprintf("%s private, the rest the binary's pages the daemon maps too; parent of every container (Docker: a shim each)", stats.Bytes(r.scale.reaperPrivate)))
	t.Section("pure hot paths (testing.B, in-process)")
	t.Add("IPAM allocate + release, /16 half full", fmt.Sprintf("%d ns/op", r.goBench.ipam.Nanoseconds()), "", "", "", "internal/ipam")
	t.Add("ruleset build, 100 networks", stats.MS(r.goBench.rules)+" ms/op", "", "", "", "internal/firewall")
	t.Section("hygiene")
	if n := len(r.scale.tiers); n > 0 {
		top := r.scale.tiers[n-1].n
		t.Add(fmt.Sprintf("a container on the %d-port bridge reaches the outside", top),
			yesNo(r.scale.reachBerth), yesNo(r.scale.reachFloor), "", "yes", firstNonEmpty(r.scale.reachBerth, r.scale.reachFloor))
	}
	for _, tr := range r.scale.tiers {
		t.Add(fmt.Sprintf("berth veths left after the disconnect rounds, N=%d", tr.n), fmt.Sprint(tr.leftVeths), "", "", "0",
			"the containers still running: a pair a disconnect did not take away")
	}
	t.Add("berth veths left after rm -f of all", fmt.Sprint(r.leftVeths), "", "", "0")
}

// failedOr is n, or "failed" when the measure could not be taken at all
// (its note says why): a 0 there would read as a pass.
func failedOr(failed bool, n int) string {
	if failed {
		return "failed"
	}
	return fmt.Sprint(n)
}

// failures are the figures that are failures rather than measures: a
// leak, a container cut off, a concurrent run refused, a restart that
// lost a flow, a lookup or a proxied connection, a part that could not
// be measured. The bench fails with them, after printing its table.
func failures(r *results) []string {
	var out []string
	add := func(bad bool, what string, args ...any) {
		if bad {
			out = append(out, fmt.Sprintf(what, args...))
		}
	}
	for _, tr := range r.scale.tiers {
		add(tr.leftVeths > 0, "%d veths left after the disconnect rounds at N=%d", tr.leftVeths, tr.n)
	}
	add(r.leftVeths > 0, "%d veths left after rm -f of all", r.leftVeths)
	if len(r.scale.tiers) > 0 {
		add(r.scale.reachBerth != "", "a container on berth's bridge does not reach the outside: %s", r.scale.reachBerth)
	}
	p := r.par
	add(p.ok != p.n || p.distinct != p.n, "%d concurrent runs: %d succeeded, %d distinct addresses", p.n, p.ok, p.distinct)
	if rs := r.restart; len(rs.serve) > 0 {
		add(rs.lost > 0 || rs.flowErr != "" && rs.flows == 0, "restarts: %d flows lost %s", rs.lost, rs.flowErr)
		add(rs.lookupsFailed > 0, "restarts: %d DNS lookups failed %s", rs.lookupsFailed, rs.lookupErr)
		add(rs.proxied.cut > 0 || rs.proxied.failed > 0 || rs.proxied.err != "" && rs.proxied.conns == 0,
			"restarts: proxied connections cut %d, failed %d %s", rs.proxied.cut, rs.proxied.failed, rs.proxied.err)
	}
	return out
}

func yesNo(failure string) string {
	if failure == "" {
		return "yes"
	}
	return "no"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
