package e2e

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// dockerPeer starts, with the docker CLI, a detached busybox container
// that serves tcp:80 with the peer program; opts go before the image.
func (w *portWorld) dockerPeer(t *testing.T, name string, opts ...string) {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, opts...)
	args = append(args, testworld.BusyboxImage, "sleep", "3600")
	if _, errOut, code := w.Docker(t, args...); code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), errOut)
	}
	w.copyPeer(t, name)
	if _, errOut, code := w.Docker(t, "exec", "-d", name, "/peer", "-listen", "tcp:80"); code != 0 {
		t.Fatalf("docker exec -d %s: %s", name, errOut)
	}
	if !retried(func() bool {
		_, ok := w.askFrom(t, "container:"+name, "tcp", "127.0.0.1:80")
		return ok
	}) {
		t.Fatalf("container %s never answered on tcp:80", name)
	}
}

// dockerPort is `docker port NAME`, trimmed.
func (w *portWorld) dockerPort(t *testing.T, name string) string {
	t.Helper()
	out, errOut, code := w.Docker(t, "port", name)
	if code != 0 {
		t.Fatalf("docker port %s: %s", name, errOut)
	}
	return strings.TrimSpace(out)
}

// TestQA5PortsInternalNetwork: Docker publishes nothing for a container
// on an internal network alone (libnetwork's sbJoin programs external
// connectivity only for a network that is not internal): docker port
// prints nothing, Ports shows the port unpublished, the host port stays
// free and has no DNAT, so the host cannot reach the container through it.
func TestQA5PortsInternalNetwork(t *testing.T) {
	w := startPortWorld(t)
	if _, errOut, code := w.Docker(t, "network", "create", "--internal", "intnet"); code != 0 {
		t.Fatalf("docker network create --internal: %s", errOut)
	}
	w.dockerPeer(t, "i1", "--network", "intnet", "-p", "8200:80")
	if got := w.dockerPort(t, "i1"); got != "" {
		t.Errorf("docker port i1 = %q, want nothing", got)
	}
	out, _, _ := w.Docker(t, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "i1")
	if got := strings.TrimSpace(out); got != `{"80/tcp":null}` {
		t.Errorf("NetworkSettings.Ports = %s, want {\"80/tcp\":null}", got)
	}
	rules, errOut, code := w.InHost(t, "nft", "list", "table", "inet", "berth")
	if code != 0 {
		t.Fatalf("nft list table inet berth: %s", errOut)
	}
	if strings.Contains(rules, "8200") {
		t.Errorf("the ruleset publishes 8200:\n%s", rules)
	}
	w.unreachable(t, "host", "tcp", "127.0.0.1:8200")
	// The host port was never held: another container publishes it.
	w.dockerPeer(t, "b1", "-p", "8200:80")
	if got := w.dockerPort(t, "b1"); got != "80/tcp -> 0.0.0.0:8200\n80/tcp -> [::]:8200" {
		t.Errorf("docker port b1 = %q", got)
	}
	w.reach(t, "outside", "tcp", hostPort(8200), outsideAddr)
}

// TestQA5PortsGatewayNetwork: a container on an internal network and on a
// normal one publishes its ports on the normal one, its gateway, whether
// both are given to docker run (the internal one first) or the normal one
// is connected later; traffic from outside then reaches it.
func TestQA5PortsGatewayNetwork(t *testing.T) {
	w := startPortWorld(t)
	for _, args := range [][]string{{"--internal", "intnet"}, {"web"}} {
		if _, errOut, code := w.Docker(t, append([]string{"network", "create"}, args...)...); code != 0 {
			t.Fatalf("docker network create %v: %s", args, errOut)
		}
	}
	w.dockerPeer(t, "m1", "--network", "intnet", "--network", "web", "-p", "8201:80")
	if got := w.dockerPort(t, "m1"); got != "80/tcp -> 0.0.0.0:8201\n80/tcp -> [::]:8201" {
		t.Errorf("docker port m1 = %q, want 80/tcp -> 0.0.0.0:8201 and [::]:8201", got)
	}
	w.reach(t, "outside", "tcp", hostPort(8201), outsideAddr)

	w.dockerPeer(t, "c1", "--network", "intnet", "-p", "8202:80")
	if got := w.dockerPort(t, "c1"); got != "" {
		t.Errorf("docker port c1 on intnet alone = %q, want nothing", got)
	}
	if _, errOut, code := w.Docker(t, "network", "connect", "web", "c1"); code != 0 {
		t.Fatalf("docker network connect web c1: %s", errOut)
	}
	if got := w.dockerPort(t, "c1"); got != "80/tcp -> 0.0.0.0:8202\n80/tcp -> [::]:8202" {
		t.Errorf("docker port c1 after connect = %q, want 80/tcp -> 0.0.0.0:8202 and [::]:8202", got)
	}
	w.reach(t, "outside", "tcp", hostPort(8202), outsideAddr)
	if _, errOut, code := w.Docker(t, "network", "disconnect", "web", "c1"); code != 0 {
		t.Fatalf("docker network disconnect web c1: %s", errOut)
	}
	if got := w.dockerPort(t, "c1"); got != "" {
		t.Errorf("docker port c1 after disconnect = %q, want nothing", got)
	}
	w.unreachable(t, "outside", "tcp", hostPort(8202))
}

