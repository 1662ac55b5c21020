package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// QA round 11's findings, through the docker CLI.

// TestQA11CreateChecks: a stop signal that does not parse is refused at
// create (it once made a container docker stop could not stop), and a
// missing image is a 404 named with its tag before the command is looked
// at, so the CLI says it cannot find the image.
func TestQA11CreateChecks(t *testing.T) {
	w, _ := startWorld(t)
	for _, sig := range []string{"BOGUS", "0"} {
		_, errOut, code := w.Docker(t, "run", "-d", "--name", "ss"+sig, "--stop-signal", sig, testworld.BusyboxImage, "sleep", "600")
		if code != 125 || !strings.Contains(errOut, "Error response from daemon: invalid signal: "+sig) {
			t.Errorf("run --stop-signal %s: exit %d, %q; want 125 and moby's invalid signal", sig, code, errOut)
		}
		if out, _, _ := w.Docker(t, "ps", "-aq", "--filter", "name=ss"+sig); out != "" {
			t.Errorf("run --stop-signal %s left a container: %q", sig, out)
		}
	}
	// The signal is checked before the container, as moby's ContainerKill.
	if _, errOut, code := w.Docker(t, "kill", "-s", "0", "nosuch"); code == 0 || !strings.Contains(errOut, "invalid signal: 0") {
		t.Errorf("kill -s 0 nosuch: exit %d, %q", code, errOut)
	}
	// A stop refused for its signal leaves the container running and not
	// stopped by the user: unless-stopped still restarts it.
	mustDocker(t, w, "run", "-d", "--name", "us", "--restart", "unless-stopped", testworld.BusyboxImage, "sleep", "600")
	if _, errOut, code := w.Docker(t, "stop", "-s", "BOGUS", "us"); code == 0 || !strings.Contains(errOut, "invalid signal: BOGUS") {
		t.Errorf("stop -s BOGUS: exit %d, %q", code, errOut)
	}
	// Its process dying now is a failure its policy restarts: the refused
	// stop did not mark it as stopping.
	if got, ok := killedIsRestarted(t, w, "us"); !ok {
		t.Errorf("unless-stopped container killed after a refused stop: %q, want restarted", got)
	}
	_, errOut, code := w.Docker(t, "run", "nosuchimage")
	if code != 125 || !strings.Contains(errOut, "Unable to find image 'nosuchimage:latest' locally") || strings.Contains(errOut, "no command specified") {
		t.Errorf("run nosuchimage: exit %d, %q; want the CLI's Unable to find image", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "image", "inspect", "nosuch"); code == 0 || !strings.Contains(errOut, "No such image: nosuch:latest") {
		t.Errorf("image inspect nosuch: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--entrypoint", "", testworld.BusyboxImage); code != 125 || !strings.Contains(errOut, "no command specified") {
		t.Errorf("run with no command: exit %d, %q", code, errOut)
	}
}

// TestQA11EndpointSettingsWords: static addresses and aliases are refused
// in moby's words (validateEndpointSettings), every problem under
// "invalid endpoint settings:", after "invalid config for network X:" at
// create.
func TestQA11EndpointSettingsWords(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "10.61.0.0/24", "net1")
	mustDocker(t, w, "network", "create", "net2")
	mustDocker(t, w, "run", "-d", "--name", "a2", "--network", "net2", testworld.BusyboxImage, "sleep", "600")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "connect", "--ip", "172.17.0.99", "bridge", "a2"},
			"Error response from daemon: invalid endpoint settings:\nuser specified IP address is supported on user defined networks only\n"},
		{[]string{"network", "connect", "--ip", "10.61.1.5", "net1", "a2"},
			"Error response from daemon: invalid endpoint settings:\nno configured subnet contains IP address 10.61.1.5\n"},
		{[]string{"run", "--rm", "--network", "net1", "--ip", "10.62.0.5", testworld.BusyboxImage, "true"},
			"invalid config for network net1: invalid endpoint settings:\nno configured subnet contains IP address 10.62.0.5\n"},
		{[]string{"run", "--rm", "--network", "net2", "--ip", "10.62.0.5", testworld.BusyboxImage, "true"},
			"invalid config for network net2: invalid endpoint settings:\nno configured subnet contains IP address 10.62.0.5\n"},
	} {
		_, errOut, code := w.Docker(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	// Docker 29.1 (moby 84a251d039): an address in a subnet the daemon
	// chose from its pools is taken, at run and at connect (Compose's
	// ipv4_address on a network without an ipam block).
	subnet := netip.MustParsePrefix(strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "net2")))
	ip := subnet.Addr().Next().Next().Next().Next().Next() // .5
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "--network", "net2", "--ip", ip.String(), testworld.BusyboxImage, "hostname", "-i")); got != ip.String() {
		t.Errorf("run --ip %s on net2 (subnet %s from the pools): hostname -i = %q", ip, subnet, got)
	}
	mustDocker(t, w, "create", "--name", "c2", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "network", "connect", "--ip", ip.String(), "net2", "c2")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "net2").IPAMConfig.IPv4Address}}`, "c2"); got != ip.String() {
		t.Errorf("connect --ip %s to net2: IPAMConfig.IPv4Address %q", ip, got)
	}
}

// TestQA11SmallMatches: ps filters a network by a prefix of its ID (the
// short ID network ls prints), docker import's comment is moby's, and
// info says containers outlive the daemon (they do: live restore).
func TestQA11SmallMatches(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "pfx")
	mustDocker(t, w, "run", "-d", "--name", "on", "--network", "pfx", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "run", "-d", "--name", "off", testworld.BusyboxImage, "sleep", "600")
	id := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{.Id}}", "pfx"))
	for _, ref := range []string{"pfx", id, id[:12]} {
		if out := mustDocker(t, w, "ps", "--format", "{{.Names}}", "--filter", "network="+ref); out != "on\n" {
			t.Errorf("ps --filter network=%s: %q, want on", ref, out)
		}
	}
	if out := mustDocker(t, w, "image", "inspect", "-f", "{{.Comment}}", testworld.BusyboxImage); out != "Imported from -\n" {
		t.Errorf("comment of an imported image: %q, want moby's Imported from -", out)
	}
	if out := mustDocker(t, w, "info", "-f", "{{.LiveRestoreEnabled}}"); out != "true\n" {
		t.Errorf("info LiveRestoreEnabled: %q, want true", out)
	}
}

// TestQA11StartErrors: an unknown user is the spec's error, bare, as
// moby's createSpec returns it; an exec that cannot start is worded as
// Docker words it.
func TestQA11StartErrors(t *testing.T) {
	w, _ := startWorld(t)
	_, errOut, code := w.Docker(t, "run", "--name", "nouser", "-u", "nosuchuser", testworld.BusyboxImage, "true")
	if code != 125 || !strings.Contains(errOut, "Error response from daemon: unable to find user nosuchuser: no matching entries in passwd file") ||
		strings.Contains(errOut, "failed to create task") {
		t.Errorf("run -u nosuchuser: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "run", "-d", "--name", "up", testworld.BusyboxImage, "sleep", "600")
	// An exec runc cannot start: containerd's words, which Docker passes
	// on, on stdout (moby's postContainerExecStart; QA round 27).
	out, errOut, code := w.Docker(t, "exec", "up", "nosuchcmd")
	want := `OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown`
	if code != 127 || !strings.Contains(out, want) || strings.Contains(out+errOut, "exit status") {
		t.Errorf("exec nosuchcmd: exit %d, %q %q; want 127 and %q", code, out, errOut, want)
	}
}

// TestDockerTop: docker top lists a running container's processes with
// the host's ps, moby's way (ps -ef by default, other ps arguments passed
// on, rows matched by PID), and refuses a stopped container.
func TestDockerTop(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "busy", testworld.BusyboxImage, "sh", "-c", "sleep 601 & sleep 602")
	pid := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", "{{.State.Pid}}", "busy"))
	var out string
	if !retried(func() bool {
		out = mustDocker(t, w, "top", "busy")
		return strings.Contains(out, "sleep 601") && strings.Contains(out, "sleep 602")
	}) {
		t.Fatalf("docker top busy:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "UID") || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[0], "CMD") || len(lines) != 3 {
		t.Errorf("docker top busy: want ps -ef's titles and the container's 2 processes (sh execs the last sleep):\n%s", out)
	}
	if !strings.Contains(out, " "+pid+" ") || strings.Contains(out, "berth daemon") {
		t.Errorf("docker top busy: want its init (pid %s) and nothing of the host's:\n%s", pid, out)
	}
	if out := mustDocker(t, w, "top", "busy", "-o", "pid,comm"); !strings.HasPrefix(out, "PID") || strings.Count(out, "sleep") != 2 {
		t.Errorf("docker top busy -o pid,comm:\n%s", out)
	}
	if _, errOut, code := w.Docker(t, "top", "busy", "-o", "user=PID"); code == 0 || !strings.Contains(errOut, `specifying "user=PID" is not allowed`) {
		t.Errorf("top with a renamed PID column: exit %d, %q", code, errOut)
	}
	id := strings.TrimSpace(mustDocker(t, w, "create", "--name", "idle", testworld.BusyboxImage, "true"))
	if _, errOut, code := w.Docker(t, "top", "idle"); code == 0 || !strings.Contains(errOut, "container "+id+" is not running") {
		t.Errorf("top of a created container: exit %d, %q", code, errOut)
	}
}

// TestDockerStats: docker stats shows a running container's CPU, memory,
// network and process figures from its cgroup and namespace: a busy loop
// shows CPU, a ping shows network bytes, a stopped container's are empty.
func TestDockerStats(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "spin", testworld.BusyboxImage, "sh", "-c", "while :; do :; done")
	mustDocker(t, w, "run", "-d", "--name", "idle", testworld.BusyboxImage, "sh", "-c", "ping -c 3 172.17.0.1; sleep 600")
	mustDocker(t, w, "create", "--name", "never", testworld.BusyboxImage, "true")
	var out string
	if !retried(func() bool {
		out = mustDocker(t, w, "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.PIDs}}", "spin", "idle")
		return strings.Contains(out, "idle|") && !strings.Contains(out, "|0B / 0B|")
	}) {
		t.Fatalf("docker stats --no-stream spin idle:\n%s", out)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		rows[f[0]] = f
	}
	spin, idle := rows["spin"], rows["idle"]
	if len(spin) != 5 || len(idle) != 5 {
		t.Fatalf("docker stats rows:\n%s", out)
	}
	var cpu float64
	if _, err := fmt.Sscanf(spin[1], "%f%%", &cpu); err != nil || cpu < 20 {
		t.Errorf("busy loop's CPU %q, want well above 0%%", spin[1])
	}
	if !strings.Contains(spin[2], "iB / ") || spin[4] != "1" || idle[4] != "2" {
		t.Errorf("memory %q, PIDs %q and %q: want a usage over a limit, 1 and 2 processes", spin[2], spin[4], idle[4])
	}
	if !strings.Contains(idle[3], "B / ") || strings.HasPrefix(idle[3], "0B") {
		t.Errorf("network of a container that pinged: %q, want bytes received", idle[3])
	}
	out = mustDocker(t, w, "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.PIDs}}", "never")
	if strings.TrimSpace(out) != "never|0.00%|0" {
		t.Errorf("stats of a container never started: %q, want zeros", out)
	}
}

// TestDockerUpdateRestart: docker update --restart changes the policy that
// governs the container's next exit; an auto-removed container cannot get
// one, and the limits berth does not apply are refused.
func TestDockerUpdateRestart(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "svc", testworld.BusyboxImage, "sleep", "600")
	if out := mustDocker(t, w, "update", "--restart", "always", "svc"); out != "svc\n" {
		t.Errorf("docker update: %q", out)
	}
	if out := mustDocker(t, w, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "svc"); out != "always\n" {
		t.Errorf("policy after update: %q", out)
	}
	if got, ok := killedIsRestarted(t, w, "svc"); !ok {
		t.Errorf("a container updated to --restart always, killed: %q, want restarted", got)
	}
	id := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--rm", "--name", "tmp", testworld.BusyboxImage, "sleep", "600"))
	if _, errOut, code := w.Docker(t, "update", "--restart", "always", "tmp"); code == 0 ||
		!strings.Contains(errOut, "Cannot update container "+id+": Restart policy cannot be updated because AutoRemove is enabled for the container") {
		t.Errorf("update --restart of a --rm container: exit %d, %q", code, errOut)
	}
	// Resource limits are applied (resources_test.go); what berth does
	// not apply is refused by name.
	if _, errOut, code := w.Docker(t, "update", "--cpu-rt-runtime", "1000", "svc"); code == 0 || !strings.Contains(errOut, "--cpu-rt-runtime (HostConfig.CPURealtimeRuntime) is not supported by berth") {
		t.Errorf("update --cpu-rt-runtime: exit %d, %q", code, errOut)
	}
}

// TestDockerPause: docker pause freezes a container (its output stops;
// it stays in docker ps as "(Paused)"), refuses exec, start and rm while
// paused, and docker unpause lets it go on; stop and rm -f end a paused
// container, as moby's kill thaws it after the signal.
func TestDockerPause(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "tick", testworld.BusyboxImage, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done")
	id := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", "{{.Id}}", "tick"))
	mustDocker(t, w, "pause", "tick")
	if out := mustDocker(t, w, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "tick"); out != "paused true true\n" {
		t.Errorf("inspect of a paused container: %q", out)
	}
	if out := mustDocker(t, w, "ps", "--format", "{{.Names}} {{.Status}}", "--filter", "status=paused"); !strings.HasPrefix(out, "tick Up ") || !strings.HasSuffix(out, "(Paused)\n") {
		t.Errorf("ps of a paused container: %q", out)
	}
	before, _, _ := w.Docker(t, "logs", "tick")
	time.Sleep(500 * time.Millisecond)
	if after, _, _ := w.Docker(t, "logs", "tick"); after != before {
		t.Errorf("a paused container went on printing: %d lines, then %d", strings.Count(before, "\n"), strings.Count(after, "\n"))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pause", "tick"}, "Container " + id + " is already paused"},
		{[]string{"exec", "tick", "true"}, "Container " + id + " is paused, unpause the container before exec"},
		{[]string{"start", "tick"}, "cannot start a paused container, try unpause instead"},
		{[]string{"rm", "tick"}, "container is paused and must be unpaused first"},
	} {
		if _, errOut, code := w.Docker(t, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	mustDocker(t, w, "unpause", "tick")
	if !retried(func() bool {
		after, _, _ := w.Docker(t, "logs", "tick")
		return strings.Count(after, "\n") > strings.Count(before, "\n")
	}) {
		t.Errorf("no output after docker unpause")
	}
	if _, errOut, code := w.Docker(t, "unpause", "tick"); code == 0 || !strings.Contains(errOut, "Container "+id+" is not paused") {
		t.Errorf("unpause of a running container: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "pause", "tick")
	mustDocker(t, w, "stop", "-t", "5", "tick")
	if out := mustDocker(t, w, "inspect", "-f", "{{.State.Status}}", "tick"); out != "exited\n" {
		t.Errorf("after stop of a paused container: %q", out)
	}
	mustDocker(t, w, "run", "-d", "--name", "frozen", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "pause", "frozen")
	mustDocker(t, w, "rm", "-f", "frozen")
	if out, _, _ := w.Docker(t, "ps", "-aq", "--filter", "name=frozen"); out != "" {
		t.Errorf("rm -f of a paused container left %q", out)
	}
}

// TestPublishedPortsIPv6: a port published on every address answers on
// IPv6 too, as Docker 28's userland proxy makes it: the daemon forwards
// [::]:PORT to the container's IPv4 address (TCP and UDP), from the
// bridge's gateway address as docker-proxy does; docker port and inspect
// show both bindings; a port bound to an IPv4 address has no IPv6 side;
// [::1] can be asked for on its own. The forwarding comes back with a
// restarted daemon and goes with the container.
func TestPublishedPortsIPv6(t *testing.T) {
	w := startPortWorld(t)
	w.runPeer(t, "web", "tcp:80,udp:53,tcp:82",
		"-p", "8080:80", "-p", "5353:53/udp", "-p", "127.0.0.1:8081:80", "-p", "[::1]:8082:82")
	if out := w.MustBerth(t, "port", "web", "80"); out != "0.0.0.0:8080\n127.0.0.1:8081\n[::]:8080\n" {
		t.Errorf("port web 80: %q", out)
	}
	out, _, _ := w.Docker(t, "port", "web")
	for _, line := range []string{"80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080", "53/udp -> [::]:5353", "82/tcp -> [::1]:8082"} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("docker port web: no %q in\n%s", line, out)
		}
	}
	gw := bridgeGateway.String()
	w.reach(t, "host", "tcp", "[::1]:8080", gw)
	w.reach(t, "host", "udp", "[::1]:5353", gw)
	w.reach(t, "host", "tcp", "[::1]:8082", gw)
	w.reach(t, "host", "tcp", "127.0.0.1:8080", gw)
	w.unreachable(t, "host", "tcp", "[::1]:8081")
	// A UDP reply comes from the address the client sent to: a
	// connected client from fd00::5 to [fd00::6]:5353 drops any other
	// (the route back to fd00::5 would pick fd00::5 as the source).
	for _, a := range []string{"fd00::5/128", "fd00::6/128"} {
		if _, errOut, code := w.InHost(t, "ip", "addr", "add", a, "dev", "lo", "nodad"); code != 0 {
			t.Fatalf("ip addr add %s: %s", a, errOut)
		}
	}
	if !retried(func() bool {
		_, _, code := w.InHost(t, w.peer, "-dial", "udp:[fd00::6]:5353", "-src", "fd00::5", "-timeout", "2s")
		return code == 0
	}) {
		t.Errorf("a connected UDP client from fd00::5 to [fd00::6]:5353 got no answer: the reply came from another address")
	}
	// A range whose first port is taken on IPv6 alone moves on to the
	// next port free on both sides.
	w.runPeer(t, "v6only", "tcp:80", "-p", "[::]:9400:80")
	w.runPeer(t, "ranged", "tcp:80", "-p", "9400-9402:80")
	if out := w.MustBerth(t, "port", "ranged", "80"); out != "0.0.0.0:9401\n[::]:9401\n" {
		t.Errorf("port ranged 80 with [::]:9400 taken: %q", out)
	}
	w.d.Kill()
	w.d = w.Start(t)
	w.reach(t, "host", "tcp", "[::1]:8080", gw)
	w.reach(t, "host", "udp", "[::1]:5353", gw)
	w.MustBerth(t, "rm", "-f", "web")
	w.unreachable(t, "host", "tcp", "[::1]:8080")
	w.runPeer(t, "again", "tcp:80", "-p", "8080:80")
	w.reach(t, "host", "tcp", "[::1]:8080", gw)
}

// TestQA12Signals: a signal number Linux has none for is taken as moby's
// ParseSignal takes it: --stop-signal 99 creates the container and docker
// stop, whose signal cannot be sent, kills it after 2 s; kill refuses it
// in ContainerKill's words; a stop signal name that does not parse is
// moby's 500 "cannot stop container". A command that is not there is
// worded as Docker passes runc's error on from containerd.
func TestQA12Signals(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "s99", "--stop-signal", "99", testworld.BusyboxImage, "sleep", "600")
	if _, errOut, code := w.Docker(t, "kill", "-s", "99", "s99"); code == 0 || !strings.Contains(errOut, "the linux daemon does not support signal 99") {
		t.Errorf("kill -s 99: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "stop", "-s", "BOGUS", "s99"); code == 0 || !strings.Contains(errOut, "Error response from daemon: cannot stop container: s99: invalid signal: BOGUS") {
		t.Errorf("stop -s BOGUS: exit %d, %q", code, errOut)
	}
	start := time.Now()
	if out := mustDocker(t, w, "stop", "-t", "30", "s99"); out != "s99\n" {
		t.Errorf("stop of a container whose stop signal is 99: %q", out)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("stop took %v: the 30 s timeout, not moby's 2 s after a signal that cannot be sent", took)
	}
	if out := mustDocker(t, w, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "s99"); out != "exited 137\n" {
		t.Errorf("after stop: %q, want killed", out)
	}
	_, errOut, code := w.Docker(t, "run", "--rm", testworld.BusyboxImage, "nosuchcmd")
	want := `failed to create task for container: failed to create shim task: OCI runtime create failed: `
	if code != 127 || !strings.Contains(errOut, want) || !strings.Contains(errOut, `exec: "nosuchcmd": executable file not found in $PATH: unknown`) {
		t.Errorf("run nosuchcmd: exit %d, %q", code, errOut)
	}
}

// TestContainerSizes: docker ps -s and inspect -s show what the container
// wrote (its overlay upper layer) and that plus its image, as moby's
// overlay2 counts them.
func TestContainerSizes(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "writer", testworld.BusyboxImage, "sh", "-c", "dd if=/dev/zero of=/big bs=1024 count=300 2>/dev/null; touch /done; sleep 600")
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "writer", "test", "-e", "/done")
		return code == 0
	}) {
		t.Fatal("the container never wrote its file")
	}
	out := strings.Fields(mustDocker(t, w, "inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "writer"))
	var rw, rootfs int64
	if len(out) != 2 {
		t.Fatalf("inspect -s: %q", out)
	}
	fmt.Sscan(out[0], &rw)
	fmt.Sscan(out[1], &rootfs)
	if rw < 300*1024 || rw > 400*1024 || rootfs <= rw+100*1024 {
		t.Errorf("inspect -s: SizeRw %d, SizeRootFs %d; want about 300 KiB written, and the image on top", rw, rootfs)
	}
	if ps := mustDocker(t, w, "ps", "-s", "--format", "{{.Size}}", "--filter", "name=writer"); !strings.Contains(ps, "kB (virtual ") {
		t.Errorf("ps -s: %q", ps)
	}
}

// TestSystemDF: docker system df counts berth's images (one in use),
// containers (one running, with what it wrote) and the volumes and build
// cache berth does not have.
func TestSystemDF(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "up", testworld.BusyboxImage, "sh", "-c", "dd if=/dev/zero of=/f bs=1024 count=200 2>/dev/null; sleep 600")
	mustDocker(t, w, "create", "--name", "idle", testworld.BusyboxImage, "true")
	out := mustDocker(t, w, "system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}")
	for _, want := range []string{"Images|1|1", "Containers|2|1", "Local Volumes|0|0", "Build Cache|0|0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("docker system df: no %q in\n%s", want, out)
		}
	}
	if v := mustDocker(t, w, "system", "df", "-v", "--format", "{{json .}}"); !strings.Contains(v, `"Names":"up"`) {
		t.Errorf("docker system df -v: %s", v)
	}
}

// TestPortsMoveWithTheGateway: a container taken off the network that
// carries its published ports and its default route keeps both on the
// network it still has, as libnetwork moves them (QA round 13).
func TestPortsMoveWithTheGateway(t *testing.T) {
	w := startPortWorld(t)
	w.MustBerth(t, "network", "create", "n1")
	w.runPeer(t, "u1", "tcp:80", "--network", "n1", "-p", "8095:80")
	w.MustBerth(t, "network", "connect", "bridge", "u1")
	w.MustBerth(t, "network", "disconnect", "n1", "u1")
	if out, _, _ := w.Docker(t, "port", "u1"); out != "80/tcp -> 0.0.0.0:8095\n80/tcp -> [::]:8095\n" {
		t.Errorf("docker port u1 after leaving n1: %q", out)
	}
	w.reach(t, "outside", "tcp", hostPort(8095), outsideAddr)
	w.reach(t, "host", "tcp", "[::1]:8095", bridgeGateway.String())
	// Its way out moved too: the default route through bridge's gateway.
	if out := w.MustBerth(t, "exec", "u1", "ip", "route", "show", "default"); !strings.HasPrefix(out, "default via "+bridgeGateway.String()+" ") {
		t.Errorf("default route after leaving n1: %q", out)
	}
}

// killedIsRestarted kills the init of container name from the host (not
// through the daemon, so that no stop is recorded) and reports whether
// its restart policy brought it back once; got is its restart count and
// status.
func killedIsRestarted(t *testing.T, w *testworld.World, name string) (got string, ok bool) {
	t.Helper()
	pid := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", "{{.State.Pid}}", name))
	if _, errOut, code := w.InHost(t, "kill", "-KILL", pid); code != 0 {
		t.Fatalf("kill %s: %s", pid, errOut)
	}
	ok = retried(func() bool {
		got, _, _ = w.Docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", name)
		return got == "1 running\n"
	})
	return got, ok
}

// TestDockerDiff: docker diff lists what a container changed against its
// image, as moby's: an added file with its changed parent, a changed file
// and a deleted one.
func TestDockerDiff(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "--name", "changer", testworld.BusyboxImage, "sh", "-c", "echo x > /tmp/new; echo y >> /etc/group; rm /bin/vi")
	out := mustDocker(t, w, "diff", "changer")
	for _, want := range []string{"C /tmp", "A /tmp/new", "C /etc", "C /etc/group", "C /bin", "D /bin/vi"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("docker diff: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "/etc/hosts") || strings.Contains(out, "/etc/resolv.conf") {
		t.Errorf("docker diff lists the files berth mounts:\n%s", out)
	}
	mustDocker(t, w, "create", "--name", "fresh", testworld.BusyboxImage, "true")
	if out := mustDocker(t, w, "diff", "fresh"); out != "" {
		t.Errorf("docker diff of a container never started: %q", out)
	}
}

// TestSubnetSizeFromThePools: `docker network create --subnet 0.0.0.0/26`
// (and ::/120) asks the default pools for a subnet of that size, as
// Docker 29 does: inspect shows the one chosen, and a container on it
// gets an address there and reaches the outside world.
func TestSubnetSizeFromThePools(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "--ipv6", "--subnet", "0.0.0.0/26", "--subnet", "::/120", "small")
	cfg := strings.Fields(mustDocker(t, w, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{end}}", "small"))
	if len(cfg) != 4 {
		t.Fatalf("small's IPAM config: %q, want two subnets with their gateways", cfg)
	}
	v4, v6 := netip.MustParsePrefix(cfg[0]), netip.MustParsePrefix(cfg[2])
	if v4.Bits() != 26 || v4.Addr().IsUnspecified() || !v4.Contains(netip.MustParseAddr(cfg[1])) ||
		v6.Bits() != 120 || v6.Addr().IsUnspecified() || !v6.Contains(netip.MustParseAddr(cfg[3])) {
		t.Errorf("small's IPAM config: %q, want a /26 and a /120 from the pools with gateways in them", cfg)
	}
	mustDocker(t, w, "run", "-d", "--name", "s1", "--network", "small", testworld.BusyboxImage, "sleep", "600")
	if a := networkIP(t, w, "s1", "small"); !v4.Contains(a) {
		t.Errorf("s1 on small got %v, outside %v", a, v4)
	}
	if got := fetchAnswer(t, w, "s1"); got == "" {
		t.Error("s1 on small did not reach the outside server")
	}
}
