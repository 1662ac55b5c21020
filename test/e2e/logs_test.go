package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// TestLogRotation: --log-opt max-size and max-file (Compose's logging:
// block) bound a container's log as json-file does: the live file
// <id>-json.log (inspect's LogPath) and at most max-file - 1 rotated ones
// (.1, .2), each rotated at the entry that finds it full, so none holds
// more than max-size and an entry; docker logs reads them as one stream,
// --tail across them, and a docker logs -f that runs through the
// rotations sees every line once, in order. inspect shows the options;
// other drivers and options berth would ignore are refused.
func TestLogRotation(t *testing.T) {
	w, _ := startWorld(t)
	// 12 bursts of 400 lines (~34 KB of entries each), a pause between
	// bursts: the log passes 20k several times.
	const bursts, perBurst = 12, 400
	script := fmt.Sprintf(`i=0; b=0; while [ $b -lt %d ]; do j=0; while [ $j -lt %d ]; do i=$((i+1)); echo "line $i ........................"; j=$((j+1)); done; b=$((b+1)); sleep 0.6; done`, bursts, perBurst)
	id := strings.TrimSpace(mustDocker(t, w, "create", "--name", "chatty", "--log-opt", "max-size=20k", "--log-opt", "max-file=3", testworld.BusyboxImage, "sh", "-c", script))
	if got := dockerInspect(t, w, "{{json .HostConfig.LogConfig}}", "chatty"); got != `{"Type":"json-file","Config":{"max-file":"3","max-size":"20k"}}` {
		t.Errorf("HostConfig.LogConfig = %s", got)
	}
	mustDocker(t, w, "start", "chatty")
	follow := make(chan string, 1)
	go func() { // from the first burst on, through the rotations
		out, _, _ := w.Docker(t, "logs", "-f", "chatty")
		follow <- out
	}()
	if code := strings.TrimSpace(mustDocker(t, w, "wait", "chatty")); code != "0" {
		t.Fatalf("chatty exited %s", code)
	}
	dir := w.HostPath(filepath.Join(w.DataRoot, "containers", id))
	live := filepath.Join(dir, id+"-json.log")
	if got := dockerInspect(t, w, "{{.LogPath}}", "chatty"); w.HostPath(got) != live {
		t.Errorf("LogPath = %q, want the container's %s", got, filepath.Base(live))
	}
	for _, name := range []string{live, live + ".1", live + ".2"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		// An entry of this output is about 100 bytes.
		if fi.Size() > 20_000+200 {
			t.Errorf("%s holds %d bytes: more than max-size 20k and an entry", filepath.Base(name), fi.Size())
		}
	}
	if _, err := os.Stat(live + ".3"); !os.IsNotExist(err) {
		t.Errorf("max-file 3 left %s.3 (%v)", filepath.Base(live), err)
	}

	all := lines(mustDocker(t, w, "logs", "chatty"))
	last := bursts * perBurst
	first := checkConsecutive(t, "docker logs", all, last)
	if first == 1 {
		t.Errorf("docker logs still has the first line: nothing was rotated away")
	}
	if tail := lines(mustDocker(t, w, "logs", "--tail", "3", "chatty")); len(tail) != 3 || lineNumber(tail[2]) != last || lineNumber(tail[0]) != last-2 {
		t.Errorf("docker logs --tail 3: %q", tail)
	}
	awaitFollow(t, follow, "docker logs -f through the rotations", last)

	for _, c := range []struct{ args, want string }{
		{"--log-driver syslog", `log driver "syslog" (--log-driver) is not supported by berth`},
		{"--log-opt compress=true --log-opt max-file=1 --log-opt max-size=1m", "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{"--log-opt max-size=0", "max-size must be a positive number"},
		{"--log-opt max-days=2", "unknown log opt 'max-days' for json-file log driver"},
	} {
		args := append(append([]string{"run", "--rm"}, strings.Fields(c.args)...), testworld.BusyboxImage, "true")
		if _, errOut, code := w.Docker(t, args...); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want exit 125 saying %q", strings.Join(args, " "), code, errOut, c.want)
		}
	}
}

