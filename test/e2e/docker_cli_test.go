package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/testworld"
)

// These tests drive berth with the real docker CLI, command by command as
// issue 3 lists them, and check what docker prints as well as what the
// kernel holds afterwards.

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// mustDocker runs docker and fails the test unless it exits 0; it returns stdout.
func mustDocker(t *testing.T, w *testworld.World, args ...string) string {
	t.Helper()
	out, errOut, code := w.Docker(t, args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dockerInspect is `docker inspect --format FORMAT name`, trimmed.
func dockerInspect(t *testing.T, w *testworld.World, format, name string) string {
	t.Helper()
	return strings.TrimSpace(mustDocker(t, w, "inspect", "--format", format, name))
}

// lines splits output into its non-empty lines.
func lines(out string) []string {
	var l []string
	for _, s := range strings.Split(out, "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}

// containerLinks lists the links in a container's network namespace, found
// through the PID docker inspect shows.
func containerLinks(t *testing.T, w *testworld.World, name string) []string {
	t.Helper()
	return w.LinkNames(t, "/proc/"+dockerInspect(t, w, "{{.State.Pid}}", name)+"/ns/net")
}

// TestDockerCLIDaemonAndImages: version, info, import/images/rmi, the
// foreground, --rm and -i runs, the golden network inspect and the error
// messages docker users know.
func TestDockerCLIDaemonAndImages(t *testing.T) {
	w, _ := startWorld(t)
	checkBridgeGolden(t, w)

	out := mustDocker(t, w, "version")
	server, ok := strings.CutPrefix(out[strings.Index(out, "Server:"):], "Server:")
	if !ok || !regexp.MustCompile(`API version:\s+1\.51\b`).MatchString(server) {
		t.Errorf("docker version: want a Server section with API version 1.51:\n%s", out)
	}

	tarPath := filepath.Join(w.Dir, "busybox.tar") // written by w.Busybox
	out = mustDocker(t, w, "import", tarPath, "bb2")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(strings.TrimSpace(out)) {
		t.Errorf("docker import printed %q, want sha256:<64 hex>", out)
	}
	out = mustDocker(t, w, "images")
	if l := lines(out); len(l) != 3 || strings.Join(strings.Fields(l[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" ||
		!strings.Contains(out, "bb2 ") || !strings.Contains(out, "busybox ") {
		t.Errorf("docker images: want the header, busybox and bb2:\n%s", out)
	}
	if out := mustDocker(t, w, "rmi", "bb2"); !strings.Contains(out, "Untagged: bb2") {
		t.Errorf("docker rmi bb2 printed %q, want Untagged: bb2…", out)
	}
	if out := mustDocker(t, w, "images", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "busybox" {
		t.Errorf("docker images after rmi = %q, want only busybox", out)
	}

	out, _, code := w.Docker(t, "run", "--name", "fg", testworld.BusyboxImage, "sh", "-c", "echo hi; exit 3")
	if out != "hi\n" || code != 3 {
		t.Errorf("docker run (foreground) printed %q, exit %d; want hi and 3", out, code)
	}
	out, _, code = w.Docker(t, "run", "--rm", "--name", "gone", testworld.BusyboxImage, "echo", "bye")
	if out != "bye\n" || code != 0 {
		t.Errorf("docker run --rm printed %q, exit %d; want bye and 0", out, code)
	}
	if names := lines(mustDocker(t, w, "ps", "-a", "--format", "{{.Names}}")); !equal(names, []string{"fg"}) {
		t.Errorf("docker ps -a after run --rm = %q, want only fg", names)
	}
	out, _, code = w.DockerIn(t, "abc\n", "run", "-i", "--rm", testworld.BusyboxImage, "cat")
	if out != "abc\n" || code != 0 {
		t.Errorf("echo abc | docker run -i busybox cat printed %q, exit %d", out, code)
	}
	// Stdin the container never reads: its exit code all the same, never
	// the CLI's "connection reset by peer" and exit 1 (the daemon closed
	// the stream with the bytes unread, 3 runs in 10 before).
	for i := range 10 {
		if _, errOut, code := w.DockerIn(t, "hello\n", "run", "-i", "--rm", testworld.BusyboxImage, "sh", "-c", "exit 3"); code != 3 || errOut != "" {
			t.Errorf("run %d: echo hello | docker run -i busybox sh -c 'exit 3': exit %d, %q", i, code, errOut)
		}
	}
	// The exited and removed containers hold no sandbox and no port (once
	// the reaper has deleted the veths their teardown cut off).
	waitReaped(t, w)
	if files := w.NetnsFiles(t); len(files) != 0 {
		t.Errorf("netns files with no container running: %q", files)
	}
	if ports := w.BridgePorts(t, defaultBridge); len(ports) != 0 {
		t.Errorf("ports of %s with no container running: %q", defaultBridge, ports)
	}

	runDockerSleeper(t, w, "c1")
	out = mustDocker(t, w, "info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}}")
	if strings.TrimSpace(out) != "2 1 1 1" {
		t.Errorf("docker info counts (containers running stopped images) = %q, want 2 1 1 1", out)
	}
	out = mustDocker(t, w, "info")
	for _, want := range []string{"Server:", " Containers: 2", "  Running: 1", "  Stopped: 1", " Images: 1"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("docker info lacks %q:\n%s", want, out)
		}
	}
	checkDockerErrors(t, w)
}

// checkDockerErrors runs commands that must fail with Docker's own messages.
func checkDockerErrors(t *testing.T, w *testworld.World) {
	t.Helper()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "nosuch"}, "Error: No such object: nosuch"},
		{[]string{"container", "inspect", "nosuch"}, "Error response from daemon: No such container: nosuch"},
		{[]string{"network", "inspect", "nosuch"}, "network nosuch not found"},
		{[]string{"run", "-d", "--name", "c1", testworld.BusyboxImage, "true"}, `Conflict. The container name "/c1" is already in use by container "`},
		{[]string{"run", "--ip", "172.17.0.9", testworld.BusyboxImage, "true"}, "user specified IP address is supported on user defined networks only"},
		{[]string{"exec", "nosuch", "true"}, "No such container: nosuch"},
		{[]string{"rmi", "nosuch"}, "No such image: nosuch"},
	}
	for _, c := range cases {
		_, errOut, code := w.Docker(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, stderr %q; want a failure saying %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}

// runDockerSleeper is runSleeper through docker: a detached container that
// stops at once on SIGTERM (a shell as PID 1 ignores it otherwise).
func runDockerSleeper(t *testing.T, w *testworld.World, name string, opts ...string) string {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, opts...)
	args = append(args, testworld.BusyboxImage, "sh", "-c", `trap "exit 0" TERM; echo started; while true; do sleep 1; done`)
	id := strings.TrimSpace(mustDocker(t, w, args...))
	if !fullID.MatchString(id) {
		t.Errorf("docker run -d printed %q, want a 64-character ID", id)
	}
	return id
}

// checkBridgeGolden compares `docker network inspect bridge`, IDs and
// times normalised, with the golden file of the seed's shape.
func checkBridgeGolden(t *testing.T, w *testworld.World) {
	t.Helper()
	out := mustDocker(t, w, "network", "inspect", "bridge")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("docker network inspect bridge: not a one-element JSON array (%v):\n%s", err, out)
	}
	if id, _ := raw[0]["Id"].(string); !fullID.MatchString(id) {
		t.Errorf("bridge Id = %q, want 64 hex", id)
	}
	raw[0]["Id"], raw[0]["Created"] = "<id>", "<created>"
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(raw); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	golden := filepath.Join("testdata", "docker_network_inspect_bridge.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("docker network inspect bridge (-golden +got):\n%s", diff)
	}
}

// TestDockerCLINetworks: network create with every option, run on it with
// --ip and --mac-address, connect/disconnect, rm and prune.
func TestDockerCLINetworks(t *testing.T) {
	w, _ := startWorld(t)
	out := mustDocker(t, w, "network", "create", "--subnet", "10.97.0.0/24", "--gateway", "10.97.0.254",
		"--ip-range", "10.97.0.128/25", "--internal", "-o", "com.docker.network.bridge.name=br-dk",
		"--label", "team=e2e", "dk")
	if !fullID.MatchString(strings.TrimSpace(out)) {
		t.Errorf("docker network create printed %q, want the 64-hex ID", out)
	}
	h := w.HostHandle(t)
	br, err := h.LinkByName("br-dk")
	if err != nil {
		t.Fatalf("bridge br-dk after docker network create: %v", err)
	}
	if got := ipv4Addrs(t, h, br); !equal(got, []string{"10.97.0.254/24"}) {
		t.Errorf("br-dk has %q, want the gateway 10.97.0.254/24", got)
	}
	checkDkInspect(t, w)
	if l := lines(mustDocker(t, w, "network", "ls", "--format", "{{.Name}} {{.Driver}}")); !equal(sorted(l), []string{"bridge bridge", "dk bridge", "host host", "none null"}) {
		t.Errorf("docker network ls = %q", l)
	}

	runDockerSleeper(t, w, "n1", "--network", "dk", "--ip", "10.97.0.10", "--mac-address", "02:42:0a:61:00:0a")
	out = mustDocker(t, w, "exec", "n1", "ip", "addr", "show", "eth0")
	if !strings.Contains(out, "inet 10.97.0.10/24 ") || !strings.Contains(out, "link/ether 02:42:0a:61:00:0a ") {
		t.Errorf("n1's eth0: want 10.97.0.10/24 and MAC 02:42:0a:61:00:0a:\n%s", out)
	}
	if got := dockerInspect(t, w, "{{.NetworkSettings.IPAddress}}", "n1"); got != "" {
		t.Errorf("legacy IPAddress of n1 on a user network = %q, want empty as Docker", got)
	}
	runDockerSleeper(t, w, "n2", "--network", "dk")
	if a := parseAddr(t, dockerInspect(t, w, `{{(index .NetworkSettings.Networks "dk").IPAddress}}`, "n2")); !netip.MustParsePrefix("10.97.0.128/25").Contains(a) {
		t.Errorf("n2 got %s, want an address from --ip-range 10.97.0.128/25", a)
	}

	runDockerSleeper(t, w, "b1")
	mustDocker(t, w, "network", "connect", "--ip", "10.97.0.20", "--alias", "web", "dk", "b1")
	// Connected twice: a running container's second connect fails, a
	// stopped one's succeeds and changes nothing, as moby's
	// updateNetworkSettings ("Avoid duplicate config").
	if _, errOut, code := w.Docker(t, "network", "connect", "dk", "b1"); code == 0 || !strings.Contains(errOut, "endpoint with name b1 already exists in network dk") {
		t.Errorf("second connect of running b1: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "create", "--name", "s1", testworld.BusyboxImage, "true")
	mustDocker(t, w, "network", "connect", "--alias", "first", "dk", "s1")
	mustDocker(t, w, "network", "connect", "--alias", "second", "dk", "s1")
	if got := dockerInspect(t, w, `{{json (index .NetworkSettings.Networks "dk").Aliases}}`, "s1"); got != `["first"]` {
		t.Errorf("stopped s1's aliases on dk after a second connect = %s, want the first's", got)
	}
	mustDocker(t, w, "rm", "s1")
	out = mustDocker(t, w, "exec", "b1", "ip", "addr", "show", "eth1")
	if !strings.Contains(out, "inet 10.97.0.20/24 ") {
		t.Errorf("b1's eth1 after connect --ip 10.97.0.20:\n%s", out)
	}
	if got := dockerInspect(t, w, `{{json (index .NetworkSettings.Networks "dk").Aliases}}`, "b1"); !strings.Contains(got, `"web"`) {
		t.Errorf("b1's aliases on dk = %s, want web among them", got)
	}
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "n1", "ping", "-c", "1", "-W", "2", "10.97.0.20")
		return code == 0
	}) {
		t.Errorf("n1 cannot ping b1 at 10.97.0.20 on dk")
	}
	// The --alias given to connect is a name on dk, beside the container's own.
	for _, name := range []string{"web", "b1"} {
		if got, out := lookup(t, w, "n1", name); !equal(got, []string{"10.97.0.20"}) {
			t.Errorf("n1 resolves %s to %q, want [10.97.0.20]:\n%s", name, got, out)
		}
	}
	mustDocker(t, w, "network", "disconnect", "dk", "b1")
	waitReaped(t, w) // disconnect cuts eth1 off; the reaper deletes it a little later
	if got := containerLinks(t, w, "b1"); !equal(got, []string{"eth0", "lo"}) {
		t.Errorf("b1's links after disconnect = %q, want [eth0 lo]", got)
	}
	wantLookup(t, w, "n1", "web") // the alias left with the endpoint

	mustDocker(t, w, "network", "create", "p1")
	mustDocker(t, w, "network", "create", "p2")
	runDockerSleeper(t, w, "u1", "--network", "p1")
	mustDocker(t, w, "rm", "-f", "n1", "n2")
	// until: only what was created before it (the networks here are
	// seconds old); docker system prune asks for networks with it too.
	if out := mustDocker(t, w, "network", "prune", "-f", "--filter", "until=1h"); strings.Contains(out, "dk") || strings.Contains(out, "p2") {
		t.Errorf("docker network prune --filter until=1h printed %q: it removed a network made just now", out)
	}
	mustDocker(t, w, "system", "prune", "-f", "--filter", "until=1h")
	out = mustDocker(t, w, "network", "prune", "-f")
	if l := lines(out); len(l) < 1 || l[0] != "Deleted Networks:" || !equal(sorted(l[1:]), []string{"dk", "p2"}) {
		t.Errorf("docker network prune -f printed %q, want Deleted Networks: dk, p2", out)
	}
	if l := lines(mustDocker(t, w, "network", "ls", "--format", "{{.Name}}")); !equal(sorted(l), []string{"bridge", "host", "none", "p1"}) {
		t.Errorf("networks after prune = %q, want bridge host none p1", l)
	}
	mustDocker(t, w, "rm", "-f", "u1")
	if out := mustDocker(t, w, "network", "rm", "p1"); strings.TrimSpace(out) != "p1" {
		t.Errorf("docker network rm p1 printed %q, want p1", out)
	}
	for _, l := range w.LinkNames(t, w.HostNS()) {
		if l == "br-dk" || strings.HasPrefix(l, "br-") {
			t.Errorf("host still has %s after the networks were removed", l)
		}
	}
}

// TestDockerCLINetworkNames: names Docker takes and berth refused until
// session 36 — a "/" (circleci's "ci_build-1/abc"), a space and a
// non-ASCII letter, and one that ends in an action's word — work with
// the docker CLI (which sends a "/" unescaped) and berth's own, through
// create, inspect, ls, run, connect, disconnect and rm; a name with a
// control character is refused.
func TestDockerCLINetworkNames(t *testing.T) {
	w, _ := startWorld(t)
	runDockerSleeper(t, w, "nn")
	names := []string{"ci_build-1/abc", "my net é", "x/connect"}
	for i, name := range names {
		mustDocker(t, w, "network", "create", "--subnet", fmt.Sprintf("10.%d.0.0/24", 120+i), name)
		if got := dockerInspect(t, w, "{{.Name}}", name); got != name {
			t.Errorf("docker network inspect %q: Name %q", name, got)
		}
		if n, _ := inspectNetwork(t, w.Berth, name); n.Name != name {
			t.Errorf("berth network inspect %q: Name %q", name, n.Name)
		}
		runDockerSleeper(t, w, fmt.Sprintf("on%d", i), "--network", name)
		if got := dockerInspect(t, w, fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, name), fmt.Sprintf("on%d", i)); !strings.HasPrefix(got, fmt.Sprintf("10.%d.0.", 120+i)) {
			t.Errorf("on%d's address on %q = %q", i, name, got)
		}
		mustDocker(t, w, "network", "connect", name, "nn")
		if got := dockerInspect(t, w, fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, name), "nn"); !strings.HasPrefix(got, fmt.Sprintf("10.%d.0.", 120+i)) {
			t.Errorf("nn's address on %q after connect = %q", name, got)
		}
		if _, _, code := w.Docker(t, "exec", "nn", "ping", "-c", "1", "-W", "2", fmt.Sprintf("10.%d.0.2", 120+i)); code != 0 {
			t.Errorf("nn cannot ping on%d across %q", i, name)
		}
	}
	ls := lines(mustDocker(t, w, "network", "ls", "--format", "{{.Name}}"))
	for _, name := range names {
		if !slices.Contains(ls, name) {
			t.Errorf("docker network ls = %q, want %q in it", ls, name)
		}
		mustDocker(t, w, "network", "disconnect", name, "nn")
		w.MustBerth(t, "network", "connect", name, "nn")
		w.MustBerth(t, "network", "disconnect", name, "nn")
	}
	if got := dockerInspect(t, w, "{{len .NetworkSettings.Networks}}", "nn"); got != "1" {
		t.Errorf("nn is on %s networks after the disconnects, want 1", got)
	}
	mustDocker(t, w, "rm", "-f", "on0", "on1", "on2")
	for _, name := range names {
		if out := mustDocker(t, w, "network", "rm", name); strings.TrimSpace(out) != name {
			t.Errorf("docker network rm %q printed %q", name, out)
		}
	}
	if _, errOut, code := w.Docker(t, "network", "create", "bad\x1b[31mname"); code == 0 || !strings.Contains(errOut, "control characters") {
		t.Errorf("a name with an escape sequence: exit %d, %q", code, errOut)
	}
}

// checkDkInspect checks the options of `docker network create` in inspect.
func checkDkInspect(t *testing.T, w *testworld.World) {
	t.Helper()
	n, raw := inspectNetwork(t, w.Docker, "dk")
	if !n.Internal || n.Labels["team"] != "e2e" || n.Options["com.docker.network.bridge.name"] != "br-dk" {
		t.Errorf("dk: Internal %v, Labels %v, Options %v; want internal, team=e2e, bridge br-dk", n.Internal, n.Labels, n.Options)
	}
	var ipam struct {
		Config []struct{ Subnet, IPRange, Gateway string }
	}
	if err := json.Unmarshal(raw["IPAM"], &ipam); err != nil || len(ipam.Config) != 1 ||
		ipam.Config[0] != (struct{ Subnet, IPRange, Gateway string }{"10.97.0.0/24", "10.97.0.128/25", "10.97.0.254"}) {
		t.Errorf("dk IPAM = %s (%v), want 10.97.0.0/24 range 10.97.0.128/25 via 10.97.0.254", raw["IPAM"], err)
	}
}

// TestDockerCLIContainers: ps, inspect, exec in all its forms, logs, stop,
// kill and rm -f, with the kernel state after each.
func TestDockerCLIContainers(t *testing.T) {
	w, _ := startWorld(t)
	id1 := runDockerSleeper(t, w, "s1")
	runDockerSleeper(t, w, "s2")
	mustDocker(t, w, "run", "--name", "done", testworld.BusyboxImage, "true")

	out := mustDocker(t, w, "ps")
	if l := lines(out); len(l) != 3 || strings.Join(strings.Fields(l[0]), " ") != "CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES" {
		t.Errorf("docker ps: want the header and two containers:\n%s", out)
	}
	if got := sorted(lines(mustDocker(t, w, "ps", "--format", "{{.Names}}"))); !equal(got, []string{"s1", "s2"}) {
		t.Errorf("docker ps --format {{.Names}} = %q", got)
	}
	if got := sorted(lines(mustDocker(t, w, "ps", "-a", "--format", "{{.Names}} {{.State}}"))); !equal(got, []string{"done exited", "s1 running", "s2 running"}) {
		t.Errorf("docker ps -a = %q", got)
	}
	if q := lines(mustDocker(t, w, "ps", "-q")); len(q) != 2 || !slices.Contains(q, id1[:12]) {
		t.Errorf("docker ps -q = %q, want two short IDs with %s", q, id1[:12])
	}
	checkDockerInspect(t, w, "s1")

	out, _, code := w.Docker(t, "exec", "s1", "sh", "-c", "echo out; exit 4")
	if out != "out\n" || code != 4 {
		t.Errorf("docker exec printed %q, exit %d; want out and 4", out, code)
	}
	out, _, code = w.DockerIn(t, "line1\nline2\n", "exec", "-i", "s1", "sh", "-c", "cat; echo EOF")
	if out != "line1\nline2\nEOF\n" || code != 0 {
		t.Errorf("docker exec -i printed %q, exit %d; want the input then EOF", out, code)
	}
	if out := mustDocker(t, w, "exec", "-d", "s1", "sleep", "4242"); out != "" {
		t.Errorf("docker exec -d printed %q, want nothing", out)
	}
	// berth answers a detached exec once runc has started the process, as
	// Docker does; ps may still catch it in runc's init for a moment,
	// before the exec of sleep.
	var ps string
	if !retried(func() bool {
		ps = mustDocker(t, w, "exec", "s1", "ps")
		return strings.Contains(ps, "sleep 4242")
	}) {
		t.Errorf("the exec -d process is not running in s1:\n%s", ps)
	}
	// A detached exec that cannot start fails, as with Docker, instead of
	// being reported as started.
	if _, errOut, code := w.Docker(t, "exec", "-d", "s1", "nosuchcmd"); code == 0 || !strings.Contains(errOut, "executable file not found") {
		t.Errorf("docker exec -d s1 nosuchcmd: exit %d, stderr %q; want a failure saying the executable was not found", code, errOut)
	}
	checkExecTTY(t, w, "s1")

	if out := mustDocker(t, w, "stop", "s1"); strings.TrimSpace(out) != "s1" {
		t.Errorf("docker stop s1 printed %q", out)
	}
	if got := dockerInspect(t, w, "{{.State.Status}} {{.State.ExitCode}}", "s1"); got != "exited 0" {
		t.Errorf("s1 after stop: %q, want exited 0", got)
	}
	// After the exit the log is complete, so comparing it races nothing.
	if out := mustDocker(t, w, "logs", "s1"); out != "started\n" {
		t.Errorf("docker logs s1 = %q, want started", out)
	}
	if out := mustDocker(t, w, "kill", "s2"); strings.TrimSpace(out) != "s2" {
		t.Errorf("docker kill s2 printed %q", out)
	}
	// A SIGKILL returns once the exit is recorded, as Docker's does.
	if got := dockerInspect(t, w, "{{.State.Running}} {{.State.Status}} {{.State.ExitCode}}", "s2"); got != "false exited 137" {
		t.Errorf("s2 right after docker kill: %q, want false exited 137", got)
	}
	waitReaped(t, w)
	if ports := w.BridgePorts(t, defaultBridge); len(ports) != 0 {
		t.Errorf("bridge ports with every container stopped: %q", ports)
	}
	if files := w.NetnsFiles(t); len(files) != 0 {
		t.Errorf("netns files with every container stopped: %q", files)
	}
	// run --rm whose start fails: the CLI waits for the removal, which
	// Docker does on a failed start; berth once left the container and the
	// CLI waiting for ever.
	if _, errOut, code := w.Docker(t, "run", "--rm", "--name", "nostart", testworld.BusyboxImage, "nosuchcmd"); code != 127 || !strings.Contains(errOut, "executable file not found") {
		t.Errorf("docker run --rm of a missing command: exit %d, stderr %q; want 127 and the start error", code, errOut)
	}
	if out := mustDocker(t, w, "ps", "-a", "--filter", "name=nostart", "-q"); out != "" {
		t.Errorf("the run --rm container whose start failed is still there: %q", out)
	}
	if out := mustDocker(t, w, "rm", "-f", "s1", "s2", "done"); !equal(lines(out), []string{"s1", "s2", "done"}) {
		t.Errorf("docker rm -f printed %q", out)
	}
	if out := mustDocker(t, w, "ps", "-a", "-q"); out != "" {
		t.Errorf("docker ps -a -q after rm -f = %q, want nothing", out)
	}
}

// checkDockerInspect checks the inspect formats of issue 3 and plain inspect.
func checkDockerInspect(t *testing.T, w *testworld.World, name string) {
	t.Helper()
	pid := dockerInspect(t, w, "{{.State.Pid}}", name)
	key := dockerInspect(t, w, "{{.NetworkSettings.SandboxKey}}", name)
	if !strings.HasPrefix(key, w.ExecRoot+"/netns/") || !testworld.SameNamespace("/proc/"+pid+"/ns/net", w.HostPath(key)) {
		t.Errorf("SandboxKey %q of %s is not the netns of its PID %s", key, name, pid)
	}
	ip := parseAddr(t, dockerInspect(t, w, "{{.NetworkSettings.IPAddress}}", name))
	if !bridgeSubnet.Contains(ip) {
		t.Errorf("IPAddress of %s = %s, want one in %s", name, ip, bridgeSubnet)
	}
	var nets map[string]struct{ IPAddress, Gateway, MacAddress, NetworkID, EndpointID string }
	js := dockerInspect(t, w, "{{json .NetworkSettings.Networks}}", name)
	if err := json.Unmarshal([]byte(js), &nets); err != nil || len(nets) != 1 {
		t.Fatalf("{{json .NetworkSettings.Networks}} of %s = %s (%v), want one network", name, js, err)
	}
	b := nets["bridge"]
	if b.IPAddress != ip.String() || b.Gateway != bridgeGateway.String() || !fullID.MatchString(b.NetworkID) || !fullID.MatchString(b.EndpointID) {
		t.Errorf("Networks.bridge of %s = %+v, want %s via %s and full IDs", name, b, ip, bridgeGateway)
	}
	checkMAC(t, w, name, b.MacAddress)

	var plain []struct {
		ID    string `json:"Id"`
		Name  string
		State struct{ Running bool }
	}
	out := mustDocker(t, w, "inspect", name)
	if err := json.Unmarshal([]byte(out), &plain); err != nil || len(plain) != 1 || plain[0].Name != "/"+name || !fullID.MatchString(plain[0].ID) || !plain[0].State.Running {
		t.Errorf("docker inspect %s: want one running container named /%s (%v):\n%s", name, name, err, out)
	}
	var netPlain []map[string]any
	if err := json.Unmarshal([]byte(mustDocker(t, w, "network", "inspect", "bridge", "none")), &netPlain); err != nil || len(netPlain) != 2 {
		t.Errorf("docker network inspect bridge none: want a JSON array of two (%v)", err)
	}
}

// checkExecTTY runs `docker exec -it C tty` under a pty (script(1)): the
// command sees a terminal.
func checkExecTTY(t *testing.T, w *testworld.World, name string) {
	t.Helper()
	cmd := exec.Command("script", "-qec", testworld.DockerPath()+" exec -it "+name+" tty", "/dev/null")
	cmd.Env = append(os.Environ(), w.DockerEnv()...)
	// script(1) types an end-of-file into the pty when its own stdin ends;
	// a pipe held open until the command is done keeps the input silent.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.Output()
	t.Logf("script -qec 'docker exec -it %s tty'\n%s(err %v)", name, out, err)
	if err != nil || !regexp.MustCompile(`^/dev/pts/\d+\r\n$`).Match(out) {
		t.Errorf("docker exec -it %s tty under a pty: %v, printed %q; want /dev/pts/N", name, err, out)
	}
}

// TestHostGatewayIPOption: the daemon's --host-gateway-ip (dockerd's) is
// what --add-host NAME:host-gateway names, a line for each address, in
// place of the default bridge's gateway.
func TestHostGatewayIPOption(t *testing.T) {
	w, _ := startWorld(t, "--host-gateway-ip", "192.0.2.1", "--host-gateway-ip", "2001:db8::1")
	hosts := mustDocker(t, w, "run", "--rm", "--add-host", "host.docker.internal:host-gateway", testworld.BusyboxImage, "cat", "/etc/hosts")
	for _, want := range []string{"192.0.2.1\thost.docker.internal\n", "2001:db8::1\thost.docker.internal\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("/etc/hosts lacks %q:\n%s", want, hosts)
		}
	}
	if strings.Contains(hosts, bridgeGateway.String()) {
		t.Errorf("/etc/hosts names the default bridge's gateway:\n%s", hosts)
	}
}

