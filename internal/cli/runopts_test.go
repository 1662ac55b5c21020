package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// parseRun parses run's flags and arguments into the create request.
func parseRun(t *testing.T, args ...string) (container.CreateRequest, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.Bool("help", false, "")
	fs.BoolP("detach", "d", false, "")
	o := addContainerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return container.CreateRequest{}, err
	}
	rest := fs.Args()
	return o.createRequest(fs, rest[0], cmdArgs(rest))
}

func TestRunFlagsToCreateRequest(t *testing.T) {
	t.Setenv("BERTH_TEST_FROM_ENV", "inherited")
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, r container.CreateRequest)
	}{
		{
			name: "defaults as docker sends them",
			args: []string{"busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				if r.Image != "busybox" || r.Cmd != nil {
					t.Errorf("image %q cmd %v", r.Image, r.Cmd)
				}
				if r.HostConfig.NetworkMode != "default" {
					t.Errorf("network mode %q", r.HostConfig.NetworkMode)
				}
				// Without --network docker sends an empty "default" endpoint.
				want := map[string]*network.EndpointSettings{"default": {}}
				if diff := cmp.Diff(want, r.NetworkingConfig.EndpointsConfig); diff != "" {
					t.Errorf("endpoints (-want +got):\n%s", diff)
				}
				if r.HostConfig.DNS == nil || r.HostConfig.DNSSearch == nil || r.HostConfig.DNSOptions == nil {
					t.Errorf("dns fields must be [] not null: %+v", r.HostConfig)
				}
				if !r.AttachStdout || !r.AttachStderr || r.AttachStdin {
					t.Errorf("attach flags %v %v %v", r.AttachStdin, r.AttachStdout, r.AttachStderr)
				}
				if r.HostConfig.Init != nil {
					t.Errorf("Init %v without --init: want null, the daemon's --init deciding", *r.HostConfig.Init)
				}
			},
		},
		{
			name: "--init and --init=false are sent, as docker sends them",
			args: []string{"--init", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				if r.HostConfig.Init == nil || !*r.HostConfig.Init {
					t.Errorf("Init %v, want true", r.HostConfig.Init)
				}
			},
		},
		{
			name: "--init=false",
			args: []string{"--init=false", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				if r.HostConfig.Init == nil || *r.HostConfig.Init {
					t.Errorf("Init %v, want false", r.HostConfig.Init)
				}
			},
		},
		{
			name: "command after the image, flags after it are the command's",
			args: []string{"--name", "x", "busybox", "sh", "-c", "echo -e hi"},
			check: func(t *testing.T, r container.CreateRequest) {
				if diff := cmp.Diff([]string{"sh", "-c", "echo -e hi"}, []string(r.Cmd)); diff != "" {
					t.Errorf("cmd (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "one user network without endpoint options is left out",
			args: []string{"--network", "web", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				if r.HostConfig.NetworkMode != "web" || len(r.NetworkingConfig.EndpointsConfig) != 0 {
					t.Errorf("mode %q endpoints %v", r.HostConfig.NetworkMode, r.NetworkingConfig.EndpointsConfig)
				}
			},
		},
		{
			name: "ip, mac and aliases go on the first network's endpoint",
			args: []string{"--network", "web", "--ip", "10.5.0.10", "--mac-address", "02:42:0a:05:00:0a", "--network-alias", "api", "--network-alias", "www", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				want := map[string]*network.EndpointSettings{"web": {
					IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.5.0.10"},
					Aliases:    []string{"api", "www"},
					MacAddress: "02:42:0a:05:00:0a",
				}}
				if diff := cmp.Diff(want, r.NetworkingConfig.EndpointsConfig); diff != "" {
					t.Errorf("endpoints (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "ip without network goes on the default endpoint",
			args: []string{"--ip", "172.17.0.9", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				ep := r.NetworkingConfig.EndpointsConfig["default"]
				if ep == nil || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != "172.17.0.9" {
					t.Errorf("default endpoint %+v", ep)
				}
			},
		},
		{
			name: "env: values, names from the CLI's environment, bare names",
			args: []string{"-e", "A=1", "--env", "B=", "-e", "BERTH_TEST_FROM_ENV", "-e", "BERTH_TEST_UNSET", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				want := []string{"A=1", "B=", "BERTH_TEST_FROM_ENV=inherited", "BERTH_TEST_UNSET"}
				if diff := cmp.Diff(want, r.Env); diff != "" {
					t.Errorf("env (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "publish: host port, host ip and udp, ephemeral, ranges, long form",
			args: []string{"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "9000", "-p", "7000-7001:70-71", "-p", "published=8443,target=443", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				want := nat.PortMap{
					"80/tcp":   {{HostPort: "8080"}},
					"53/udp":   {{HostIP: "127.0.0.1", HostPort: "5353"}},
					"9000/tcp": {{}},
					"70/tcp":   {{HostPort: "7000"}},
					"71/tcp":   {{HostPort: "7001"}},
					"443/tcp":  {{HostPort: "8443"}},
				}
				if diff := cmp.Diff(want, r.HostConfig.PortBindings); diff != "" {
					t.Errorf("bindings (-want +got):\n%s", diff)
				}
				for p := range want {
					if _, ok := r.ExposedPorts[p]; !ok {
						t.Errorf("%s not exposed", p)
					}
				}
			},
		},
		{
			name: "expose a range and publish all",
			args: []string{"--expose", "5000-5001/udp", "-P", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				want := nat.PortSet{"5000/udp": {}, "5001/udp": {}}
				if diff := cmp.Diff(want, r.ExposedPorts); diff != "" {
					t.Errorf("exposed (-want +got):\n%s", diff)
				}
				if !r.HostConfig.PublishAllPorts {
					t.Errorf("PublishAllPorts not set")
				}
			},
		},
		{
			name: "workdir, user, hostname, rm, dns, add-host, entrypoint, label",
			args: []string{"-w", "/srv", "-u", "1000:1000", "-h", "box", "--rm", "--dns", "192.0.2.53", "--add-host", "db:10.0.0.5", "--add-host", "gw=host-gateway", "--entrypoint", "/bin/sh", "-l", "tier=web", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				got := []any{r.WorkingDir, r.User, r.Hostname, r.HostConfig.AutoRemove, r.HostConfig.DNS, r.HostConfig.ExtraHosts, []string(r.Entrypoint), r.Labels}
				want := []any{"/srv", "1000:1000", "box", true, []string{"192.0.2.53"}, []string{"db:10.0.0.5", "gw:host-gateway"}, []string{"/bin/sh"}, map[string]string{"tier": "web"}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "interactive and tty",
			args: []string{"-i", "-t", "busybox"},
			check: func(t *testing.T, r container.CreateRequest) {
				if !r.Tty || !r.OpenStdin || !r.AttachStdin || !r.StdinOnce {
					t.Errorf("%+v", r.Config)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRun(t, tc.args...)
			if err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
			}
			tc.check(t, r)
		})
	}
}

// TestCreateRequestJSONKeys pins the wire shape the daemon decodes.
func TestCreateRequestJSONKeys(t *testing.T) {
	r, err := parseRun(t, "--name", "x", "--network", "web", "--ip", "10.5.0.10", "-p", "8080:80", "busybox", "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["Image"] != "busybox" {
		t.Errorf("Image = %v", m["Image"])
	}
	hc := m["HostConfig"].(map[string]any)
	if hc["NetworkMode"] != "web" {
		t.Errorf("NetworkMode = %v", hc["NetworkMode"])
	}
	eps := m["NetworkingConfig"].(map[string]any)["EndpointsConfig"].(map[string]any)
	ipam := eps["web"].(map[string]any)["IPAMConfig"].(map[string]any)
	if ipam["IPv4Address"] != "10.5.0.10" {
		t.Errorf("IPAMConfig = %v", ipam)
	}
	pb := hc["PortBindings"].(map[string]any)["80/tcp"].([]any)[0].(map[string]any)
	if pb["HostPort"] != "8080" {
		t.Errorf("PortBindings = %v", pb)
	}
}

func TestRunFlagsRejected(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ip", "10.0.0", "busybox"}, "invalid IPv4 address: 10.0.0"},
		{[]string{"--ip", "fd00::1", "busybox"}, "invalid IPv4 address: fd00::1"},
		{[]string{"--ip6", "10.0.0.1", "busybox"}, "invalid IPv6 address: 10.0.0.1"},
		{[]string{"--mac-address", "02:42:ac:11:00", "busybox"}, "02:42:ac:11:00 is not a valid mac address"},
		{[]string{"--mac-address", "not-a-mac", "busybox"}, "not-a-mac is not a valid mac address"},
		{[]string{"-p", "8080:80/sctpx", "busybox"}, "invalid proto: sctpx"},
		{[]string{"-p", "65536:80", "busybox"}, "invalid hostPort: 65536"},
		{[]string{"-p", "1.2.3:80:80", "busybox"}, "invalid IP address: 1.2.3"},
		{[]string{"-p", "target=", "busybox"}, "missing mandatory field 'target'"},
		{[]string{"--expose", "80:80", "busybox"}, "invalid port format for --expose: 80:80"},
		{[]string{"--network", "web", "--network", "web", "busybox"}, `network "web" is specified multiple times`},
		{[]string{"--network", "", "busybox"}, "no name set for network"},
		{[]string{"--network", "host", "--network-alias", "a", "busybox"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--env-file", "/nonexistent/berth.env", "busybox"}, "open /nonexistent/berth.env: no such file or directory"},
		// docker 28's long --network form, and its conflicts with the flags.
		{[]string{"--network", "name=web,ip=10.5.0.9", "--ip", "10.5.0.8", "busybox"}, "conflicting options: cannot specify both --ip and per-network IPv4 address"},
		{[]string{"--network", "name=web,alias=a", "--network-alias", "b", "busybox"}, "conflicting options: cannot specify both --network-alias and per-network alias"},
		{[]string{"--network", "name=web,bogus=1", "busybox"}, "invalid field key bogus"},
		{[]string{"--network", "alias=a,ip=10.0.0.1", "busybox"}, "network name not specified"},
		{[]string{"--network", "name=web,ip=10.0.0", "busybox"}, "invalid IPv4address: 10.0.0"},
		{[]string{"--network", "name=bridge,alias=a", "busybox"}, "network-scoped aliases are only supported for user-defined networks"},
	} {
		_, err := parseRun(t, tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestRunFlagValuesRejectedWhileParsing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dns", "8.8.8", "busybox"}, `invalid argument "8.8.8" for "--dns" flag: IP address is not correctly formatted: 8.8.8`},
		{[]string{"--add-host", "h:not-an-ip", "busybox"}, `invalid argument "h:not-an-ip" for "--add-host" flag: invalid IP address in add-host: "not-an-ip"`},
		{[]string{"--add-host", ":1.2.3.4", "busybox"}, `invalid argument ":1.2.3.4" for "--add-host" flag: bad format for add-host: ":1.2.3.4"`},
		{[]string{"-e", "=v", "busybox"}, `invalid argument "=v" for "-e, --env" flag: invalid environment variable: =v`},
		{[]string{"--nope", "busybox"}, "unknown flag: --nope"},
		{[]string{"-Z", "busybox"}, "unknown shorthand flag: 'Z' in -Z"},
		// docker's ValidateLabel; any label went through.
		{[]string{"-l", "", "busybox"}, `invalid argument "" for "-l, --label" flag: invalid label '': empty name`},
		{[]string{"-l", "=1", "busybox"}, `invalid argument "=1" for "-l, --label" flag: invalid label '=1': empty name`},
		{[]string{"-l", "a b=1", "busybox"}, `invalid argument "a b=1" for "-l, --label" flag: label 'a b' contains whitespaces`},
	} {
		_, err := parseRun(t, tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestEnvFileAsDocker: an --env-file is read as docker's kvfile: the
// byte-order mark goes, a key without a value takes the CLI's
// environment's or is left out, a key with whitespace and invalid UTF-8
// are refused, in docker's words.
func TestEnvFileAsDocker(t *testing.T) {
	t.Setenv("BERTH_TEST_SET", "from env")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.env", "\xef\xbb\xbfA=1\n  # note\n\n  B= two \nBERTH_TEST_SET\nBERTH_TEST_UNSET\n")
	got, err := readEnvFile(good)
	if want := []string{"A=1", "B= two ", "BERTH_TEST_SET=from env"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("readEnvFile = %q, %v; want %q", got, err, want)
	}
	for body, want := range map[string]string{
		"A B=1\n":      "variable 'A B' contains whitespaces",
		"=1\n":         "no variable name on line '=1'",
		"A=\xff\xfe\n": "invalid utf8 bytes at line 1",
	} {
		p := write("bad.env", body)
		if _, err := readEnvFile(p); err == nil || !strings.Contains(err.Error(), "invalid env file ("+p+"): "+want) {
			t.Errorf("env file %q: %v, want %q", body, err, want)
		}
	}
}
