package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWrite: the text format as the Prometheus client writes it —
// families by name, each with HELP and TYPE; a histogram's cumulative
// buckets, +Inf, sum and count per label value, in order of the values;
// a value on a bound counted in that bound's bucket; a timer without a
// label, there at zero before anything is timed; a family with no samples
// left out; counters with _total; label values and help escaped.
func TestWrite(t *testing.T) {
	var r Registry
	net := r.NewTimer("engine_daemon_network_actions", "The number of seconds it takes to process each network action", "action")
	net.Observe("connect", 4*time.Millisecond)
	net.Observe("connect", 10*time.Millisecond) // on the 0.01 bound
	net.Observe("allocate", 20*time.Second)     // past every bound
	start := r.NewTimer("start_duration", "unlabelled", "")
	start.Observe("", 0)
	c := r.NewCounter("events", "The number of events logged")
	c.Inc()
	c.Inc()
	r.NewGaugeFunc("info", "a \\ help\nwith a newline", func() []Sample {
		return []Sample{{Labels: [][2]string{{"os", `Debian "12"` + "\n"}, {"kernel", `a\b`}}, Value: 1}}
	})
	r.NewCounterFunc("cpu_seconds_total", "CPU", func() []Sample { return One(1.5) })
	r.NewTimer("never_timed", "a labelled timer nothing was timed under: left out", "action")
	r.NewTimer("idle", "an unlabelled timer: there at zero", "")
	r.NewGaugeFunc("empty", "a gauge with no samples: left out", func() []Sample { return nil })
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP cpu_seconds_total CPU
# TYPE cpu_seconds_total counter
cpu_seconds_total 1.5
# HELP engine_daemon_network_actions_seconds The number of seconds it takes to process each network action
# TYPE engine_daemon_network_actions_seconds histogram
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.005"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.01"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.025"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.05"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.1"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.25"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="0.5"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="1"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="2.5"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="5"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="10"} 0
engine_daemon_network_actions_seconds_bucket{action="allocate",le="+Inf"} 1
engine_daemon_network_actions_seconds_sum{action="allocate"} 20
engine_daemon_network_actions_seconds_count{action="allocate"} 1
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.005"} 1
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.01"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.025"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.05"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.1"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.25"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="0.5"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="1"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="2.5"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="5"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="10"} 2
engine_daemon_network_actions_seconds_bucket{action="connect",le="+Inf"} 2
engine_daemon_network_actions_seconds_sum{action="connect"} 0.014
engine_daemon_network_actions_seconds_count{action="connect"} 2
# HELP events_total The number of events logged
# TYPE events_total counter
events_total 2
# HELP idle_seconds an unlabelled timer: there at zero
# TYPE idle_seconds histogram
idle_seconds_bucket{le="0.005"} 0
idle_seconds_bucket{le="0.01"} 0
idle_seconds_bucket{le="0.025"} 0
idle_seconds_bucket{le="0.05"} 0
idle_seconds_bucket{le="0.1"} 0
idle_seconds_bucket{le="0.25"} 0
idle_seconds_bucket{le="0.5"} 0
idle_seconds_bucket{le="1"} 0
idle_seconds_bucket{le="2.5"} 0
idle_seconds_bucket{le="5"} 0
idle_seconds_bucket{le="10"} 0
idle_seconds_bucket{le="+Inf"} 0
idle_seconds_sum 0
idle_seconds_count 0
# HELP info a \\ help\nwith a newline
# TYPE info gauge
info{os="Debian \"12\"\n",kernel="a\\b"} 1
# HELP start_duration_seconds unlabelled
# TYPE start_duration_seconds histogram
start_duration_seconds_bucket{le="0.005"} 1
start_duration_seconds_bucket{le="0.01"} 1
start_duration_seconds_bucket{le="0.025"} 1
start_duration_seconds_bucket{le="0.05"} 1
start_duration_seconds_bucket{le="0.1"} 1
start_duration_seconds_bucket{le="0.25"} 1
start_duration_seconds_bucket{le="0.5"} 1
start_duration_seconds_bucket{le="1"} 1
start_duration_seconds_bucket{le="2.5"} 1
start_duration_seconds_bucket{le="5"} 1
start_duration_seconds_bucket{le="10"} 1
start_duration_seconds_bucket{le="+Inf"} 1
start_duration_seconds_sum 0
start_duration_seconds_count 1
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Write (-want +got):\n%s", diff)
	}
	if n, sum := net.Stats("connect"); n != 2 || sum != 0.014 {
		t.Errorf("Stats(connect) = %d, %v; want 2, 0.014", n, sum)
	}
	if n, _ := net.Stats("none"); n != 0 {
		t.Errorf("Stats of a value never observed = %d", n)
	}
}

// TestAddTwice: two families of one name would make a scrape that
// Prometheus refuses whole; the second is a programming error.
func TestAddTwice(t *testing.T) {
	var r Registry
	r.NewCounter("x", "")
	defer func() {
		if recover() == nil {
			t.Error("a second family x was added")
		}
	}()
	r.NewGaugeFunc("x_total", "", func() []Sample { return nil })
}

// TestConcurrentObserve: timers and counters are safe to use while they
// are written (run with -race).
func TestConcurrentObserve(t *testing.T) {
	var r Registry
	tm := r.NewTimer("t", "", "a")
	c := r.NewCounter("c", "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			tm.Observe("x", time.Millisecond)
			c.Inc()
		}
	}()
	for range 50 {
		var b strings.Builder
		if err := r.Write(&b); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if n, _ := tm.Stats("x"); n != 1000 || c.Value() != 1000 {
		t.Errorf("after 1000 observations: timer %d, counter %d", n, c.Value())
	}
}
