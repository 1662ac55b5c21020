package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runContract is what one run/create sent: the calls in order and the
// create body, as generic JSON.
type runContract struct {
	Calls []string       `json:"calls"`
	Body  map[string]any `json:"body"`
}

func recordRun(t *testing.T, d *runDaemon) runContract {
	t.Helper()
	b, err := json.Marshal(d.created)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return runContract{Calls: d.Calls(), Body: body}
}

// TestRunSendsWhatDockerSends compares, for the same command line, the
// calls and the create body berth sends with those docker 28 sent (written
// to testdata/run-*.json with -docker).
func TestRunSendsWhatDockerSends(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"detached-user-network", []string{"run", "-d", "--name", "web", "--network", "web", "--ip", "10.5.0.10", "--mac-address", "02:42:0a:05:00:0a", "--network-alias", "api", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-e", "A=1", "-w", "/srv", "-u", "nobody", "busybox", "sleep", "1000"}},
		{"foreground-rm-interactive", []string{"run", "--rm", "-i", "busybox"}},
		{"default-bridge-ip", []string{"run", "-d", "--ip", "172.17.0.9", "-h", "box", "--dns", "192.0.2.53", "--add-host", "db:10.0.0.5", "-P", "--expose", "9000-9001", "busybox", "sh", "-c", "exit 0"}},
		{"create", []string{"create", "--name", "c1", "--entrypoint", "/bin/sh", "-l", "tier=web", "busybox", "-c", "true"}},
		{"links-default-bridge", []string{"run", "-d", "--link", "db:database", "--link", "cache", "busybox", "true"}},
		{"log-opts", []string{"run", "-d", "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox", "true"}},
		{"links-user-network", []string{"run", "-d", "--network", "web", "--link", "db:database", "busybox", "true"}},
		{"limits", []string{"run", "-d", "-m", "64m", "--memory-swap", "128m", "--cpus", "1.5", "--pids-limit", "10", "busybox", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "run-"+tc.name+".json")
			if *dockerBin != "" {
				d := newRunDaemon(t, 0)
				if r := runDocker(t, d.Host, tc.args...); r.code != 0 {
					t.Fatalf("docker: %+v", r)
				}
				b, err := json.MarshalIndent(recordRun(t, d), "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				writeGolden(t, path, string(b)+"\n")
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden: %v", err)
			}
			var want runContract
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			d := newRunDaemon(t, 0)
			stdin := ""
			if strings.Contains(tc.name, "interactive") {
				stdin = "input\n"
			}
			if r := runBerth(t, d.Host, stdin, tc.args...); r.code != 0 {
				t.Fatalf("berth: %+v", r)
			}
			if diff := cmp.Diff(want, recordRun(t, d)); diff != "" {
				t.Errorf("berth %v differs from docker (-docker +berth):\n%s", tc.args, diff)
			}
		})
	}
}