// TestDockerCLIHostEntries: --add-host's special host-gateway and bracketed
// IPv6 forms, and the host network's hostname and /etc/hosts, as Docker
// gives them.
func TestDockerCLIHostEntries(t *testing.T) {
	w, _ := startWorld(t)
	hosts := mustDocker(t, w, "run", "--rm", "--add-host", "gw:host-gateway", "--add-host", "six:[::1]", testworld.BusyboxImage, "cat", "/etc/hosts")
	for _, want := range []string{bridgeGateway.String() + "\tgw\n", "::1\tsix\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("/etc/hosts with --add-host gw:host-gateway and six:[::1] lacks %q:\n%s", want, hosts)
		}
	}

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--network", "host", testworld.BusyboxImage, "hostname")); got != host {
		t.Errorf("hostname on the host network = %q, want the host's %q", got, host)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--network", "host", "--hostname", "hh", testworld.BusyboxImage, "sh", "-c", "hostname; cat /etc/hostname")); got != "hh\nhh" {
		t.Errorf("hostname and /etc/hostname on the host network with --hostname hh = %q, want hh", got)
	}
	if got := dockerInspect(t, w, "{{.Config.Hostname}}", strings.TrimSpace(mustDocker(t, w, "create", "--network", "host", testworld.BusyboxImage, "true"))); got != host {
		t.Errorf("Config.Hostname of a host-network container = %q, want %q", got, host)
	}
	// Its SandboxKey is the daemon's namespace, bound as libnetwork's
	// default sandbox (<exec-root>/netns/default), while it runs.
	mustDocker(t, w, "run", "-d", "--name", "onhost", "--network", "host", testworld.BusyboxImage, "sleep", "600")
	key := dockerInspect(t, w, "{{.NetworkSettings.SandboxKey}}", "onhost")
	if want := filepath.Join(w.ExecRoot, "netns", "default"); key != want || !testworld.SameNamespace(w.HostPath(key), w.HostNS()) {
		t.Errorf("SandboxKey of a host-network container = %q, want %q, the daemon's namespace", key, want)
	}
	mustDocker(t, w, "stop", "-t", "0", "onhost")
	if key := dockerInspect(t, w, "{{.NetworkSettings.SandboxKey}}", "onhost"); key != "" {
		t.Errorf("SandboxKey of a stopped host-network container = %q, want none", key)
	}
	hostFile, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustDocker(t, w, "run", "--rm", "--network", "host", testworld.BusyboxImage, "cat", "/etc/hosts"); got != string(hostFile) {
		t.Errorf("/etc/hosts on the host network: want the host's file; got\n%s", got)
	}
	// With --add-host the file is the container's own, so that an entry can
	// override the host's (moby's buildHostsFile).
	got := mustDocker(t, w, "run", "--rm", "--network", "host", "--add-host", "extra:10.9.8.7", testworld.BusyboxImage, "cat", "/etc/hosts")
	if !strings.HasPrefix(got, "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(got, "10.9.8.7\textra\n") {
		t.Errorf("/etc/hosts on the host network with --add-host: want localhost lines, then the --add-host line; got\n%s", got)
	}
	// --add-host lines come before the container's own, which names a
	// dotted hostname's bare name too: an entry for the container's own
	// name wins.
	got = mustDocker(t, w, "run", "--rm", "--hostname", "web.example.com", "--add-host", "web.example.com:192.0.2.4",
		testworld.BusyboxImage, "sh", "-c", "cat /etc/hosts; echo; ping -c1 -W1 web.example.com | head -1")
	own := regexp.MustCompile(`(?m)^172\.17\.\d+\.\d+\tweb\.example\.com web$`).FindStringIndex(got)
	extra := strings.Index(got, "192.0.2.4\tweb.example.com\n")
	if own == nil || extra < 0 || extra > own[0] || !strings.Contains(got, "PING web.example.com (192.0.2.4)") {
		t.Errorf("/etc/hosts with a dotted --hostname and --add-host of the same name: want the --add-host line first (and used), then \"IP\tweb.example.com web\"; got\n%s", got)
	}
}

