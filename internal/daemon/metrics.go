package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/metrics"
	berthruntime "github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/version"
)

// engineMetrics are dockerd's engine_daemon_* metrics (moby's
// internal/metrics), with what berth does in place of what dockerd does:
// the same names, labels and histogram bounds, so that a Prometheus job
// and the dashboards written for dockerd's --metrics-addr read berth's.
// Which actions are timed, and when, follows moby: a connect is each
// network a start joins and each live `network connect` (successful ones
// only), allocate a start's whole networking, release its teardown when
// the container stops; moby times no disconnect.
type engineMetrics struct {
	reg                *metrics.Registry
	containerActions   *metrics.Timer
	networkActions     *metrics.Timer
	imageActions       *metrics.Timer
	hostInfo           *metrics.Timer
	healthCheckStart   *metrics.Timer
	healthChecks       *metrics.Counter
	healthChecksFailed *metrics.Counter
}

// timeNetwork, timeContainer, timeImage and timeHostInfo record an
// action's time since start; a daemon made without metrics (unit tests)
// records nothing.
func (m *engineMetrics) timeNetwork(action string, start time.Time) {
	if m != nil {
		m.networkActions.Since(action, start)
	}
}

func (m *engineMetrics) timeContainer(action string, start time.Time) {
	if m != nil {
		m.containerActions.Since(action, start)
	}
}

func (m *engineMetrics) timeImage(action string, start time.Time) {
	if m != nil {
		m.imageActions.Since(action, start)
	}
}

func (m *engineMetrics) timeHostInfo(function string, start time.Time) {
	if m != nil {
		m.hostInfo.Since(function, start)
	}
}

// healthCheck counts a probe, and whether it failed to run; prepared is
// how long its process took to start (moby's health check start
// duration), or negative if it never started.
func (m *engineMetrics) healthCheck(prepared time.Duration, failed bool) {
	if m == nil {
		return
	}
	if prepared >= 0 {
		m.healthCheckStart.Observe("", prepared)
	}
	m.healthChecks.Inc()
	if failed {
		m.healthChecksFailed.Inc()
	}
}

// newEngineMetrics makes d's metrics; the gauges read d when written.
func newEngineMetrics(d *Daemon) *engineMetrics {
	reg := &metrics.Registry{}
	m := &engineMetrics{
		reg:                reg,
		containerActions:   reg.NewTimer("engine_daemon_container_actions", "The number of seconds it takes to process each container action", "action"),
		networkActions:     reg.NewTimer("engine_daemon_network_actions", "The number of seconds it takes to process each network action", "action"),
		imageActions:       reg.NewTimer("engine_daemon_image_actions", "The number of seconds it takes to process each image action", "action"),
		hostInfo:           reg.NewTimer("engine_daemon_host_info_functions", "The number of seconds it takes to call functions gathering info about the host", "function"),
		healthCheckStart:   reg.NewTimer("engine_daemon_health_check_start_duration", "The number of seconds it takes to prepare to run health checks", ""),
		healthChecks:       reg.NewCounter("engine_daemon_health_checks", "The total number of health checks"),
		healthChecksFailed: reg.NewCounter("engine_daemon_health_checks_failed", "The total number of failed health checks"),
	}
	// As moby's init: these series exist from the start, each with one
	// observation of 0.
	for _, a := range []string{"start", "changes", "commit", "create", "delete"} {
		m.containerActions.Observe(a, 0)
	}
	reg.NewGaugeFunc("engine_daemon_container_states_containers", "The count of containers in various states", d.containerStates)
	engine := engineInfo(d)
	reg.NewGaugeFunc("engine_daemon_engine_info", "The information related to the engine and the OS it is running on", func() []metrics.Sample {
		return []metrics.Sample{{Labels: engine, Value: 1}}
	})
	reg.NewGaugeFunc("engine_daemon_engine_cpus_cpus", "The number of cpus that the host system of the engine has", func() []metrics.Sample {
		return metrics.One(float64(runtime.NumCPU()))
	})
	memory := float64(berthruntime.HostMemory())
	reg.NewGaugeFunc("engine_daemon_engine_memory_bytes", "The number of bytes of memory that the host system of the engine has", func() []metrics.Sample {
		return metrics.One(memory)
	})
	reg.NewCounterFunc("engine_daemon_events_total", "The number of events logged", func() []metrics.Sample {
		published, _ := d.events.Counts()
		return metrics.One(float64(published))
	})
	reg.NewGaugeFunc("engine_daemon_events_subscribers_total", "The number of current subscribers to events", func() []metrics.Sample {
		_, subscribers := d.events.Counts()
		return metrics.One(float64(subscribers))
	})
	addProcessMetrics(reg)
	return m
}

