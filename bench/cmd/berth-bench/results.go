package main

import (
	"math"
	"slices"
	"time"

	"github.com/berth-net/berth/bench/internal/stats"
)

// results is everything one bench run measured.
type results struct {
	plan    plan
	elapsed time.Duration
	scale   scaleResult
	run     runResult
	par     parallelResult
	data    dataResult
	goBench goBenchResult
	commit  stats.Samples // one-record bbolt transactions on the data-root's filesystem
	restart restartResult
	// leftVeths is how many of berth's veths were still there once every
	// container was removed and the reaper had settled.
	leftVeths int
}

// tier holds the samples taken with n ports on each bridge.
type tier struct {
	n, real                  int // ports on the bridge; how many of berth's are containers
	connect, disconnect      stats.Samples
	floorAttach, floorDetach stats.Samples
	// floorElement is, for each floor attach, its last step: the one
	// nftables element the floor adds, which berth's connect
	// does not (its rules match the bridge by name).
	floorElement stats.Samples
	// daemonConnects and daemonConnectSeconds are what the daemon's own
	// metrics timed of the connects (engine_daemon_network_actions_seconds,
	// action connect): its part, without the API's way in and out. The
	// metrics give a count and a sum, so its figure is a mean.
	daemonConnects, daemonConnectSeconds float64
	// leftVeths is how many more of berth's veths there were, once the
	// reaper had settled, after the tier's disconnect rounds than
	// before its connects: a pair a disconnect left behind.
	leftVeths int
}

// scaleResult is the attach part of the table.
type scaleResult struct {
	tiers []tier
	// growBerth is each connect of a new running container while berth's
	// bridge grew from 0 to realPorts; growFloor the floor's attach into a
	// ready namespace while its bridge grew to the top tier (after berth's).
	growBerth, growFloor stats.Samples
	// growBare is each bare port (IPv6 off on both ends, as berth makes
	// its own) added to berth's bridge beyond realPorts: the kernel's own
	// growth for an attach made berth's way, with no daemon in it.
	growBare           stats.Samples
	rssIdle, rssLoaded int64
	reaperRSS          int64 // the reaper's, at rssLoaded
	reaperPrivate      int64 // its RssAnon: the rest is the binary's pages, shared with the daemon
	loaded             int   // running containers at rssLoaded
	// reachBerth and reachFloor say whether a probe on the largest bridge
	// reached the outside server over TCP: "" if it did, else the error.
	reachBerth, reachFloor string
}

// runResult is `run -d` on bridge against on none, with the floor's whole
// attach (new namespace and all) taken in between.
type runResult struct {
	bridge, none, floorFull stats.Samples
	// floorPorts is how many ports the floor's run bridge had: as many
	// as berth's default bridge had when the run rows began.
	floorPorts int
}

// parallelResult is the concurrency row.
type parallelResult struct {
	n, ok, distinct int
	wall            time.Duration
	firstErr        error
}

// dataResult holds bits per second of each path, and exchanges per second
// between two containers on new connections (conns) and on one (trips).
type dataResult struct {
	c2c, c2cFloor, c2o, c2oFloor float64
	conns, trips                 exchangeResult
}

// exchangeResult holds the exchanges per second of each round's block, a
// side.
type exchangeResult struct {
	berth, floor []float64
}

// summary is the median rate of each side and the median, least and
// greatest of the rounds' ratios.
func (e exchangeResult) summary() (berth, floor, ratio, lo, hi float64) {
	n := min(len(e.berth), len(e.floor))
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	ratios := make([]float64, n)
	for i := range n {
		ratios[i] = e.berth[i] / e.floor[i]
	}
	return median(e.berth), median(e.floor), median(ratios), slices.Min(ratios), slices.Max(ratios)
}

// median is the middle value of xs (the mean of the middle two for an
// even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// restartResult is the daemon restart rows.
type restartResult struct {
	containers int           // running through the restarts
	stop       stats.Samples // SIGTERM until the old daemon exited
	serve      stats.Samples // the new daemon's exec until its API answered
	// flows were opened from a container to the outside across the
	// restarts, one after the other; lost got no echo in flowTimeout.
	flows, lost int
	flowErr     string
	// lookups were sent from a container on the user network to its
	// resolver across the restarts, one after the other; failed got no
	// answer (refused, or none in lookupTimeout); slowest is the longest
	// an answered one waited.
	lookupTargets          int // containers the lookups came from, in turn
	lookups, lookupsFailed int
	slowestLookup          time.Duration
	lookupErr              string
	// proxied is what probeProxied saw through the IPv6 side of a
	// published port, which the daemon's proxy carries.
	proxied proxyCount
}