// TestDockerCLILogsTail: docker logs --tail N prints the last N lines,
// counted across stdout and stderr together before the streams are
// split (as json-file's reader counts them).
func TestDockerCLILogsTail(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "--name", "lines", testworld.BusyboxImage, "sh", "-c", "echo 1; echo 2; echo 3; usleep 20000; echo e >&2")
	for _, tc := range []struct {
		tail, want string
	}{{"3", "2\n3\n"}, {"0", ""}, {"all", "1\n2\n3\n"}, {"10", "1\n2\n3\n"}, {"1", ""}} {
		if got := mustDocker(t, w, "logs", "--tail", tc.tail, "lines"); got != tc.want {
			t.Errorf("docker logs --tail %s = %q, want %q", tc.tail, got, tc.want)
		}
	}
	if _, errOut, _ := w.Docker(t, "logs", "--tail", "1", "lines"); errOut != "e\n" {
		t.Errorf("docker logs --tail 1, stderr = %q, want the last line, stderr's", errOut)
	}
}

// TestDockerCLISharedNetns: --network container:<name> runs a container in
// another's network namespace, with its hostname, /etc files and names,
// and Docker's refusals for what would need a namespace of its own.
func TestDockerCLISharedNetns(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "network", "create", "web")
	donorID := runDockerSleeper(t, w, "donor", "--network", "web")
	runDockerSleeper(t, w, "peer", "--network", "web")
	donorIP := dockerInspect(t, w, "{{.NetworkSettings.Networks.web.IPAddress}}", "donor")
	peerIP := dockerInspect(t, w, "{{.NetworkSettings.Networks.web.IPAddress}}", "peer")

	if out := mustDocker(t, w, "run", "--rm", "--network", "container:donor", testworld.BusyboxImage, "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, " "+donorIP+"/") {
		t.Errorf("eth0 of a container on container:donor:\n%s\nwant the donor's address %s", out, donorIP)
	}
	joinedID := runDockerSleeper(t, w, "joined", "--network", "container:donor")
	if got, want := containerLinks(t, w, "joined"), containerLinks(t, w, "donor"); !slices.Equal(got, want) {
		t.Errorf("links seen by the joined container = %v, want the donor's %v", got, want)
	}
	if got, want := dockerInspect(t, w, "{{.HostConfig.NetworkMode}}", "joined"), "container:"+donorID; got != want {
		t.Errorf("HostConfig.NetworkMode = %q, want %q (the donor by ID, as moby records it)", got, want)
	}
	if got := dockerInspect(t, w, "{{len .NetworkSettings.Networks}} {{.NetworkSettings.SandboxKey}}|", "joined"); got != "0 |" {
		t.Errorf("joined container's networks and sandbox key: %q, want none of either", got)
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if got, want := mustDocker(t, w, "exec", "joined", "cat", "/etc/"+f), mustDocker(t, w, "exec", "donor", "cat", "/etc/"+f); got != want {
			t.Errorf("/etc/%s of the joined container:\n%s\nwant the donor's:\n%s", f, got, want)
		}
	}
	wantLookup(t, w, "joined", "peer", netip.MustParseAddr(peerIP))

	// What would configure a namespace of its own is refused, in moby's words.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "connect", "bridge", "joined"}, "container sharing network namespace with another container or host cannot be connected to any other network"},
		{[]string{"run", "--network", "container:donor", "-p", "8080:80", testworld.BusyboxImage, "true"}, "conflicting options: port publishing and the container type network mode"},
		{[]string{"run", "--network", "container:donor", "--hostname", "h", testworld.BusyboxImage, "true"}, "conflicting options: hostname and the network mode"},
		{[]string{"run", "--network", "container:donor", "--dns", "192.0.2.53", testworld.BusyboxImage, "true"}, "conflicting options: dns and the network mode"},
		{[]string{"run", "--network", "container:donor", "--add-host", "a:192.0.2.1", testworld.BusyboxImage, "true"}, "conflicting options: custom host-to-IP mapping and the network mode"},
		{[]string{"run", "--rm", "--network", "container:nosuch", testworld.BusyboxImage, "true"}, "joining network namespace of container: No such container: nosuch"},
	} {
		if _, errOut, code := w.Docker(t, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, stderr %q; want a failure saying %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}

	// The joined container outlives the donor's networking, as in Docker;
	// it cannot start again while the donor is stopped.
	mustDocker(t, w, "stop", "joined", "donor")
	if _, errOut, code := w.Docker(t, "start", "joined"); code == 0 || !strings.Contains(errOut, "cannot join network namespace of a non running container: container donor is exited") {
		t.Errorf("docker start joined with the donor stopped: exit %d, stderr %q", code, errOut)
	}
	mustDocker(t, w, "start", "donor")
	mustDocker(t, w, "start", "joined")
	if got, want := containerLinks(t, w, "joined"), containerLinks(t, w, "donor"); !slices.Equal(got, want) {
		t.Errorf("after both restarted, links seen by the joined container = %v, want the donor's %v", got, want)
	}

	// A daemon killed and started again re-adopts it, and can stop it.
	d.Kill()
	w.Start(t)
	if got := dockerInspect(t, w, "{{.State.Running}} {{.HostConfig.NetworkMode}}", "joined"); got != "true container:"+donorID {
		t.Errorf("joined container after a daemon restart: %q, want it running with its mode", got)
	}
	mustDocker(t, w, "stop", "joined")
	mustDocker(t, w, "rm", "-f", joinedID, "donor", "peer")
}

