package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrors checks what a failure prints and the exit code. With -docker,
// it also checks that docker 28 prints the same (with "docker" for
// "berth") against the same daemon.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		stdout     string
		stderr     string
		code       int
		dockerSkip bool // berth's wording differs on purpose
	}{
		{
			name:   "network rm of an unknown network",
			args:   []string{"network", "rm", "nope"},
			stderr: "Error response from daemon: network nope not found\nexit status 1\n",
			code:   1,
		},
		{
			name:   "network rm goes on past failures",
			args:   []string{"network", "rm", "web", "bridge", "nope", "net2"},
			stdout: "web\nnet2\n",
			stderr: "Error response from daemon: bridge is a pre-defined network and cannot be removed\nError response from daemon: network nope not found\nexit status 1\n",
			code:   1,
		},
		{
			name: "network rm -f ignores not found",
			args: []string{"network", "rm", "-f", "nope"},
		},
		{
			name:   "network inspect of an unknown network",
			args:   []string{"network", "inspect", "bridge", "nope"},
			stdout: "", // checked by prefix below
			stderr: "Error response from daemon: network nope not found\n",
			code:   1,
		},
		{
			name:   "inspect finds nothing",
			args:   []string{"inspect", "ghost"},
			stdout: "[]\n",
			stderr: "Error: No such object: ghost\n",
			code:   1,
		},
		{
			name:   "inspect --type container",
			args:   []string{"inspect", "--type", "container", "ghost"},
			stdout: "[]\n",
			stderr: "Error response from daemon: No such container: ghost\n",
			code:   1,
		},
		{
			name:   "inspect with a template that does not parse",
			args:   []string{"inspect", "-f", "{{.State.Pid", "web1"},
			stderr: "template parsing error: template: :1: unclosed action\n",
			code:   64,
		},
		{
			name:   "unknown flag",
			args:   []string{"network", "ls", "--foo"},
			stderr: "unknown flag: --foo\n\nUsage:  berth network ls [OPTIONS]\n\nRun 'berth network ls --help' for more information\n",
			code:   125,
		},
		{
			// Global options go before the command, as docker's; after
			// it -H was taken as another daemon.
			name:   "a global option after the command",
			args:   []string{"ps", "-H", "unix:///elsewhere"},
			stderr: "unknown shorthand flag: 'H' in -H\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information\n",
			code:   125,
		},
		{
			name:   "run with an unknown flag",
			args:   []string{"run", "--foo", "busybox"},
			stderr: "unknown flag: --foo\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "flag without its argument",
			args:   []string{"run", "-e"},
			stderr: "flag needs an argument: 'e' in -e\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "run -h is the hostname, not help",
			args:   []string{"run", "-h"},
			stderr: "flag needs an argument: 'h' in -h\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "run without an image",
			args:   []string{"run"},
			stderr: "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information\n",
			code:   1,
		},
		{
			name:   "exec without a command",
			args:   []string{"exec", "web1"},
			stderr: "berth: 'berth exec' requires at least 2 arguments\n\nUsage:  berth exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\nSee 'berth exec --help' for more information\n",
			code:   1,
		},
		{
			name:   "network create takes one name",
			args:   []string{"network", "create", "a", "b"},
			stderr: "berth: 'berth network create' requires 1 argument\n\nUsage:  berth network create [OPTIONS] NETWORK\n\nRun 'berth network create --help' for more information\n",
			code:   1,
		},
		{
			name:   "unknown command",
			args:   []string{"frobnicate"},
			stderr: "berth: unknown command: berth frobnicate\n\nRun 'berth --help' for more information\n",
			code:   1,
		},
		{
			name:   "unknown network subcommand",
			args:   []string{"network", "frob"},
			stderr: "berth: unknown command: berth network frob\n\nUsage:  berth network\n\nRun 'berth network --help' for more information\n",
			code:   1,
		},
		{
			name:   "gateway without subnet",
			args:   []string{"network", "create", "--gateway", "10.0.0.1", "x"},
			stderr: "every ip-range or gateway must have a corresponding subnet\n",
			code:   1,
		},
		{
			name:   "overlapping subnets",
			args:   []string{"network", "create", "--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24", "x"},
			stderr: "multiple overlapping subnet configuration is not supported\n",
			code:   1,
		},
		{
			name:   "gateway outside the subnet",
			args:   []string{"network", "create", "--subnet", "10.0.0.0/24", "--gateway", "10.9.0.1", "x"},
			stderr: "no matching subnet for gateway 10.9.0.1\n",
			code:   1,
		},
		{
			name:   "bad mac",
			args:   []string{"run", "--mac-address", "zz", "busybox"},
			stderr: "berth: zz is not a valid mac address\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "bad host port",
			args:   []string{"run", "-p", "99999:80", "busybox"},
			stderr: "berth: invalid hostPort: 99999\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "bad container port",
			args:   []string{"run", "-p", "80:http", "busybox"},
			stderr: "berth: invalid containerPort: http\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:       "bad ip",
			args:       []string{"run", "--ip", "300.1.1.1", "busybox"},
			stderr:     "berth: invalid IPv4 address: 300.1.1.1\n\nRun 'berth run --help' for more information\n",
			code:       125,
			dockerSkip: true, // docker leaves --ip to the daemon
		},
		{
			name:       "ipv6 given to --ip",
			args:       []string{"run", "--network", "web", "--ip", "fd00::5", "busybox"},
			stderr:     "berth: invalid IPv4 address: fd00::5\n\nRun 'berth run --help' for more information\n",
			code:       125,
			dockerSkip: true,
		},
		{
			name:   "bad dns",
			args:   []string{"run", "--dns", "nameserver", "busybox"},
			stderr: "invalid argument \"nameserver\" for \"--dns\" flag: IP address is not correctly formatted: nameserver\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "bad add-host",
			args:   []string{"run", "--add-host", "nohost", "busybox"},
			stderr: "invalid argument \"nohost\" for \"--add-host\" flag: bad format for add-host: \"nohost\"\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "empty env name",
			args:   []string{"run", "-e", "=x", "busybox"},
			stderr: "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "alias on the default bridge",
			args:   []string{"run", "--network-alias", "x", "busybox"},
			stderr: "berth: network-scoped aliases are only supported for user-defined networks\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "user network mixed with host",
			args:   []string{"run", "--network", "web", "--network", "host", "busybox"},
			stderr: "berth: conflicting options: cannot attach both user-defined and non-user-defined network-modes\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "restart with rm",
			args:   []string{"run", "--rm", "--restart", "always", "busybox"},
			stderr: "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth run --help' for more information\n",
			code:   125,
		},
		{
			name:   "port of an unpublished port",
			args:   []string{"port", "web1", "443"},
			stderr: "Error: No public port '443' published for web1\n",
			code:   1,
		},
		{
			name:   "version template error",
			args:   []string{"version", "--format", "{{.Nope"},
			stderr: "template parsing error: template: version:1: unclosed action\n",
			code:   64,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := cannedDaemon(t)
			got := runBerth(t, srv.Host, "", tc.args...)
			want := result{stdout: tc.stdout, stderr: tc.stderr, code: tc.code}
			if tc.name == "network inspect of an unknown network" {
				// The bridge found before the failure is still printed.
				if !strings.HasPrefix(got.stdout, "[\n    {\n        \"Name\": \"bridge\"") {
					t.Errorf("stdout %q, want the bridge's JSON", got.stdout)
				}
				got.stdout = ""
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("berth %v (-want +got):\n%s", tc.args, diff)
			}
			if *dockerBin == "" || tc.dockerSkip {
				return
			}
			d := runDocker(t, srv.Host, tc.args...)
			d.stderr = strings.ReplaceAll(d.stderr, "docker", "berth")
			if tc.name == "network inspect of an unknown network" {
				d.stdout = ""
			}
			if diff := cmp.Diff(want, d, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("docker %v differs from what berth expects (-want +docker):\n%s", tc.args, diff)
			}
		})
	}
}

func TestCannotConnect(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	got := runBerth(t, host, "", "network", "ls")
	want := result{stderr: "Cannot connect to the berth daemon at " + host + ". Is the berth daemon running?\n", code: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