// TestCompressedLogRotation: --log-opt compress=true keeps the rotated
// files gzipped, <id>-json.log.1.gz and .2.gz as Docker names them (each
// held max-size and an entry before), and docker logs, --tail and a
// docker logs -f that runs through the rotations read them as one
// stream; the local driver compresses by default.
func TestCompressedLogRotation(t *testing.T) {
	w, _ := startWorld(t)
	const bursts, perBurst = 8, 400
	script := fmt.Sprintf(`i=0; b=0; while [ $b -lt %d ]; do j=0; while [ $j -lt %d ]; do i=$((i+1)); echo "line $i ........................"; j=$((j+1)); done; b=$((b+1)); sleep 0.6; done`, bursts, perBurst)
	id := strings.TrimSpace(mustDocker(t, w, "create", "--name", "zipped", "--log-opt", "max-size=20k", "--log-opt", "max-file=3",
		"--log-opt", "compress=true", testworld.BusyboxImage, "sh", "-c", script))
	mustDocker(t, w, "start", "zipped")
	follow := make(chan string, 1)
	go func() {
		out, _, _ := w.Docker(t, "logs", "-f", "zipped")
		follow <- out
	}()
	if code := strings.TrimSpace(mustDocker(t, w, "wait", "zipped")); code != "0" {
		t.Fatalf("zipped exited %s", code)
	}
	live := w.HostPath(filepath.Join(w.DataRoot, "containers", id, id+"-json.log"))
	// The last compression may still be under way when the container has
	// exited: its log is closed once it ends.
	if !retried(func() bool { _, err := os.Stat(live + ".1"); return os.IsNotExist(err) }) {
		t.Errorf("%s.1 left uncompressed", filepath.Base(live))
	}
	for _, name := range []string{live + ".1.gz", live + ".2.gz"} {
		f, err := os.Open(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		zr, err := gzip.NewReader(f)
		var n int64
		if err == nil {
			n, err = io.Copy(io.Discard, zr)
		}
		f.Close()
		if err != nil || n == 0 || n > 20_000+200 {
			t.Errorf("%s: %d bytes decompressed (%v), want some and at most max-size 20k and an entry", filepath.Base(name), n, err)
		}
	}
	for _, name := range []string{live + ".2", live + ".3", live + ".3.gz"} {
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Errorf("%s is there (%v)", filepath.Base(name), err)
		}
	}
	last := bursts * perBurst
	if first := checkConsecutive(t, "docker logs", lines(mustDocker(t, w, "logs", "zipped")), last); first == 1 {
		t.Errorf("docker logs still has the first line: nothing was rotated away")
	}
	if tail := lines(mustDocker(t, w, "logs", "--tail", "300", "zipped")); len(tail) != 300 || lineNumber(tail[299]) != last || lineNumber(tail[0]) != last-299 {
		t.Errorf("docker logs --tail 300: %d lines, %q … %q", len(tail), tail[0], tail[len(tail)-1])
	}
	awaitFollow(t, follow, "docker logs -f through the compressed rotations", last)

	lid := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--log-driver", "local", "--log-opt", "max-size=5k", testworld.BusyboxImage,
		"sh", "-c", `i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo "line $i"; done`))
	mustDocker(t, w, "wait", lid)
	llive := w.HostPath(filepath.Join(w.DataRoot, "containers", lid, lid+"-json.log"))
	if !retried(func() bool { _, err := os.Stat(llive + ".1.gz"); return err == nil }) {
		t.Errorf("local: no %s.1.gz", filepath.Base(llive))
	}
	if l := lines(mustDocker(t, w, "logs", lid)); len(l) == 0 || l[len(l)-1] != "line 500" {
		t.Errorf("docker logs of local: %d lines, ending %q", len(l), l)
	}
}

