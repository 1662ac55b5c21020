package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestMetrics: dockerd's --metrics-addr, given in daemon.json as a Docker
// host has it, serves dockerd's engine_daemon_* metrics at /metrics: the
// network actions berth timed (a connect for each network a start joins
// and for a live connect, allocate for each start's networking, release
// when a container stops), the container actions (whose series exist from
// the start with one 0 each, as moby's), the containers' states, the
// engine's info with docker info's ID, and the events logged. An address
// in use stops the start in dockerd's words.
func TestMetrics(t *testing.T) {
	w := testworld.New(t)
	const addr = "127.0.0.1:9323"
	conf := writeDaemonJSON(t, w, "metrics.json", `{"metrics-addr": "`+addr+`"}`)
	d := w.Start(t, "--config-file", conf)
	img := w.Busybox(t)
	fresh := scrapeMetrics(t, w, addr)
	for _, a := range []string{"create", "start", "delete", "commit", "changes"} {
		if got := metricValue(t, fresh, `engine_daemon_container_actions_seconds_count{action="`+a+`"}`); got != 1 {
			t.Errorf("container action %q's count before any = %v, want 1 (moby's initial 0)", a, got)
		}
	}
	mustDocker(t, w, "network", "create", "mnet")
	mustDocker(t, w, "run", "-d", "--name", "m1", "--network", "mnet", img, "sleep", "300")
	mustDocker(t, w, "run", "-d", "--name", "m2", img, "sleep", "300")
	mustDocker(t, w, "network", "connect", "mnet", "m2")
	info := strings.Fields(mustDocker(t, w, "info", "--format", "{{.ID}} {{.Architecture}}"))
	if len(info) != 2 {
		t.Fatalf("docker info's ID and architecture: %q", info)
	}
	id, arch := info[0], info[1]
	mustDocker(t, w, "version")
	got := scrapeMetrics(t, w, addr)
	for series, want := range map[string]float64{
		`engine_daemon_network_actions_seconds_count{action="connect"}`:              3, // m1's start, m2's start, m2's live connect
		`engine_daemon_network_actions_seconds_count{action="allocate"}`:             2,
		`engine_daemon_container_actions_seconds_count{action="create"}`:             3,
		`engine_daemon_container_actions_seconds_count{action="start"}`:              3,
		`engine_daemon_container_states_containers{state="running"}`:                 2,
		`engine_daemon_container_states_containers{state="stopped"}`:                 0,
		`engine_daemon_host_info_functions_seconds_count{function="system_info"}`:    1,
		`engine_daemon_host_info_functions_seconds_count{function="system_version"}`: 1,
		`engine_daemon_health_check_start_duration_seconds_count`:                    0, // there before any check, as moby's
	} {
		if v := metricValue(t, got, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	if v := metricValue(t, got, "engine_daemon_events_total"); v < 4 {
		t.Errorf("engine_daemon_events_total = %v, want the events of two runs and a connect", v)
	}
	if !strings.Contains(got, "# TYPE engine_daemon_network_actions_seconds histogram\n") ||
		!strings.Contains(got, `engine_daemon_network_actions_seconds_bucket{action="connect",le="+Inf"} 3`+"\n") {
		t.Errorf("the network actions are not a histogram of 3 connects:\n%s", got)
	}
	if !regexp.MustCompile(`(?m)^engine_daemon_engine_info\{version="[^"]+",commit="[^"]*",architecture="` + regexp.QuoteMeta(arch) + `",graphdriver="overlayfs",kernel="[^"]+",os="[^"]*",os_type="linux",os_version="[^"]*",daemon_id="` + regexp.QuoteMeta(id) + `"\} 1$`).MatchString(got) {
		t.Errorf("no engine_daemon_engine_info with docker info's ID %q and architecture %q:\n%s", id, arch, got)
	}
	if arch == "amd64" || arch == "arm64" {
		t.Errorf("docker info's architecture %q is Go's name, not uname -m's, as dockerd gives it", arch)
	}

	// The metrics' port is the daemon's: a container cannot publish it
	// (dockerd reserves it in its port allocator; here the listening
	// socket holds it).
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "m3", "-p", "9323:80", img, "sleep", "300"); code == 0 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("docker run -p 9323:80 beside the metrics: exit %d, stderr %q; want it refused", code, errOut)
	}
	w.Docker(t, "rm", "-f", "m3")
	mustDocker(t, w, "stop", "-t", "0", "m1")
	mustDocker(t, w, "rm", "m1")
	got = scrapeMetrics(t, w, addr)
	for series, want := range map[string]float64{
		`engine_daemon_network_actions_seconds_count{action="release"}`:  2, // m3's failed start, m1's stop
		`engine_daemon_container_actions_seconds_count{action="delete"}`: 3, // moby's initial one, m3, m1
		`engine_daemon_container_states_containers{state="running"}`:     1,
	} {
		if v := metricValue(t, got, series); v != want {
			t.Errorf("after m1's stop and rm: %s = %v, want %v", series, v, want)
		}
	}

	// An address in use: the start stops before it touches anything.
	d.Stop()
	listenInHost(t, w, "127.0.0.1:9324")
	args := []string{testworld.Binary(t), "daemon", "--data-root", w.DataRoot, "--exec-root", w.ExecRoot,
		"--host", "unix://" + w.Socket, "--metrics-addr", "127.0.0.1:9324"}
	if _, errOut, code := w.InHost(t, args...); code == 0 || !strings.Contains(errOut, "failed to start metrics server") || !strings.Contains(errOut, "address already in use") {
		t.Errorf("a daemon on a metrics address in use: exit %d, %q; want it refused", code, errOut)
	}
}

// scrapeMetrics reads /metrics at addr from inside the world's host.
func scrapeMetrics(t *testing.T, w *testworld.World, addr string) string {
	t.Helper()
	return w.MustInHost(t, "timeout", "10", "busybox", "wget", "-q", "-O-", "http://"+addr+"/metrics")
}

// metricValue is the value of the sample named exactly series (name and
// labels as written), failing the test if it is missing.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Errorf("no sample %s in the metrics", series)
	return -1
}