// TestDockerCLIRename: docker rename of a running container on a user
// network: the new name resolves from its neighbours at once and the old
// one no longer does; network inspect, ps and the errors are Docker's.
func TestDockerCLIRename(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "web")
	runDockerSleeper(t, w, "old", "--network", "web")
	runDockerSleeper(t, w, "client", "--network", "web")
	runDockerSleeper(t, w, "other")
	ip := netip.MustParseAddr(dockerInspect(t, w, "{{.NetworkSettings.Networks.web.IPAddress}}", "old"))
	wantLookup(t, w, "client", "old", ip)

	mustDocker(t, w, "rename", "old", "new")
	wantLookup(t, w, "client", "new", ip)
	// (The server's own line, "Address: 127.0.0.11:53", does not match.)
	if out, _, _ := w.Docker(t, "exec", "client", "nslookup", "-type=a", "-timeout=2", "old"); nslookupAddr.MatchString(out) {
		t.Errorf("the old name still resolves after the rename:\n%s", out)
	}
	if got := mustDocker(t, w, "network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", "web"); !strings.Contains(got, "new ") || strings.Contains(got, "old ") {
		t.Errorf("network inspect web names %q, want the new name", got)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "ps", "--filter", "name=new", "--format", "{{.Names}}")); got != "new" {
		t.Errorf("docker ps names %q, want new", got)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rename", "new", "new"}, "Renaming a container with the same name as its current name"},
		{[]string{"rename", "new", "other"}, `Conflict. The container name "/other" is already in use by container`},
		{[]string{"rename", "new", "bad/name"}, "Error when allocating new name: Invalid container name (/bad/name)"},
		{[]string{"rename", "nosuch", "x"}, "No such container: nosuch"},
	} {
		if _, errOut, code := w.Docker(t, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, stderr %q; want a failure saying %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}

	// A stopped container is renamed too, and starts under its new name.
	mustDocker(t, w, "stop", "new")
	mustDocker(t, w, "rename", "new", "newer")
	mustDocker(t, w, "start", "newer")
	wantLookup(t, w, "client", "newer", netip.MustParseAddr(dockerInspect(t, w, "{{.NetworkSettings.Networks.web.IPAddress}}", "newer")))
}