// TestLogDrivers: --log-driver none keeps nothing for docker logs, which
// refuses as Docker does, while attach still shows the output and the
// files stay small; local takes its own options and defaults, and docker
// logs reads it.
func TestLogDrivers(t *testing.T) {
	w, _ := startWorld(t)
	if out := mustDocker(t, w, "run", "--rm", "--log-driver", "none", testworld.BusyboxImage, "echo", "attached"); strings.TrimSpace(out) != "attached" {
		t.Errorf("docker run --log-driver none (attached) printed %q, want the output", out)
	}
	// About 9.5 MB of output, kept to 1 MiB and an entry.
	id := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--name", "quiet", "--log-driver", "none", testworld.BusyboxImage,
		"sh", "-c", `i=0; while [ $i -lt 100000 ]; do echo "line $i ...................................................................................."; i=$((i+1)); done; touch /tmp/finished; sleep 600`))
	if got := dockerInspect(t, w, "{{json .HostConfig.LogConfig}}", "quiet"); got != `{"Type":"none","Config":{}}` {
		t.Errorf("HostConfig.LogConfig = %s", got)
	}
	if _, errOut, code := w.Docker(t, "logs", "quiet"); code == 0 || !strings.Contains(errOut, "configured logging driver does not support reading") {
		t.Errorf("docker logs of a none container: exit %d, %q", code, errOut)
	}
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "quiet", "test", "-e", "/tmp/finished")
		return code == 0
	}) {
		t.Fatalf("quiet did not finish its output")
	}
	dir := w.HostPath(filepath.Join(w.DataRoot, "containers", id))
	var total int64
	for _, name := range []string{id + "-json.log", id + "-json.log.1", "stdout.log"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			total += fi.Size()
		}
	}
	if total > 1<<20+1000 {
		t.Errorf("none: the log files hold %d bytes after 9.5 MB of output, want at most 1 MiB and an entry", total)
	}
	if got := dockerInspect(t, w, "{{.LogPath}}", "quiet"); got != "" {
		t.Errorf("none: LogPath = %q, want none (as Docker)", got)
	}

	mustDocker(t, w, "run", "-d", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=5m", testworld.BusyboxImage, "sh", "-c", "echo from-local; sleep 600")
	if got := dockerInspect(t, w, "{{json .HostConfig.LogConfig}}", "loc"); got != `{"Type":"local","Config":{"max-size":"5m"}}` {
		t.Errorf("local: HostConfig.LogConfig = %s", got)
	}
	if !retried(func() bool { out, _, _ := w.Docker(t, "logs", "loc"); return strings.TrimSpace(out) == "from-local" }) {
		t.Errorf("docker logs of a local container lacks its output")
	}
	for _, c := range []struct{ args, want string }{
		{"--log-driver local --log-opt max-file=1", "compression cannot be enabled when max file count is 1"},
		{"--log-driver local --log-opt tag=x", "unknown log opt 'tag' for log driver local"},
	} {
		args := append(append([]string{"run", "--rm"}, strings.Fields(c.args)...), testworld.BusyboxImage, "true")
		if _, errOut, code := w.Docker(t, args...); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("docker %s: exit %d, %q; want exit 125 saying %q", strings.Join(args, " "), code, errOut, c.want)
		}
	}
}

