package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// Published ports are probed with testdata/peer: a static program copied
// into busybox containers (whose nc has no UDP mode) that answers each TCP
// connection or UDP datagram with the address it came from, and that the
// tests also run as the client in the outside world and the host.

var outsideAddr = testworld.GatewayAddr.String() // the outside world's end of the host's eth0

// buildPeer compiles testdata/peer statically into a directory of the test.
func buildPeer(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "peer")
	cmd := exec.Command(goBinary(), "build", "-o", out, "./testdata/peer")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/peer: %v\n%s", err, b)
	}
	return out
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// portWorld is a world with a daemon, busybox and the peer program.
type portWorld struct {
	*testworld.World
	d    *testworld.Daemon
	peer string // on the machine's filesystem, visible in the host and outside
	bin  string // its content, for copying into containers
}

func startPortWorld(t *testing.T) *portWorld {
	t.Helper()
	w, d := startWorld(t)
	peer := buildPeer(t)
	b, err := os.ReadFile(peer)
	if err != nil {
		t.Fatal(err)
	}
	return &portWorld{World: w, d: d, peer: peer, bin: string(b)}
}

// runPeer starts a detached container that serves listen ("tcp:80,udp:53")
// with peer, and returns once it answers on the first of them inside.
func (w *portWorld) runPeer(t *testing.T, name, listen string, opts ...string) {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, opts...)
	args = append(args, testworld.BusyboxImage, "sh", "-c",
		"while [ ! -x /peer ]; do sleep 0.1; done; exec /peer -listen "+listen)
	w.MustBerth(t, args...)
	w.copyPeer(t, name)
	first := strings.Split(listen, ",")[0]
	proto, port, _ := strings.Cut(first, ":")
	if !retried(func() bool {
		_, ok := w.askFrom(t, "container:"+name, proto, "127.0.0.1:"+port)
		return ok
	}) {
		t.Fatalf("container %s never answered on %s", name, first)
	}
}

// copyPeer puts the peer program at /peer in a running container.
func (w *portWorld) copyPeer(t *testing.T, name string) {
	t.Helper()
	_, errOut, code := w.BerthIn(t, w.bin, "exec", "-i", name, "sh", "-c", "cat > /peer.new && chmod +x /peer.new && mv /peer.new /peer")
	if code != 0 {
		t.Fatalf("copy peer into %s: exit %d: %s", name, code, errOut)
	}
}

// askFrom asks proto addr from where ("outside", "host" or
// "container:NAME") and returns the answer (the source address the server
// saw) and whether there was one. One try, of one connection or datagram.
// A probe that could not ask at all (no such container, no peer in it, a
// malformed address) fails the test: it is not "no answer", which only
// the peer's own exit code 3 says.
func (w *portWorld) askFrom(t *testing.T, where, proto, addr string) (string, bool) {
	t.Helper()
	dial := []string{"-dial", proto + ":" + addr, "-timeout", "2s"}
	var out, errOut string
	var code int
	switch {
	case where == "outside":
		out, errOut, code = w.InOutside(t, append([]string{w.peer}, dial...)...)
	case where == "host":
		out, errOut, code = w.InHost(t, append([]string{w.peer}, dial...)...)
	default:
		name := strings.TrimPrefix(where, "container:")
		out, errOut, code = w.Berth(t, append([]string{"exec", name, "/peer"}, dial...)...)
	}
	if code != 0 && code != peerNoAnswer {
		t.Errorf("asking %s %s from %s: the probe failed (exit %d): %s", proto, addr, where, code, errOut)
	}
	return strings.TrimSpace(out), code == 0
}

// peerNoAnswer is the peer's exit code when nothing answered
// (testdata/peer's noAnswer).
const peerNoAnswer = 3

// reach requires an answer from where and, when wantSource is set, that
// the server saw that source address. A miss is asked again (retried): one
// datagram or connection may go unanswered within its two seconds on a
// loaded machine, or reach a listener the peer has not opened yet.
func (w *portWorld) reach(t *testing.T, where, proto, addr, wantSource string) {
	t.Helper()
	var got string
	ok := retried(func() bool {
		var ok bool
		got, ok = w.askFrom(t, where, proto, addr)
		return ok
	})
	if !ok {
		t.Errorf("%s cannot reach %s %s", where, proto, addr)
		return
	}
	if wantSource != "" && got != wantSource {
		t.Errorf("%s → %s %s: the container saw source %q, want %q", where, proto, addr, got, wantSource)
	}
}