// TestQA5PortErrorWords: docker run of a port that cannot be published
// fails with Docker 28's words: moby's daemon prefix, libnetwork's
// endpoint, then the allocator's or the bridge driver's message.
func TestQA5PortErrorWords(t *testing.T) {
	w := startPortWorld(t)
	for _, c := range []struct{ name, port string }{{"a1", "8080:80"}, {"d1", "8000:80"}, {"d2", "8001:80"}} {
		if _, errOut, code := w.Docker(t, "run", "-d", "--name", c.name, "-p", c.port, testworld.BusyboxImage, "sleep", "3600"); code != 0 {
			t.Fatalf("docker run %s: %s", c.name, errOut)
		}
	}
	w.hostListener(t, 8095)
	const prefix = `docker: Error response from daemon: failed to set up container networking: driver failed programming external connectivity on endpoint `
	ctr := `172\.17\.0\.\d+`
	for _, tc := range []struct{ name, port, want string }{
		{"a2", "8080:80", `Bind for 0\.0\.0\.0:8080 failed: port is already allocated`},
		{"b2", "8095:80", `failed to bind host port for 0\.0\.0\.0:8095:` + ctr + `:80/tcp: address already in use`},
		{"c2", "10.9.9.9:8096:80", `failed to bind host port for 10\.9\.9\.9:8096:` + ctr + `:80/tcp: cannot assign requested address`},
		{"d3", "8000-8001:80", `all ports are allocated`},
	} {
		_, errOut, code := w.Docker(t, "run", "-d", "--name", tc.name, "-p", tc.port, testworld.BusyboxImage, "sleep", "3600")
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + tc.name + ` \([0-9a-f]{64}\): ` + tc.want + `$`)
		if code == 0 || !re.MatchString(errOut) {
			t.Errorf("docker run -p %s: exit %d, stderr %q; want a line matching %s", tc.port, code, errOut, re)
		}
	}
}

// hostListener runs the peer as a host process listening on tcp port in
// the world's host namespace (entered through the holder, as in
// TestPublishedPortConflicts) until the test ends.
func (w *portWorld) hostListener(t *testing.T, port int) {
	t.Helper()
	p := strconv.Itoa(port)
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(w.HolderPID()), "-n", "--", w.peer, "-listen", "tcp:"+p)
	var procErr strings.Builder
	cmd.Stderr = &procErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, ok := w.askFrom(t, "host", "tcp", "127.0.0.1:"+p); ok {
			return
		}
		select {
		case <-exited:
			t.Fatalf("the host listener on %s exited: %s", p, procErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host listener on %s never answered", p)
		}
	}
}

// TestQA5IPAMOptions: Docker keeps a network's IPAM options — its default
// driver ignores them but accepts any — and inspect shows them: {} for
// one the CLI made without --ipam-opt, null for the predefined bridge;
// they survive a daemon restart.
func TestQA5IPAMOptions(t *testing.T) {
	w, d := startWorld(t)
	for _, args := range [][]string{{"--ipam-opt", "foo=bar", "ipo"}, {"plain"}} {
		if _, errOut, code := w.Docker(t, append([]string{"network", "create"}, args...)...); code != 0 {
			t.Fatalf("docker network create %v: %s", args, errOut)
		}
	}
	want := map[string]string{
		"ipo":    `{"foo":"bar"}`,
		"plain":  `{}`,
		"bridge": `null`,
	}
	check := func(when string) {
		t.Helper()
		for name, opts := range want {
			out, errOut, code := w.Docker(t, "network", "inspect", "-f", "{{json .IPAM.Options}}", name)
			if code != 0 {
				t.Fatalf("docker network inspect %s: %s", name, errOut)
			}
			if got := strings.TrimSpace(out); got != opts {
				t.Errorf("%s: IPAM.Options of %s = %s, want %s", when, name, got, opts)
			}
		}
	}
	check("after create")
	d.Stop()
	w.Start(t)
	check("after a restart")
}