// TestLogAttributes: json-file's labels, env and tag options (Docker's
// documented daemon.json example uses them) put attributes into every
// entry of the log, which docker logs --details shows as Docker's does;
// the reaper writes them (no terminal) and so does the daemon (-t).
func TestLogAttributes(t *testing.T) {
	w, _ := startWorld(t)
	opts := []string{"--label", "stage=prod", "--label", "other=x", "-e", "REGION=eu west", "--log-opt", "labels=stage",
		"--log-opt", "env=REGION,MISSING", "--log-opt", "tag={{.ImageName}}/{{.Name}}"}
	mustDocker(t, w, append(append([]string{"run", "--name", "plain"}, opts...), testworld.BusyboxImage, "echo", "hello")...)
	mustDocker(t, w, append(append([]string{"run", "-t", "--name", "term"}, opts...), testworld.BusyboxImage, "echo", "hello")...)
	for _, name := range []string{"plain", "term"} {
		want := "REGION=eu+west,stage=prod,tag=" + url.QueryEscape(testworld.BusyboxImage+"/"+name) + " hello"
		if got := strings.TrimSpace(strings.ReplaceAll(mustDocker(t, w, "logs", "--details", name), "\r", "")); got != want {
			t.Errorf("docker logs --details %s = %q, want %q", name, got, want)
		}
		if got := strings.TrimSpace(strings.ReplaceAll(mustDocker(t, w, "logs", name), "\r", "")); got != "hello" {
			t.Errorf("docker logs %s = %q, want hello", name, got)
		}
		b, err := os.ReadFile(w.HostPath(dockerInspect(t, w, "{{.LogPath}}", name)))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"attrs":{"REGION":"eu west","stage":"prod","tag":"` + testworld.BusyboxImage + "/" + name + `"}`; !strings.Contains(string(b), want) {
			t.Errorf("%s's log file %q lacks %s", name, b, want)
		}
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--log-opt", "tag={{.Nope", testworld.BusyboxImage, "true"); code != 125 || !strings.Contains(errOut, "log opt 'tag'") {
		t.Errorf("a tag that does not parse: exit %d, %q; want 125 naming the option", code, errOut)
	}
}

// TestDockerLogsTimes: the log keeps each line's time, as json-file
// does: docker logs -t prints it (RFC 3339, nanoseconds, UTC), --since
// and --until select by it (the CLI's relative and absolute forms), and
// stdout and stderr lines come in the order they were written. A flood
// of output is held to max-size and an entry at every moment, because
// the log is rotated at the write (berth once checked the sizes every
// 250 ms and a fast writer passed max-size by megabytes).
func TestDockerLogsTimes(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "--name", "timed", testworld.BusyboxImage, "sh", "-c", "echo early; echo err1 >&2; sleep 2; echo late; echo err2 >&2")

	stamped := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (\S+)$`)
	out, errOut, code := w.Docker(t, "logs", "-t", "timed")
	if code != 0 {
		t.Fatalf("docker logs -t: exit %d, %s", code, errOut)
	}
	times := map[string]time.Time{}
	for _, l := range append(lines(out), lines(errOut)...) {
		m := stamped.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("docker logs -t line %q, want \"<RFC 3339 nano UTC> <text>\"", l)
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatal(err)
		}
		times[m[2]] = ts
	}
	if len(times) != 4 {
		t.Fatalf("docker logs -t: %q / %q, want four stamped lines", out, errOut)
	}
	// --details: the entry's attributes (none) and a space before each
	// line, as moby's WriteLogStream.
	if out, errOut, code := w.Docker(t, "logs", "--details", "timed"); code != 0 || out != " early\n late\n" || errOut != " err1\n err2\n" {
		t.Errorf("docker logs --details: exit %d, %q / %q", code, out, errOut)
	}
	if gap := times["late"].Sub(times["early"]); gap < 1500*time.Millisecond || gap > 10*time.Second {
		t.Errorf("early at %v, late at %v: want the 2 s sleep between them", times["early"], times["late"])
	}

	// --since and --until as the CLI sends them (seconds.nanoseconds).
	mid := times["early"].Add(time.Second).UTC().Format(time.RFC3339Nano)
	if out, errOut := mustDockerBoth(t, w, "logs", "--since", mid, "timed"); out != "late\n" || errOut != "err2\n" {
		t.Errorf("docker logs --since %s: %q / %q, want the lines after the sleep", mid, out, errOut)
	}
	if out, errOut := mustDockerBoth(t, w, "logs", "--until", mid, "timed"); out != "early\n" || errOut != "err1\n" {
		t.Errorf("docker logs --until %s: %q / %q, want the lines before the sleep", mid, out, errOut)
	}
	if out, _ := mustDockerBoth(t, w, "logs", "--since", "1h", "timed"); out != "early\nlate\n" {
		t.Errorf("docker logs --since 1h: %q, want every line", out)
	}
	if out, _ := mustDockerBoth(t, w, "logs", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z", "timed"); out != "" {
		t.Errorf("docker logs of a day in 2000: %q, want nothing", out)
	}

	// One stream in the order written: a tty-less container's stdout and
	// stderr through 2>&1 on the client keep their order (written a few
	// milliseconds apart: two pipes read at once have no order, in
	// Docker either).
	mustDocker(t, w, "run", "--name", "mixed", testworld.BusyboxImage, "sh", "-c", "for i in 1 2 3 4 5; do echo out$i; usleep 20000; echo err$i >&2; usleep 20000; done")
	if got := mustDockerCombined(t, w, "logs", "mixed"); got != "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\n" {
		t.Errorf("docker logs mixed 2>&1 = %q, want stdout and stderr interleaved as written", got)
	}

	// A flood: yes for two seconds into max-size=200k, max-file=2.
	id := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--name", "flood", "--log-opt", "max-size=200k", "--log-opt", "max-file=2", testworld.BusyboxImage, "sh", "-c", "timeout 2 yes 'flooding the log'; true"))
	live := w.HostPath(filepath.Join(w.DataRoot, "containers", id, id+"-json.log"))
	var biggest int64
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, p := range []string{live, live + ".1"} {
			if fi, err := os.Stat(p); err == nil {
				biggest = max(biggest, fi.Size())
			}
		}
	}
	mustDocker(t, w, "wait", "flood")
	if biggest == 0 || biggest > 200*1024+200 {
		t.Errorf("under a flood the biggest log file held %d bytes, want at most max-size 200k and an entry", biggest)
	}
	if _, err := os.Stat(live + ".2"); !os.IsNotExist(err) {
		t.Errorf("max-file 2 left %s.2", filepath.Base(live))
	}
	// The last line may be cut where timeout killed yes, and the shell
	// may say "Terminated" on stderr: --tail counts it too.
	if tail := mustDocker(t, w, "logs", "--tail", "5", "flood"); !strings.Contains(tail, "flooding the log\n") || strings.Count(tail, "\n") > 5 {
		t.Errorf("docker logs --tail 5 flood = %q", tail)
	}
}

