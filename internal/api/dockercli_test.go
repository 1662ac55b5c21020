package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
)

const dockerCLI = "/usr/local/bin/docker"

// dockerRunner runs the real docker CLI against a server on a unix socket.
type dockerRunner struct {
	t      *testing.T
	sock   string
	config string
}

func newDockerRunner(t *testing.T, f *fakeBackend) *dockerRunner {
	t.Helper()
	if _, err := os.Stat(dockerCLI); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the docker CLI is required in CI: %v", err)
		}
		t.Skipf("no docker CLI at %s", dockerCLI)
	}
	return &dockerRunner{t: t, sock: serveUnix(t, newServer(f)), config: t.TempDir()}
}

// run returns stdout, stderr and the exit code of docker args.
func (d *dockerRunner) run(stdin string, args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(dockerCLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+d.config, "DOCKER_CLI_HINTS=false")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return stdout.String(), stderr.String(), exitErr.ExitCode()
	case err != nil:
		d.t.Fatalf("docker %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), 0
}

// ok runs docker args and wants exit 0 and exactly want on stdout.
func (d *dockerRunner) ok(want string, args ...string) {
	d.t.Helper()
	out, errOut, code := d.run("", args...)
	if code != 0 {
		d.t.Errorf("docker %v: exit %d, stderr %q", args, code, errOut)
		return
	}
	if diff := cmp.Diff(want, out); diff != "" {
		d.t.Errorf("docker %v (-want +got):\n%s", args, diff)
	}
}

// fails runs docker args and wants the exit code and stderr containing msg.
func (d *dockerRunner) fails(code int, msg string, args ...string) {
	d.t.Helper()
	_, errOut, got := d.run("", args...)
	if got != code || !strings.Contains(errOut, msg) {
		d.t.Errorf("docker %v: exit %d, stderr %q; want exit %d and %q", args, got, errOut, code, msg)
	}
}

func TestDockerCLIReadOnly(t *testing.T) {
	d := newDockerRunner(t, newFakeBackend())
	d.ok("0.1.0-dev 1.51 linux\n", "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}")
	d.ok("inactive testhost 2\n", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Name}} {{.ContainersRunning}}")
	d.ok(`NETWORK ID     NAME      DRIVER    SCOPE
32b93b141bae   bridge    bridge    local
c363d9a92877   host      host      local
88077db743a8   none      null      local
aa11aa11aa11   web       bridge    local
`, "network", "ls")
	d.ok("web\n", "network", "ls", "--filter", "name=web", "--format", "{{.Name}}")
	d.ok("3090\n", "inspect", "--format", "{{.State.Pid}}", "test1")
	d.ok("172.17.0.2\n", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", "test1")
	d.ok("\n", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", "test2") // user network: legacy field empty
	d.ok("/run/berth/netns/572d8e7abcb2\n", "inspect", "--format", "{{.NetworkSettings.SandboxKey}}", "test1")
	d.ok(`{"web":{"IPAMConfig":{"IPv4Address":"10.5.0.10"},"Links":null,"Aliases":["db"],"MacAddress":"02:42:0a:05:00:0a","DriverOpts":null,"GwPriority":0,"NetworkID":"`+hexID("aa11")+`","EndpointID":"`+hexID("e2")+`","Gateway":"10.5.0.1","IPAddress":"10.5.0.10","IPPrefixLen":24,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":["test2","db","8975cb01d142"]}}`+"\n",
		"inspect", "--format", "{{json .NetworkSettings.Networks}}", "test2")
	d.ok("test2 Up 59 minutes \ntest1 Up 59 minutes 80/tcp\n", "ps", "--format", "{{.Names}} {{.Status}} {{.Ports}}")
	d.ok("8975cb01d142\n4fea95f2e979\n", "ps", "-q")
	d.ok(`REPOSITORY   TAG       IMAGE ID       SIZE
busybox      latest    b0b0b0b0b0b0   2.1MB
`, "images", "--filter", "reference=busybox", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}")
	if out, errOut, code := d.run("", "logs", "test1"); out != "out\n" || errOut != "err\n" || code != 0 {
		t.Errorf("logs: stdout %q, stderr %q, exit %d", out, errOut, code)
	}
	d.fails(1, "Error: No such object: nothing", "inspect", "nothing")
	d.fails(1, "Error response from daemon: No such container: nope", "rm", "nope")
	d.fails(1, "Error response from daemon: network nope not found", "network", "inspect", "nope")
}

// TestDockerCLINetworkInspectGolden pins docker network inspect bridge, as
// the CLI prints it, in the seed's shape.
func TestDockerCLINetworkInspectGolden(t *testing.T) {
	f := newFakeBackend()
	f.endpoints = map[string][]*network.Endpoint{}
	d := newDockerRunner(t, f)
	out, errOut, code := d.run("", "network", "inspect", "32b93b141bae")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "docker-network-inspect-bridge.txt", []byte(out))
}

func TestDockerCLIChanges(t *testing.T) {
	f := newFakeBackend()
	d := newDockerRunner(t, f)
	d.ok(hexID("5e")+"\n", "network", "create", "--subnet", "10.9.0.0/16", "--gateway", "10.9.0.1", "--label", "a=b", "-o", "com.docker.network.bridge.name=br-app", "app")
	d.ok(hexID("5e")+"\n", "network", "create", "vpn") // CLI 28 does not print the Warning
	d.fails(1, "invalid subnet 10.9.0.5/16: it should be 10.9.0.0/16", "network", "create", "--subnet", "10.9.0.5/16", "bad")
	d.fails(1, "Error response from daemon: bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")
	d.ok("web\n", "network", "rm", "web")
	d.ok("", "network", "connect", "--ip", "10.5.0.20", "--alias", "api", "web", "test1")
	d.ok("", "network", "disconnect", "web", "test1")
	d.ok("Deleted Networks:\nweb\n\n", "network", "prune", "-f")
	d.ok("test1\n", "stop", "-t", "1", "test1")
	d.ok("test1\n", "kill", "test1")
	d.ok("test1\n", "rm", "-f", "test1")
	d.ok(hexID("c0ffee")+"\n", "run", "-d", "--name", "new1", "--network", "web", "--ip", "10.5.0.30", "--mac-address", "02:00:00:00:00:30", "busybox", "sleep", "9")
	if got := f.recorded().ContainerCreate.Networks["web"]; got.IPv4Address.String() != "10.5.0.30" || got.MacAddress != "02:00:00:00:00:30" {
		t.Errorf("run --ip --mac-address reached the backend as %+v", got)
	}
	d.fails(1, `Conflict. The container name "/test2" is already in use by container`, "create", "--name", "test2", "busybox")
	d.fails(125, "pull is not supported by berth: import a root filesystem with `docker import`", "run", "--rm", "ghost")
	d.ok(hexID("c0ffee")+"\n", "run", "-d", "--name", "pub", "-p", "127.0.0.1:8000-8001:80-81/udp", "-p", "9090:90", "busybox")
	wantPorts := map[string][]container.PortBinding{
		"80/udp": {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8000"}},
		"81/udp": {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8001"}},
		"90/tcp": {{HostPort: "9090"}},
	}
	if diff := cmp.Diff(wantPorts, f.recorded().ContainerCreate.PortBindings, cmpAddr); diff != "" {
		t.Errorf("run -p reached the backend as (-want +got):\n%s", diff)
	}

	want := []string{
		"CreateNetwork app", "CreateNetwork vpn", "RemoveNetwork web", "ConnectNetwork web test1", "DisconnectNetwork web test1 false",
		"PruneNetworks []", "StopContainer test1", "KillContainer test1 ", "RemoveContainer test1 true",
		"CreateContainer new1", "StartContainer " + hexID("c0ffee"), "CreateContainer pub", "StartContainer " + hexID("c0ffee"),
	}
	if diff := cmp.Diff(want, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
}

func TestDockerCLIImages(t *testing.T) {
	f := newFakeBackend()
	d := newDockerRunner(t, f)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(tarball, []byte("not really a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.ok("sha256:"+hexID("1d")+"\n", "import", tarball, "mybox:1")
	if string(f.recorded().ImportedBody) != "not really a tar" {
		t.Errorf("imported body = %q", f.recorded().ImportedBody)
	}
	d.ok("Untagged: busybox:latest\nDeleted: sha256:"+hexID("b0")+"\n", "rmi", "busybox")
	d.fails(1, "No such image: nope", "rmi", "nope")
}

// TestDockerCLIStreams drives exec and attached run through the hijack.
func TestDockerCLIStreams(t *testing.T) {
	f := newFakeBackend()
	f.startExec = func(_ context.Context, id string, detach bool, s Streams) error {
		if detach {
			return nil
		}
		var in []byte
		if s.Stdin != nil {
			in, _ = io.ReadAll(s.Stdin)
		}
		fmt.Fprintf(s.Stdout, "stdin=%q\n", in)
		if s.Stderr != nil {
			fmt.Fprint(s.Stderr, "to stderr\n")
		}
		f.setExitCode(id, 3)
		return nil
	}
	f.attach = func(_ context.Context, _ string, s Streams) error {
		if s.Stdin != nil {
			in, _ := io.ReadAll(s.Stdin)
			_, err := fmt.Fprintf(s.Stdout, "run stdin=%q\n", in)
			return err
		}
		_, err := io.WriteString(s.Stdout, "hello from run\n")
		return err
	}
	d := newDockerRunner(t, f)

	out, errOut, code := d.run("abc", "exec", "-i", "test1", "cat")
	if out != "stdin=\"abc\"\n" || errOut != "to stderr\n" || code != 3 {
		t.Errorf("exec -i: stdout %q, stderr %q, exit %d", out, errOut, code)
	}
	out, _, code = d.run("", "exec", "test1", "true")
	if out != "stdin=\"\"\n" || code != 3 {
		t.Errorf("exec: stdout %q, exit %d", out, code)
	}
	d.ok("", "exec", "-d", "test1", "sleep", "1")

	out, errOut, code = d.run("", "run", "--name", "fg", "busybox", "echo", "hello")
	if out != "hello from run\n" || code != 0 {
		t.Errorf("run attached: stdout %q, stderr %q, exit %d", out, errOut, code)
	}
	out, errOut, code = d.run("xyz", "run", "-i", "--rm", "--name", "fgi", "busybox", "cat")
	if out != "run stdin=\"xyz\"\n" || code != 0 {
		t.Errorf("run -i: stdout %q, stderr %q, exit %d", out, errOut, code)
	}
}

// TestDockerCLIRunExitCode: docker run in the foreground exits with the
// container's code, which it reads from the wait it sent before start.
func TestDockerCLIRunExitCode(t *testing.T) {
	f := newFakeBackend()
	f.wait = exitsWith(7)
	f.attach = func(_ context.Context, _ string, s Streams) error {
		_, err := io.WriteString(s.Stderr, "failing\n")
		return err
	}
	d := newDockerRunner(t, f)
	out, errOut, code := d.run("", "run", "--name", "fails", "busybox", "false")
	if out != "" || errOut != "failing\n" || code != 7 {
		t.Errorf("stdout %q, stderr %q, exit %d; want stderr \"failing\\n\" and exit 7", out, errOut, code)
	}
}