// unreachable requires that nothing answers from where (one try: load
// cannot make an answer appear).
func (w *portWorld) unreachable(t *testing.T, where, proto, addr string) {
	t.Helper()
	if got, ok := w.askFrom(t, where, proto, addr); ok {
		t.Errorf("%s reached %s %s (answer %q), want no answer", where, proto, addr, got)
	}
}

func networkField(t *testing.T, w *portWorld, format, name string) string {
	t.Helper()
	return strings.TrimSpace(w.MustBerth(t, "network", "inspect", "--format", format, name))
}

func hostPort(port int) string { return testworld.HostAddr.String() + ":" + strconv.Itoa(port) }

// TestPublishedPortsReachability: a published port answers from the
// outside world with the client's own source address (TCP and UDP), from
// the host on 127.0.0.1 and its own address, from a neighbour through the
// host address (hairpin), and from a container on another network, also
// through any network's gateway address; a port
// bound to 127.0.0.1 answers only on the host; unpublished ports and
// direct access to container addresses stay closed even to a client that
// routes the container subnet through the host.
func TestPublishedPortsReachability(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "web", "tcp:80,tcp:81,udp:53",
		"-p", "8080:80", "-p", "127.0.0.1:8081:81", "-p", "5353:53/udp")
	w.reach(t, "outside", "tcp", hostPort(8080), outsideAddr)
	w.reach(t, "outside", "udp", hostPort(5353), outsideAddr)
	w.reach(t, "host", "tcp", "127.0.0.1:8080", bridgeGateway.String())
	w.reach(t, "host", "udp", "127.0.0.1:5353", bridgeGateway.String())
	w.reach(t, "host", "tcp", hostPort(8080), testworld.HostAddr.String())
	w.reach(t, "host", "tcp", "127.0.0.1:8081", "")
	w.unreachable(t, "outside", "tcp", hostPort(8081))
	w.unreachable(t, "host", "tcp", hostPort(8081))

	w.runPeer(t, "neighbour", "tcp:80")
	w.reach(t, "container:neighbour", "tcp", hostPort(8080), bridgeGateway.String())
	w.reach(t, "container:neighbour", "udp", hostPort(5353), bridgeGateway.String())
	// A container reaching its own published port through a host address:
	// the packet is bridged back out of the port it came from (hairpin mode)
	// and masqueraded to the gateway so the reply comes back the same way.
	w.reach(t, "container:web", "tcp", hostPort(8080), bridgeGateway.String())
	w.MustBerth(t, "network", "create", "other")
	w.runPeer(t, "elsewhere", "tcp:80", "--network", "other")
	w.reach(t, "container:elsewhere", "tcp", hostPort(8080), "")
	// Every gateway is a host address: a published port answers on each,
	// from the host and from containers of either network.
	otherGW := networkField(t, w, "{{(index .IPAM.Config 0).Gateway}}", "other")
	w.reach(t, "container:elsewhere", "tcp", bridgeGateway.String()+":8080", "")
	w.reach(t, "container:neighbour", "tcp", otherGW+":8080", "")
	w.reach(t, "host", "tcp", otherGW+":8080", "")

	// An internal network has no way out, not even through a DNAT to its gateway.
	w.MustBerth(t, "network", "create", "--internal", "inner")
	w.runPeer(t, "inside", "tcp:80", "--network", "inner")
	innerGW := networkField(t, w, "{{(index .IPAM.Config 0).Gateway}}", "inner")
	w.unreachable(t, "container:inside", "tcp", innerGW+":8080")

	webIP, nbIP := containerIP(t, w.World, "web"), containerIP(t, w.World, "neighbour")
	if _, errOut, code := w.InOutside(t, "ip", "route", "add", bridgeSubnet.String(), "via", testworld.HostAddr.String()); code != 0 {
		t.Fatalf("route the container subnet through the host: %s", errOut)
	}
	w.unreachable(t, "outside", "tcp", nbIP.String()+":80")
	w.unreachable(t, "outside", "tcp", webIP.String()+":80")
	w.unreachable(t, "outside", "tcp", hostPort(80))
	w.reach(t, "outside", "tcp", hostPort(8080), outsideAddr) // still fine with the route
}

