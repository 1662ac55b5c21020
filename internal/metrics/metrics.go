// Package metrics holds the daemon's Prometheus metrics and writes them in
// Prometheus' text format (version 0.0.4), as dockerd serves them on its
// --metrics-addr: the same names (engine_daemon_...), labels and bucket
// bounds as moby's internal/metrics, made with docker/go-metrics on the
// Prometheus client. It owns no listener and touches no kernel state: the
// daemon serves Write, and its code observes.
package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuckets are the Prometheus client's default histogram bounds,
// in seconds, which go-metrics' timers use.
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry is an ordered set of metric families, written in the order
// they were added.
type Registry struct {
	mu       sync.Mutex
	families []family
}

// family is one metric family: its header and how to write its samples.
type family interface {
	name() string
	help() string
	kind() string
	samples(w *bufio.Writer)
}

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.families, func(o family) bool { return o.name() == f.name() }) {
		panic("metrics: family " + f.name() + " added twice")
	}
	r.families = append(r.families, f)
}

// Write writes every family in the text format, by name; a family with
// no samples yet (a labelled timer nothing was timed under) is left out,
// as the Prometheus client leaves it. The text is made whole before it is
// written, so that a slow reader holds no metric's lock.
func (r *Registry) Write(w io.Writer) error {
	r.mu.Lock()
	fams := slices.Clone(r.families)
	r.mu.Unlock()
	// By name, as the Prometheus client gathers them.
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name(), b.name()) })
	var out, samples bytes.Buffer
	bw := bufio.NewWriter(&samples)
	for _, f := range fams {
		samples.Reset()
		f.samples(bw)
		bw.Flush()
		if samples.Len() == 0 {
			continue
		}
		fmt.Fprintf(&out, "# HELP %s %s\n# TYPE %s %s\n", f.name(), escapeHelp(f.help()), f.name(), f.kind())
		out.Write(samples.Bytes())
	}
	_, err := w.Write(out.Bytes())
	return err
}

// ContentType is the text format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// meta is the header every family shares.
type meta struct{ n, h string }

func (m meta) name() string { return m.n }
func (m meta) help() string { return m.h }

// Timer is a histogram of durations in seconds under one label, as
// go-metrics' LabeledTimer (name suffixed _seconds).
type Timer struct {
	meta
	label   string
	buckets []float64
	mu      sync.Mutex
	series  map[string]*histogram
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

// NewTimer adds a timer called name+"_seconds", its series told apart by
// label (none if label is "": then observe under "").
func (r *Registry) NewTimer(name, help, label string) *Timer {
	t := &Timer{meta: meta{name + "_seconds", help}, label: label, buckets: DefaultBuckets, series: map[string]*histogram{}}
	if label == "" {
		// An unlabelled timer is there from the start, at zero, as the
		// Prometheus client's plain histogram.
		t.series[""] = &histogram{counts: make([]uint64, len(t.buckets))}
	}
	r.add(t)
	return t
}

func (t *Timer) kind() string { return "histogram" }

// Observe records d under the label value v.
func (t *Timer) Observe(v string, d time.Duration) {
	s := d.Seconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.series[v]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(t.buckets))}
		t.series[v] = h
	}
	if i, _ := slices.BinarySearch(t.buckets, s); i < len(t.buckets) {
		h.counts[i]++
	}
	h.count++
	h.sum += s
}

// Since records the time since start under v.
func (t *Timer) Since(v string, start time.Time) { t.Observe(v, time.Since(start)) }

// Stats returns the count and sum (seconds) observed under v.
func (t *Timer) Stats(v string) (count uint64, sum float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.series[v]; h != nil {
		return h.count, h.sum
	}
	return 0, 0
}

func (t *Timer) samples(w *bufio.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	values := make([]string, 0, len(t.series))
	for v := range t.series {
		values = append(values, v)
	}
	slices.Sort(values)
	for _, v := range values {
		h := t.series[v]
		var own [][2]string
		if t.label != "" {
			own = [][2]string{{t.label, v}}
		}
		le := func(bound string) [][2]string { return append(slices.Clip(own), [2]string{"le", bound}) }
		var cum uint64
		for i, b := range t.buckets {
			cum += h.counts[i]
			writeSample(w, t.n+"_bucket", le(formatFloat(b)), float64(cum))
		}
		writeSample(w, t.n+"_bucket", le("+Inf"), float64(h.count))
		writeSample(w, t.n+"_sum", own, h.sum)
		writeSample(w, t.n+"_count", own, float64(h.count))
	}
}

// Counter is a count that only goes up (name suffixed _total).
type Counter struct {
	meta
	v atomic.Uint64
}

// NewCounter adds a counter called name+"_total".
func (r *Registry) NewCounter(name, help string) *Counter {
	c := &Counter{meta: meta{name + "_total", help}}
	r.add(c)
	return c
}

func (c *Counter) kind() string { return "counter" }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Value is the count so far.
func (c *Counter) Value() uint64 { return c.v.Load() }

func (c *Counter) samples(w *bufio.Writer) { writeSample(w, c.n, nil, float64(c.v.Load())) }

// Sample is one labelled value of a gauge read when the metrics are
// written.
type Sample struct {
	Labels [][2]string
	Value  float64
}

// GaugeFunc is a gauge whose samples are read at each Write.
type GaugeFunc struct {
	meta
	read func() []Sample
}

// NewGaugeFunc adds a gauge called name (with its unit already in it)
// whose samples read returns at each Write.
func (r *Registry) NewGaugeFunc(name, help string, read func() []Sample) *GaugeFunc {
	g := &GaugeFunc{meta: meta{name, help}, read: read}
	r.add(g)
	return g
}

func (g *GaugeFunc) kind() string { return "gauge" }

func (g *GaugeFunc) samples(w *bufio.Writer) {
	for _, s := range g.read() {
		writeSample(w, g.n, s.Labels, s.Value)
	}
}

// CounterFunc is a counter whose value is read at each Write (a process's
// CPU seconds).
type CounterFunc struct{ GaugeFunc }

// NewCounterFunc adds a counter called name whose samples read returns.
func (r *Registry) NewCounterFunc(name, help string, read func() []Sample) *CounterFunc {
	c := &CounterFunc{GaugeFunc{meta: meta{name, help}, read: read}}
	r.add(c)
	return c
}

func (c *CounterFunc) kind() string { return "counter" }

// One is a single unlabelled sample.
func One(v float64) []Sample { return []Sample{{Value: v}} }

func writeSample(w *bufio.Writer, name string, labels [][2]string, v float64) {
	w.WriteString(name)
	if len(labels) > 0 {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l[0])
			w.WriteString(`="`)
			w.WriteString(escapeLabel(l[1]))
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

// formatFloat writes v as the Prometheus client does.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