// TestDockerCLINetworkMissingAtCreate: as with Docker, a container may be
// created for a network that does not exist yet; its start fails, in
// Docker's words, until the network is made, or, for a network removed
// since, until the container is disconnected from it. docker run with a
// mistyped network says so instead of trying to pull the image.
func TestDockerCLINetworkMissingAtCreate(t *testing.T) {
	w, _ := startWorld(t)
	_, errOut, code := w.Docker(t, "run", "--rm", "--network", "nosuchnet", testworld.BusyboxImage, "true")
	if code == 0 || !strings.Contains(errOut, "failed to set up container networking: network nosuchnet not found") || strings.Contains(errOut, "Unable to find image") {
		t.Errorf("docker run --network nosuchnet: exit %d, stderr %q; want the missing network named, no image pull", code, errOut)
	}
	if got := mustDocker(t, w, "ps", "-aq"); got != "" {
		t.Errorf("docker run --rm left containers behind: %q", got)
	}
	mustDocker(t, w, "create", "--name", "early", "--network", "later", testworld.BusyboxImage, "true")
	if _, errOut, code := w.Docker(t, "start", "early"); code == 0 || !strings.Contains(errOut, "network later not found") {
		t.Errorf("docker start before its network exists: exit %d, stderr %q", code, errOut)
	}
	mustDocker(t, w, "network", "create", "later")
	mustDocker(t, w, "start", "-a", "early")
	if got := dockerInspect(t, w, "{{.State.ExitCode}} {{.HostConfig.NetworkMode}}", "early"); got != "0 later" {
		t.Errorf("after the network was made: %q, want exit 0 on network later", got)
	}

	// A network removed under a stopped container: the container is taken
	// off it by name (moby's DisconnectFromNetwork), and starts again.
	mustDocker(t, w, "network", "create", "gone")
	mustDocker(t, w, "create", "--name", "orphan", "--network", "gone", testworld.BusyboxImage, "true")
	mustDocker(t, w, "network", "connect", "bridge", "orphan")
	mustDocker(t, w, "network", "rm", "gone")
	if _, errOut, code := w.Docker(t, "start", "orphan"); code == 0 || !strings.Contains(errOut, "network gone not found") {
		t.Errorf("docker start with its network removed: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "network", "disconnect", "bridge2", "orphan"); code == 0 || !strings.Contains(errOut, "is not connected to the network bridge2") {
		t.Errorf("disconnect from a network it was never on: exit %d, stderr %q", code, errOut)
	}
	mustDocker(t, w, "network", "disconnect", "gone", "orphan")
	if got := dockerInspect(t, w, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "orphan"); got != "bridge" {
		t.Errorf("networks after the disconnect: %q, want bridge alone", got)
	}
	mustDocker(t, w, "start", "-a", "orphan")
	if got := dockerInspect(t, w, "{{.State.ExitCode}}", "orphan"); got != "0" {
		t.Errorf("after the disconnect the container ran with exit %q, want 0", got)
	}
}

// TestDockerCLIRunOptions: --sysctl, --read-only, --cap-add and --cap-drop
// are applied, as the kernel shows from inside the container; options
// berth does not apply are refused by name rather than ignored.
func TestDockerCLIRunOptions(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--sysctl", "net.ipv4.tcp_keepalive_time=100", bb, "cat", "/proc/sys/net/ipv4/tcp_keepalive_time")); got != "100" {
		t.Errorf("--sysctl net.ipv4.tcp_keepalive_time=100: the container reads %q", got)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--read-only", bb, "touch", "/x"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("touch /x with --read-only: exit %d, stderr %q; want a read-only file system", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--read-only", bb, "sh", "-c", "echo x >> /etc/hosts"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("writing /etc/hosts with --read-only: exit %d, stderr %q", code, errOut)
	}
	mustDocker(t, w, "run", "--rm", bb, "touch", "/x") // writable without it
	capEff := func(args ...string) string {
		t.Helper()
		out := mustDocker(t, w, append(append([]string{"run", "--rm"}, args...), bb, "grep", "CapEff", "/proc/self/status")...)
		return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "CapEff:"))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "00000000a80425fb"}, // Docker's default set
		{[]string{"--cap-drop", "ALL"}, "0000000000000000"},
		{[]string{"--cap-drop", "ALL", "--cap-add", "NET_ADMIN"}, "0000000000001000"},
		{[]string{"--cap-drop", "net_raw"}, "00000000a80405fb"},
	} {
		if got := capEff(tc.args...); got != tc.want {
			t.Errorf("CapEff with %v = %s, want %s", tc.args, got, tc.want)
		}
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", bb, "ip", "addr", "add", "10.9.9.9/32", "dev", "lo"); code == 0 {
		t.Errorf("ip addr add without NET_ADMIN succeeded: %s", errOut)
	}
	mustDocker(t, w, "run", "--rm", "--cap-add", "NET_ADMIN", bb, "ip", "addr", "add", "10.9.9.9/32", "dev", "lo")
	// An exec gets the container's set.
	runDockerSleeper(t, w, "capped", "--cap-drop", "ALL")
	if out := mustDocker(t, w, "exec", "capped", "grep", "CapEff", "/proc/self/status"); !strings.Contains(out, "0000000000000000") {
		t.Errorf("exec in a --cap-drop ALL container: %s", out)
	}

	// --userns host names what berth does anyway (no remapping), as
	// moby takes it; the docker CLI sends no other value.
	mustDocker(t, w, "run", "--rm", "--userns", "host", bb, "true")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--volumes-from", "other"}, "No such container: other"},
		{[]string{"--device-read-bps", "/dev/null:1mb"}, "--device-read-bps (HostConfig.BlkioDeviceReadBps) is not supported by berth"},
		{[]string{"--cgroup-parent", "elsewhere"}, `--cgroup-parent "elsewhere": berth takes an absolute cgroup path, such as /mygroup`},
		{[]string{"--link", "ghost:g"}, "could not get container for ghost: No such container: ghost"},
		{[]string{"--cap-add", "FLY"}, `unknown capability: "CAP_FLY"`},
		{[]string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, `sysctl "net.ipv4.ip_forward" not allowed in host network namespace`},
	} {
		args := append(append([]string{"run", "--rm"}, c.args...), bb, "true")
		if _, errOut, code := w.Docker(t, args...); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, stderr %q; want exit 125 saying %q", strings.Join(args, " "), code, errOut, c.want)
		}
	}
}