// TestPublishedPortsShown: inspect, port and ps show the mappings as docker does.
func TestPublishedPortsShown(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "web", "tcp:80", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--expose", "9000")
	var ports map[string][]struct{ HostIp, HostPort string }
	if err := json.Unmarshal([]byte(inspect(t, w.World, "{{json .NetworkSettings.Ports}}", "web")), &ports); err != nil {
		t.Fatal(err)
	}
	// On every address: 0.0.0.0 and [::] (the IPv6 side forwarded by the
	// daemon), as Docker 28 with its userland proxy shows it.
	if b := ports["80/tcp"]; len(b) != 2 || b[0].HostIp != "0.0.0.0" || b[0].HostPort != "8080" || b[1].HostIp != "::" || b[1].HostPort != "8080" {
		t.Errorf("NetworkSettings.Ports[80/tcp] = %+v", b)
	}
	if b := ports["53/udp"]; len(b) != 1 || b[0].HostIp != "127.0.0.1" || b[0].HostPort != "5353" {
		t.Errorf("NetworkSettings.Ports[53/udp] = %+v", b)
	}
	if b, ok := ports["9000/tcp"]; !ok || b != nil {
		t.Errorf("exposed, unpublished 9000/tcp = %+v (present %v), want null", b, ok)
	}
	if got := strings.TrimSpace(w.MustBerth(t, "port", "web", "80")); got != "0.0.0.0:8080\n[::]:8080" {
		t.Errorf("berth port web 80 = %q", got)
	}
	ps := w.MustBerth(t, "ps", "--format", "{{.Ports}}")
	for _, want := range []string{"0.0.0.0:8080->80/tcp", "[::]:8080->80/tcp", "127.0.0.1:5353->53/udp", "9000/tcp"} {
		if !strings.Contains(ps, want) {
			t.Errorf("ps PORTS %q lacks %q", ps, want)
		}
	}
}

// TestPublishedPortsDockerCLI: the real docker CLI's -p reaches berth as
// the same PortBindings, and docker port reads them back.
func TestPublishedPortsDockerCLI(t *testing.T) {
	w := startPortWorld(t)
	if _, errOut, code := w.Docker(t, "run", "-d", "--name", "dk", "-p", "127.0.0.1:8086:80", "-p", "8087:81/udp", testworld.BusyboxImage, "sleep", "3600"); code != 0 {
		t.Fatalf("docker run -p: %s", errOut)
	}
	w.copyPeer(t, "dk")
	if _, errOut, code := w.Docker(t, "exec", "-d", "dk", "/peer", "-listen", "tcp:80,udp:81"); code != 0 {
		t.Fatalf("docker exec -d: %s", errOut)
	}
	out, _, _ := w.Docker(t, "port", "dk")
	for _, want := range []string{"80/tcp -> 127.0.0.1:8086", "81/udp -> 0.0.0.0:8087"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker port dk = %q, lacks %q", out, want)
		}
	}
	// berth answers exec -d once the peer runs, not once it listens: reach
	// asks again until it does.
	w.reach(t, "host", "tcp", "127.0.0.1:8086", "")
	w.reach(t, "outside", "udp", hostPort(8087), outsideAddr)
}

// TestPublishedPortConflicts: the same host port twice, a port under one
// already taken on every address, and a port a host process listens on
// are refused with Docker's message, and the first owner keeps working.
func TestPublishedPortConflicts(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "first", "tcp:80", "-p", "8080:80")
	// A host process on 9999, in the world's host namespace. It is entered
	// through the holder, not the daemon: /proc/<daemon>/ns/net names the
	// namespace of the daemon's main thread, which for a moment may be a
	// container's while that thread does netlink work inside it.
	hostProc := exec.Command("nsenter", "-t", strconv.Itoa(w.HolderPID()), "-n", "--", w.peer, "-listen", "tcp:9999")
	var procErr strings.Builder
	hostProc.Stderr = &procErr
	if err := hostProc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { hostProc.Wait(); close(exited) }()
	t.Cleanup(func() { hostProc.Process.Kill(); <-exited })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, ok := w.askFrom(t, "host", "tcp", "127.0.0.1:9999"); ok {
			break
		}
		select {
		case <-exited:
			t.Fatalf("the host listener on 9999 exited: %s", procErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the host listener on 9999 never answered")
		}
	}
	// Docker's words: its allocator's for a port another container
	// publishes, its bridge driver's failed bind for a host process's.
	for _, tc := range []struct{ spec, want string }{
		{"8080:80", "port is already allocated"},
		{"127.0.0.1:8080:80", "failed to bind host port for 127.0.0.1:8080:"}, // moby's allocator keeps ports by address
		{"9999:80", "failed to bind host port for 0.0.0.0:9999:"},
	} {
		_, errOut, code := w.Berth(t, "run", "-d", "-p", tc.spec, testworld.BusyboxImage, "sleep", "60")
		if code == 0 {
			t.Errorf("run -p %s succeeded, want a conflict", tc.spec)
		}
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("run -p %s: error %q lacks %q", tc.spec, errOut, tc.want)
		}
	}
	_, errOut, code := w.Berth(t, "run", "-d", "-p", "9999:80/udp", testworld.BusyboxImage, "sleep", "60")
	if code != 0 {
		t.Errorf("udp 9999 next to a TCP listener: %s", errOut)
	}
	w.reach(t, "outside", "tcp", hostPort(8080), outsideAddr)
}

