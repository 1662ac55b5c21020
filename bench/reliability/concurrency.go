package reliability

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// ConcurrencyConfig sets the size of a concurrency storm.
type ConcurrencyConfig struct {
	Containers int    // how many runs (then removals) go at once
	Network    string // the network every container joins
	Image      string
}

// ConcurrencyReport is what a concurrency storm measured.
type ConcurrencyReport struct {
	RunErrors, RemoveErrors []string
	Addresses               []netip.Addr // one per successful run
	Duplicates              []string     // addresses handed out twice
	RunWall, RemoveWall     time.Duration
	// ListLatency are the answer times of GET /networks asked in a loop
	// while the runs and removals were going on.
	ListLatency []time.Duration
	ListErrors  int
}

// Percentile returns the p-th percentile (0-100) of ds by nearest rank.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Concurrency runs cfg.Containers containers at once through the API,
// then removes them all at once, while a prober lists networks.
func Concurrency(t testing.TB, c *Client, cfg ConcurrencyConfig) ConcurrencyReport {
	t.Helper()
	var rep ConcurrencyReport
	stop := make(chan struct{})
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		rep.ListLatency, rep.ListErrors = probeList(c, stop)
	}()
	ids := make([]string, cfg.Containers)
	errs := make([]error, cfg.Containers)
	start := time.Now()
	parallel(cfg.Containers, func(i int) {
		ids[i], errs[i] = c.Run(fmt.Sprintf("conc%d", i), cfg.Image, cfg.Network)
	})
	rep.RunWall = time.Since(start)
	for i, err := range errs {
		if err != nil {
			rep.RunErrors = append(rep.RunErrors, fmt.Sprintf("run conc%d: %v", i, err))
		}
	}
	rep.Addresses, rep.Duplicates = addresses(t, c, cfg.Network)
	start = time.Now()
	parallel(cfg.Containers, func(i int) {
		if ids[i] != "" {
			errs[i] = c.Remove(ids[i])
		}
	})
	rep.RemoveWall = time.Since(start)
	close(stop)
	<-probed
	for i, err := range errs {
		if err != nil && ids[i] != "" {
			rep.RemoveErrors = append(rep.RemoveErrors, fmt.Sprintf("rm conc%d: %v", i, err))
		}
	}
	return rep
}

func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// probeList asks GET /networks one request after the other until stop.
func probeList(c *Client, stop <-chan struct{}) ([]time.Duration, int) {
	var lat []time.Duration
	fails := 0
	for {
		select {
		case <-stop:
			return lat, fails
		default:
		}
		start := time.Now()
		code, _, err := c.Do(http.MethodGet, "/networks", nil)
		if err != nil || code != http.StatusOK {
			fails++
			continue
		}
		lat = append(lat, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
}

// addresses are the network's endpoint addresses, as its inspect shows them.
func addresses(t testing.TB, c *Client, network string) ([]netip.Addr, []string) {
	t.Helper()
	var n netInfo
	if err := c.Get("/networks/"+network, &n); err != nil {
		t.Fatalf("inspect network %s: %v", network, err)
	}
	var out []netip.Addr
	var dups []string
	seen := map[netip.Addr]bool{}
	for _, ep := range n.Containers {
		p, err := netip.ParsePrefix(ep.IPv4Address)
		if err != nil {
			dups = append(dups, fmt.Sprintf("endpoint of %s has address %q", ep.Name, ep.IPv4Address))
			continue
		}
		if seen[p.Addr()] {
			dups = append(dups, p.Addr().String())
		}
		seen[p.Addr()] = true
		out = append(out, p.Addr())
	}
	return out, dups
}