// TestDockerCLIErrorWording: errors that scripts and tools match on say
// what Docker's say.
func TestDockerCLIErrorWording(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "10.50.0.0/24", "used")
	id := runDockerSleeper(t, w, "busy", "--network", "used")
	exited := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--name", "done", testworld.BusyboxImage, "true"))
	mustDocker(t, w, "wait", "done")
	mustDocker(t, w, "create", "--name", "joiner", "--network", "container:done", testworld.BusyboxImage, "true")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "rm", "used"}, `error while removing network: network used has active endpoints (name:"busy" id:`},
		{[]string{"network", "create", "--subnet", "10.50.0.0/25", "other"}, "invalid pool request: Pool overlaps with other one on this address space"},
		{[]string{"network", "connect", "--alias", "x", "bridge", "busy"}, "invalid endpoint settings:\nnetwork-scoped alias is supported only for containers in user defined networks"},
		{[]string{"kill", "done"}, "Error response from daemon: cannot kill container: done: container " + exited + " is not running\n"},
		{[]string{"restart", "joiner"}, "Cannot restart container joiner: cannot join network namespace of a non running container: container done is exited"},
		// moby's ForceEndpointDelete, for a name that is no container
		{[]string{"network", "disconnect", "-f", "used", "nosuch"}, "Error response from daemon: endpoint nosuch not found"},
		{[]string{"network", "disconnect", "used", "nosuch"}, "Error response from daemon: No such container: nosuch"},
	} {
		_, errOut, code := w.Docker(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "cannot kill container") > 1 {
			t.Errorf("docker %s: exit %d, stderr %q; want a failure saying %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	// Accepted, with moby's warning.
	if _, errOut, code := w.Docker(t, "run", "--rm", "--network", "host", "-p", "9000:9000", testworld.BusyboxImage, "true"); code != 0 || !strings.Contains(errOut, "WARNING: Published ports are discarded when using host network mode") {
		t.Errorf("docker run --network host -p 9000:9000: exit %d, stderr %q; want moby's warning", code, errOut)
	}
	mustDocker(t, w, "rm", "-f", id)
}

// TestDockerCLIWorkdirNotADirectory: a working directory that is a file
// in the image (or in the init layer, as /etc/hosts) fails the create in
// moby's words, leaving no container behind; one that became a file after
// the create fails the start in the same words. A missing one is made.
func TestDockerCLIWorkdirNotADirectory(t *testing.T) {
	w, _ := startWorld(t)
	const moby = "Cannot mkdir: %s is not a directory"
	for _, c := range []struct {
		cmd, dir string
		code     int // the docker CLI's for a daemon's error
	}{{"run", "/etc/passwd", 125}, {"create", "/etc/hosts", 1}} {
		_, errOut, code := w.Docker(t, c.cmd, "--name", "wd", "-w", c.dir, testworld.BusyboxImage, "pwd")
		if want := "Error response from daemon: " + fmt.Sprintf(moby, c.dir); code != c.code || !strings.Contains(errOut, want) {
			t.Errorf("docker %s -w %s: exit %d, stderr %q; want exit %d saying %q", c.cmd, c.dir, code, errOut, c.code, want)
		}
		if out := mustDocker(t, w, "ps", "-aq", "--filter", "name=^wd$"); strings.TrimSpace(out) != "" {
			t.Errorf("docker %s -w %s left a container: %s", c.cmd, c.dir, out)
			mustDocker(t, w, "rm", "-f", "wd")
		}
	}
	if out := mustDocker(t, w, "run", "--rm", "-w", "/new/dir", testworld.BusyboxImage, "pwd"); out != "/new/dir\n" {
		t.Errorf("docker run -w /new/dir: pwd %q", out)
	}
	mustDocker(t, w, "create", "--name", "later", "-w", "/wd", testworld.BusyboxImage, "pwd")
	file := filepath.Join(w.Dir, "wd")
	if err := os.WriteFile(file, []byte("a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, w, "cp", file, "later:/wd")
	if _, errOut, code := w.Docker(t, "start", "later"); code == 0 || !strings.Contains(errOut, "Error response from daemon: "+fmt.Sprintf(moby, "/wd")+"\n") {
		t.Errorf("docker start of a container whose workdir became a file: exit %d, stderr %q; want moby's words bare", code, errOut)
	}
	// No task ran: moby's exitUnknown, not a task's 126/127.
	if got := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", "{{.State.ExitCode}}", "later")); got != "128" {
		t.Errorf("exit code after the refused start = %s, want 128", got)
	}
	// Through a symlink the create does not decide (the init layer may
	// hide what the image has): a link to the init layer's /.dockerenv
	// is refused at start; a link to a directory works.
	mustDocker(t, w, "run", "--name", "linker", testworld.BusyboxImage, "sh", "-c", "ln -s /.dockerenv /envlink && ln -s /tmp /dirlink")
	mustDocker(t, w, "commit", "linker", "links")
	mustDocker(t, w, "create", "--name", "envlinked", "-w", "/envlink", "links", "pwd")
	if _, errOut, code := w.Docker(t, "start", "envlinked"); code == 0 || !strings.Contains(errOut, fmt.Sprintf(moby, "/envlink")) {
		t.Errorf("docker start -w /envlink (a link to a file of the init layer): exit %d, stderr %q", code, errOut)
	}
	if out := mustDocker(t, w, "run", "--rm", "-w", "/dirlink", "links", "pwd"); out != "/tmp\n" {
		t.Errorf("docker run -w /dirlink (a link to /tmp): pwd %q", out)
	}
}

// TestDomainname: --domainname is the container's NIS domain name (its
// own UTS namespace's, as moby sets it), inspect shows it, and its
// /etc/hosts line names the FQDN, then the bare hostname, as moby's
// makeHostsRecs writes it.
func TestDomainname(t *testing.T) {
	w, _ := startWorld(t)
	out := mustDocker(t, w, "run", "--rm", "--hostname", "h1", "--domainname", "example.org", testworld.BusyboxImage,
		"sh", "-c", "cat /proc/sys/kernel/domainname; hostname; grep -c '\th1.example.org h1$' /etc/hosts")
	if out != "example.org\nh1\n1\n" {
		t.Errorf("domainname, hostname, /etc/hosts lines = %q, want example.org, h1, 1", out)
	}
	mustDocker(t, w, "create", "--name", "d1", "--domainname", "example.org", testworld.BusyboxImage, "true")
	if got := strings.TrimSpace(mustDocker(t, w, "inspect", "--format", "{{.Config.Domainname}}", "d1")); got != "example.org" {
		t.Errorf("inspect Config.Domainname = %q", got)
	}
}

// TestInit: --init runs the command under an init process, as moby's
// docker-init (here Debian's tini-static, bound at /sbin/docker-init):
// PID 1 is the init, the command's exit code is the container's, and
// inspect shows HostConfig.Init.
func TestInit(t *testing.T) {
	w, _ := startWorld(t)
	out, errOut, code := w.Docker(t, "run", "--name", "i1", "--init", testworld.BusyboxImage, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 3")
	if code != 3 || out != "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '; exit 3 " {
		t.Errorf("run --init: exit %d, PID 1 %q (stderr %q); want exit 3 and docker-init as PID 1", code, out, errOut)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "inspect", "--format", "{{.HostConfig.Init}}", "i1")); got != "true" {
		t.Errorf("inspect HostConfig.Init = %q, want true", got)
	}
}

// TestBerthExecInteractiveWithoutTTY: `berth exec -i` without -t, typed
// into a terminal (script(1)), leaves the terminal's line discipline on:
// the typed line arrives with its newline and the end of input (^D)
// ends the command, as docker exec -i. The terminal went raw, ^D reached
// cat as a byte, and the exec never ended.
func TestBerthExecInteractiveWithoutTTY(t *testing.T) {
	w, _ := startWorld(t)
	runSleeper(t, w, "typed")
	cmd := exec.Command("timeout", "20", "script", "-qec", testworld.Binary(t)+" exec -i typed cat", "/dev/null")
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+w.Socket)
	cmd.Stdin = strings.NewReader("hello\n") // then script(1) types ^D
	out, err := cmd.Output()
	t.Logf("script -qec 'berth exec -i typed cat' <<< hello\n%q (err %v)", out, err)
	if err != nil || strings.Count(string(out), "hello\r\n") != 2 {
		t.Errorf("berth exec -i under a terminal: %v, printed %q; want the echoed line and cat's, and an end", err, out)
	}
}

// TestBerthDetachKeys: ctrl-p ctrl-q typed into `berth run -it` ends the
// session and leaves the container running (exit 0), as docker's CLI
// does; into `berth exec -it` it ends the exec session with "read escape
// sequence" (exit 1); --detach-keys sets other keys. Both bytes went to
// the shell, and nothing detached.
func TestBerthDetachKeys(t *testing.T) {
	w, _ := startWorld(t)
	typed := func(t *testing.T, cmdline, keys string) (string, error) {
		t.Helper()
		// The keys are typed once the shell's prompt is out: the session
		// is up and the terminal raw (before, its line discipline would
		// take ctrl-q). Standard input stays open until the command ends
		// (at its end script(1) types an end-of-file).
		cmd := exec.Command("timeout", "30", "script", "-qec", testworld.Binary(t)+" "+cmdline, "/dev/null")
		cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+w.Socket)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		outPipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var out []byte
		buf := make([]byte, 4096)
		typedKeys := false
		for {
			n, rerr := outPipe.Read(buf)
			out = append(out, buf[:n]...)
			if !typedKeys && bytes.Contains(out, []byte("/ # ")) {
				typedKeys = true
				if _, err := in.Write([]byte(keys)); err != nil {
					t.Fatal(err)
				}
			}
			if rerr != nil {
				break
			}
		}
		err = cmd.Wait()
		t.Logf("script -qec %q\n%q (err %v)", cmdline, out, err)
		return string(out), err
	}
	if _, err := typed(t, "run -it --name away "+testworld.BusyboxImage+" sh", "\x10\x11"); err != nil {
		t.Errorf("berth run -it, then ctrl-p ctrl-q: %v, want exit 0", err)
	}
	if got := strings.TrimSpace(w.MustBerth(t, "inspect", "-f", "{{.State.Running}}", "away")); got != "true" {
		t.Errorf("after detaching, the container's Running = %s", got)
	}
	out, err := typed(t, "exec -it --detach-keys ctrl-x,x away sh", "\x18x")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "read escape sequence") {
		t.Errorf("berth exec -it --detach-keys ctrl-x,x, then those keys: %v, %q; want exit 1 and read escape sequence", err, out)
	}
	if got := strings.TrimSpace(w.MustBerth(t, "inspect", "-f", "{{.State.Running}}", "away")); got != "true" {
		t.Errorf("after detaching from the exec, the container's Running = %s", got)
	}
}