// TestPublishedPortsHostBinding: host_binding_ipv4 sets the default host
// address of a network's ports.
func TestPublishedPortsHostBinding(t *testing.T) {
	w := startPortWorld(t)
	w.MustBerth(t, "network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "local")
	w.runPeer(t, "loc", "tcp:80", "--network", "local", "-p", "8090:80")
	w.reach(t, "host", "tcp", "127.0.0.1:8090", "")
	w.unreachable(t, "outside", "tcp", hostPort(8090))
	if got := strings.TrimSpace(w.MustBerth(t, "port", "loc", "80")); got != "127.0.0.1:8090" {
		t.Errorf("berth port loc 80 = %q", got)
	}
}

// TestPublishedPortRanges: -p ranges, a host port range to pick from,
// -p CPORT (ephemeral) and -P.
func TestPublishedPortRanges(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "ranged", "tcp:80,tcp:81,tcp:82", "-p", "8000-8002:80-82")
	for i := range 3 {
		w.reach(t, "outside", "tcp", hostPort(8000+i), outsideAddr)
	}
	w.runPeer(t, "pick", "tcp:80", "-p", "8001-8010:80")
	if got := strings.TrimSpace(w.MustBerth(t, "port", "pick", "80")); got != "0.0.0.0:8003\n[::]:8003" {
		t.Errorf("port picked from 8001-8010 = %q, want the first free, 0.0.0.0:8003 and [::]:8003", got)
	}
	w.runPeer(t, "eph", "tcp:80", "-p", "80")
	w.runPeer(t, "all", "tcp:80", "--expose", "80", "-P")
	// As Docker's: the ephemeral range's ports in order, from its start
	// (the daemon's namespace is the world's host, fresh; a connection
	// out of it may hold one of the first ports, which is skipped).
	first, _, _ := strings.Cut(strings.TrimSpace(w.MustInHost(t, "cat", "/proc/sys/net/ipv4/ip_local_port_range")), "\t")
	lo, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("ip_local_port_range: %v", err)
	}
	prev := lo - 1
	for _, name := range []string{"eph", "all"} {
		hp := strings.TrimSpace(w.MustBerth(t, "port", name, "80"))
		v4, v6, _ := strings.Cut(hp, "\n")
		_, port, ok := strings.Cut(v4, "0.0.0.0:")
		n, err := strconv.Atoi(port)
		if !ok || err != nil || n <= prev || n > prev+3 || v6 != "[::]:"+port {
			t.Errorf("%s: port 80 published on %q, want the next ephemeral port after %d on 0.0.0.0 and [::]", name, hp, prev)
			continue
		}
		prev = n
		w.reach(t, "outside", "tcp", testworld.HostAddr.String()+":"+port, outsideAddr)
	}
}

// TestPublishedPortsCleanup: after rm, and after kill -9 of the daemon and
// a restart, a freed port is refused and never reaches a later container
// that got the same address.
func TestPublishedPortsCleanup(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "web", "tcp:80,udp:53", "-p", "8080:80", "-p", "5353:53/udp")
	addr := containerIP(t, w.World, "web")
	w.reach(t, "outside", "udp", hostPort(5353), outsideAddr)
	// A client that keeps one UDP flow going: its conntrack entry, DNATed
	// to web's address, must not outlive the port.
	sameFlow := func() (string, bool) {
		out, errOut, code := w.InOutside(t, w.peer, "-dial", "udp:"+hostPort(5353), "-sport", "40053", "-timeout", "2s")
		if code != 0 && code != peerNoAnswer {
			t.Errorf("the UDP probe failed (exit %d): %s", code, errOut)
		}
		return strings.TrimSpace(out), code == 0
	}
	if !retried(func() bool { _, ok := sameFlow(); return ok }) {
		t.Fatal("the UDP flow from port 40053 got no answer while published")
	}
	w.MustBerth(t, "rm", "-f", "web")
	w.runPeer(t, "later", "tcp:80,udp:53")
	if got := containerIP(t, w.World, "later"); got != addr {
		t.Fatalf("later got %s, want the freed %s", got, addr)
	}
	w.unreachable(t, "outside", "tcp", hostPort(8080))
	w.unreachable(t, "outside", "udp", hostPort(5353))
	if got, ok := sameFlow(); ok {
		t.Errorf("the old UDP flow reached the later container (answer %q)", got)
	}
	w.MustBerth(t, "rm", "-f", "later")

	w.runPeer(t, "survivor", "tcp:80", "-p", "8081:80")
	addr = containerIP(t, w.World, "survivor")
	w.d.Kill()
	w.d = w.Start(t)
	w.reach(t, "outside", "tcp", hostPort(8081), outsideAddr)
	if _, errOut, code := w.Berth(t, "run", "-d", "-p", "8081:80", testworld.BusyboxImage, "sleep", "60"); code == 0 || !strings.Contains(errOut, "already allocated") {
		t.Errorf("after restart, 8081 was not held again: exit %d, %s", code, errOut)
	}
	w.d.Kill()
	w.d = w.Start(t)
	w.MustBerth(t, "rm", "-f", "survivor")
	w.runPeer(t, "after", "tcp:80")
	if got := containerIP(t, w.World, "after"); got != addr {
		t.Fatalf("after got %s, want the freed %s", got, addr)
	}
	w.unreachable(t, "outside", "tcp", hostPort(8081))
}

