package reliability

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Print writes the storm's figures.
func (r StormReport) Print(w io.Writer) {
	fmt.Fprintf(w, "crash storm: %d SIGKILLs, %d API operations completed\n", r.Kills, r.Ops)
	kinds := make([]string, 0, len(r.Interrupted))
	for k := range r.Interrupted {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Interrupted[k]))
	}
	fmt.Fprintf(w, "  killed during: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "  restart to /_ping: p50 %v, p90 %v, max %v\n", round(Percentile(r.Restarts, 50)),
		round(Percentile(r.Restarts, 90)), round(Percentile(r.Restarts, 100)))
	fmt.Fprintf(w, "  at the end: %d containers (%d running), %d bridge networks, %d endpoints, %d veths, %d sandboxes\n",
		r.Final.Containers, r.Final.Running, r.Final.Networks, r.Final.Endpoints, r.Final.Veths, r.Final.Sandboxes)
	fmt.Fprintf(w, "  disagreements between store and kernel after restarts: %d\n", len(r.Leaks))
	for _, l := range r.Leaks {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

// Print writes the concurrency storm's figures.
func (r ConcurrencyReport) Print(w io.Writer, n int) {
	fmt.Fprintf(w, "concurrency: %d runs at once in %v (%d failed), %d removals at once in %v (%d failed)\n",
		n, round(r.RunWall), len(r.RunErrors), n, round(r.RemoveWall), len(r.RemoveErrors))
	fmt.Fprintf(w, "  addresses: %d, handed out twice: %d\n", len(r.Addresses), len(r.Duplicates))
	l := r.ListLatency
	fmt.Fprintf(w, "  GET /networks during the storm: %d answers, %d failures, p50 %v, p90 %v, p99 %v, max %v\n",
		len(l), r.ListErrors, round(Percentile(l, 50)), round(Percentile(l, 90)), round(Percentile(l, 99)), round(Percentile(l, 100)))
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