// TestBerthRunSignalProxy: a hang-up of `berth run` (its terminal or ssh
// session closed) reaches the container, as docker run's sig-proxy
// forwards every signal (berth forwarded SIGINT and SIGTERM only, and
// died of the hang-up, leaving the container); --sig-proxy=false keeps
// the CLI's signals its own (SIGTERM then ends it, not the container).
func TestBerthRunSignalProxy(t *testing.T) {
	w, _ := startWorld(t)
	run := func(name string, sig syscall.Signal, extra ...string) (*exec.Cmd, *nstest.SyncBuffer) {
		args := append([]string{"run", "--name", name}, extra...)
		args = append(args, testworld.BusyboxImage, "sh", "-c", `trap "echo got; exit 9" HUP; echo ready; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`)
		cmd := exec.Command(testworld.Binary(t), args...)
		cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+w.Socket)
		out := &nstest.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !retried(func() bool { return strings.Contains(out.String(), "ready") }) {
			t.Fatalf("%s did not start: %q", name, out.String())
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	cmd, out := run("proxied", syscall.SIGHUP)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 9 || !strings.Contains(out.String(), "got") {
		t.Errorf("berth run, then SIGHUP: %v, %q; want the container's trap (got, exit 9)", err, out)
	}
	// SIGTERM, which ends a Go program that does not catch it (a run
	// under nohup, as CI's, ignores SIGHUP from the start).
	cmd, _ = run("own", syscall.SIGTERM, "--sig-proxy=false")
	if err := cmd.Wait(); err == nil {
		t.Error("--sig-proxy=false, then SIGTERM: the CLI ended cleanly, want it killed by the signal")
	}
	if got := dockerInspect(t, w, "{{.State.Running}}", "own"); got != "true" {
		t.Errorf("--sig-proxy=false, then SIGTERM: the container's Running = %s, want it untouched", got)
	}
}