// TestPortTakenWhileDaemonDownIsHeldAgain: a host process that took a
// published port while no daemon ran keeps it (berth cannot hold it at its
// start; the DNAT goes on), and once that process is gone berth holds the
// port again (RetryUnheldPorts), so that no host process can take it.
func TestPortTakenWhileDaemonDownIsHeldAgain(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "srv", "tcp:80", "-p", "8181:80")
	w.d.Kill()
	listen := func() (*exec.Cmd, chan struct{}) {
		p := exec.Command("nsenter", "-t", strconv.Itoa(w.HolderPID()), "-n", "--", w.peer, "-listen", "tcp:8181")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { p.Wait(); close(exited) }()
		t.Cleanup(func() { p.Process.Kill(); <-exited })
		return p, exited
	}
	squatter, gone := listen()
	// Listening: asking 127.0.0.1:8181 would not tell (the DNAT, kept
	// while no daemon runs, answers from the container).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if out, _, _ := w.InHost(t, "ss", "-Htln", "sport = :8181"); strings.Contains(out, "LISTEN") {
			break
		}
		select {
		case <-gone:
			t.Fatal("the host process could not listen on 8181 while no daemon ran")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the host process on 8181 never answered")
		}
	}
	w.d = w.Start(t)
	squatter.Process.Kill()
	<-gone
	// Within a retry or two (every 5 s), berth says it holds 8181 again,
	// and a new host listener cannot bind it.
	logPath := w.d.LogPath
	if !retried(func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "holding published host port again")
	}) {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("berth never held 8181 again once the host process was gone:\n%s", b)
	}
	if _, exited := listen(); !func() bool {
		select {
		case <-exited:
			return true
		case <-time.After(time.Second):
			return false
		}
	}() {
		t.Errorf("a host process could listen on 8181 after berth held it again")
	}
}

// TestUDPFlowFromBeforeThePortWasPublished: a client that sends to a host
// port before it is published (started before the container, or sending
// on while the container is stopped) reaches the container once it is,
// on the same socket. Its datagrams had gone to the host itself, and
// their conntrack entry, refreshed by each one, kept the flow there for
// good (QA round 25); berth deletes such entries when it publishes a UDP
// port, as moby's clearConntrackEntries does.
func TestUDPFlowFromBeforeThePortWasPublished(t *testing.T) {
	w := startPortWorld(t)
	sameFlow := func() (string, bool) {
		out, errOut, code := w.InOutside(t, w.peer, "-dial", "udp:"+hostPort(5700), "-sport", "42000", "-timeout", "1s")
		if code != 0 && code != peerNoAnswer {
			t.Errorf("the UDP probe failed (exit %d): %s", code, errOut)
		}
		return strings.TrimSpace(out), code == 0
	}
	if got, ok := sameFlow(); ok {
		t.Fatalf("port 5700 answered %q before anything was published", got)
	}
	w.runPeer(t, "ud", "udp:53", "-p", "5700:53/udp")
	if !retried(func() bool { _, ok := sameFlow(); return ok }) {
		out, _, _ := w.InHost(t, "cat", "/proc/net/nf_conntrack")
		t.Fatalf("the flow that started before the port was published never reached the container; conntrack:\n%s", out)
	}
	w.MustBerth(t, "stop", "-t", "1", "ud")
	if got, ok := sameFlow(); ok {
		t.Fatalf("the stopped container's port answered %q", got)
	}
	w.MustBerth(t, "start", "ud")
	w.copyPeer(t, "ud")
	if !retried(func() bool { _, ok := sameFlow(); return ok }) {
		t.Fatal("the flow that went on while the container was stopped never reached it again")
	}
}