// containerStates counts the containers running, paused and stopped, as
// docker info does (moby's StateCounter: created and restarting count as
// stopped).
func (d *Daemon) containerStates() []metrics.Sample {
	var running, paused, stopped float64
	cs, _ := d.Containers(context.Background())
	for _, c := range cs {
		switch c.Status() {
		case container.StatusRunning:
			running++
		case container.StatusPaused:
			paused++
		default:
			stopped++
		}
	}
	return []metrics.Sample{
		{Labels: [][2]string{{"state", "paused"}}, Value: paused},
		{Labels: [][2]string{{"state", "running"}}, Value: running},
		{Labels: [][2]string{{"state", "stopped"}}, Value: stopped},
	}
}

// engineInfo is engine_daemon_engine_info's labels, in moby's order.
func engineInfo(d *Daemon) [][2]string {
	var uts unix.Utsname
	kernel := ""
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Release[:])
	}
	return [][2]string{
		{"version", version.Version}, {"commit", version.Commit()}, {"architecture", machine()},
		{"graphdriver", "overlayfs"}, {"kernel", kernel}, {"os", osName()}, {"os_type", "linux"},
		{"os_version", osRelease("VERSION_ID", "")}, {"daemon_id", d.engineID},
	}
}

// addProcessMetrics adds the Go and process gauges a Prometheus client's
// default registry serves beside dockerd's own (a subset: the ones
// dashboards for dockerd use).
func addProcessMetrics(reg *metrics.Registry) {
	started := float64(time.Now().Unix())
	reg.NewGaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() []metrics.Sample {
		return metrics.One(float64(runtime.NumGoroutine()))
	})
	reg.NewGaugeFunc("go_info", "Information about the Go environment.", func() []metrics.Sample {
		return []metrics.Sample{{Labels: [][2]string{{"version", runtime.Version()}}, Value: 1}}
	})
	reg.NewGaugeFunc("go_threads", "Number of OS threads created.", func() []metrics.Sample {
		n, _ := runtime.ThreadCreateProfile(nil)
		return metrics.One(float64(n))
	})
	reg.NewCounterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", func() []metrics.Sample {
		var ru unix.Rusage
		if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
			return nil
		}
		return metrics.One(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds())
	})
	reg.NewGaugeFunc("process_open_fds", "Number of open file descriptors.", func() []metrics.Sample {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return nil
		}
		return metrics.One(float64(len(ents)))
	})
	reg.NewGaugeFunc("process_max_fds", "Maximum number of open file descriptors.", func() []metrics.Sample {
		var rl unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
			return nil
		}
		return metrics.One(float64(rl.Cur))
	})
	reg.NewGaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() []metrics.Sample {
		return processMemory(1)
	})
	reg.NewGaugeFunc("process_virtual_memory_bytes", "Virtual memory size in bytes.", func() []metrics.Sample {
		return processMemory(0)
	})
	reg.NewGaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func() []metrics.Sample {
		return metrics.One(started)
	})
}

// processMemory reads field (0 size, 1 resident) of /proc/self/statm, in
// bytes.
func processMemory(field int) []metrics.Sample {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) <= field {
		return nil
	}
	pages, err := strconv.ParseUint(f[field], 10, 64)
	if err != nil {
		return nil
	}
	return metrics.One(float64(pages) * float64(os.Getpagesize()))
}

// listenMetrics opens dockerd's --metrics-addr (a TCP host:port) before
// anything else is done, as dockerd does, so that an address in use
// stops the start in its words.
func listenMetrics(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to start metrics server: %w", err)
	}
	return l, nil
}

// serveMetrics serves the metrics at /metrics on l until stop is called.
func (d *Daemon) serveMetrics(l net.Listener) (stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metrics.ContentType)
		if err := d.metrics.reg.Write(w); err != nil {
			d.log.Debug("write metrics", "err", err)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, WriteTimeout: time.Minute}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics API", "err", err)
		}
	}()
	d.log.Info("metrics API listening", "address", l.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}