// awaitFollow checks what a docker logs -f that began with the container
// printed once the container exited: every line, 1 to last, in order.
func awaitFollow(t *testing.T, follow <-chan string, what string, last int) {
	t.Helper()
	select {
	case out := <-follow:
		if checkConsecutive(t, what, lines(out), last) != 1 {
			t.Errorf("%s did not see the first lines", what)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not end when the container exited", what)
	}
}

// checkConsecutive checks that out is "line N …" lines numbered one after
// another up to last, and returns the first number.
func checkConsecutive(t *testing.T, what string, out []string, last int) int {
	t.Helper()
	if len(out) == 0 {
		t.Errorf("%s: no output", what)
		return 0
	}
	first := lineNumber(out[0])
	for i, l := range out {
		if n := lineNumber(l); n != first+i {
			t.Errorf("%s: line %d of the output is %q, want number %d (lost or repeated lines)", what, i, l, first+i)
			return first
		}
	}
	if got := lineNumber(out[len(out)-1]); got != last {
		t.Errorf("%s: ends at line %d, want %d", what, got, last)
	}
	return first
}

func lineNumber(l string) int {
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "line" {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return n
}

// mustDockerBoth runs docker, fails the test unless it exits 0, and
// returns its stdout and stderr.
func mustDockerBoth(t *testing.T, w *testworld.World, args ...string) (string, string) {
	t.Helper()
	out, errOut, code := w.Docker(t, args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

// mustDockerCombined runs docker with its stdout and stderr on one pipe
// (2>&1) and returns what came, in order.
func mustDockerCombined(t *testing.T, w *testworld.World, args ...string) string {
	t.Helper()
	cmd := exec.Command(testworld.DockerPath(), args...)
	cmd.Env = append(os.Environ(), w.DockerEnv()...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, b.String())
	}
	return b.String()
}

// TestAttachIsNotTheLog: docker run attached gets the container's
// output as written, not through its log: all of a burst that the log
// rotates away (max-size=10k, max-file=1: the follower of the file got
// 1,859 lines of 300,000, QA round 28), and a prompt before its newline.
func TestAttachIsNotTheLog(t *testing.T) {
	w, _ := startWorld(t)
	out := mustDocker(t, w, "run", "--rm", "--log-opt", "max-size=10k", "--log-opt", "max-file=1", testworld.BusyboxImage, "seq", "1", "300000")
	if n := strings.Count(out, "\n"); n != 300000 || !strings.HasSuffix(out, "\n300000\n") {
		t.Errorf("docker run seq 1 300000 with max-size=10k: %d lines, want 300000", n)
	}

	cmd := exec.Command(testworld.DockerPath(), "run", "--rm", "-i", testworld.BusyboxImage, "sh", "-c", `printf 'Name: '; read name; echo "hello $name"`)
	cmd.Env = append(os.Environ(), w.DockerEnv()...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	prompt := make(chan string, 1)
	go func() {
		b := make([]byte, 6)
		n, _ := io.ReadFull(stdout, b)
		prompt <- string(b[:n])
	}()
	select {
	case got := <-prompt:
		if got != "Name: " {
			t.Fatalf("docker run -i printed %q first, want the prompt", got)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the prompt did not come before its line was answered")
	}
	io.WriteString(stdin, "bob\n")
	rest, _ := io.ReadAll(stdout)
	if string(rest) != "hello bob\n" {
		t.Errorf("after the answer: %q", rest)
	}
}

// TestLogModeNonBlocking: --log-opt mode=non-blocking queues the log's
// entries for the writer (dropping past max-buffer-size rather than
// holding the container back); attach still gets all of the output, and
// what was queued reaches the log by the exit.
func TestLogModeNonBlocking(t *testing.T) {
	w, _ := startWorld(t)
	out := mustDocker(t, w, "run", "--name", "nb", "--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=64k", testworld.BusyboxImage, "seq", "1", "20000")
	if n := strings.Count(out, "\n"); n != 20000 {
		t.Errorf("attached: %d lines, want 20000", n)
	}
	// Dropped entries (if the disk fell behind) leave gaps, never
	// disorder.
	logged := lines(mustDocker(t, w, "logs", "nb"))
	if len(logged) == 0 || len(logged) > 20000 {
		t.Fatalf("docker logs: %d lines, want some and at most 20000", len(logged))
	}
	for i := 1; i < len(logged); i++ {
		a, _ := strconv.Atoi(logged[i-1])
		b, _ := strconv.Atoi(logged[i])
		if b <= a {
			t.Fatalf("docker logs: %q after %q", logged[i], logged[i-1])
		}
	}
}
