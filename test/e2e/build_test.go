package e2e

import (
	"archive/tar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// writeContext writes files (path: content) under a new directory, the
// build context, and returns it.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
			t.Fatal(err)
		}
		for d := filepath.Dir(p); d != dir; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// writeFilesTar writes a tar of files (path: content) at p.
func writeFilesTar(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(content)), Uid: 7, Gid: 8}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

const buildDockerfile = `# syntax=docker/dockerfile:1
ARG BASE=` + testworld.BusyboxImage + `
FROM $BASE AS builder
ARG GREETING=hello
ENV APP=/app
WORKDIR $APP/src
COPY greet.sh ./
COPY data/ /data/
RUN echo "$GREETING from $(pwd) as $(id -u)" > made.txt && \
    chmod +x greet.sh && echo built on stdout && echo warned >&2

FROM ${BASE}
LABEL org.example.kind=demo
COPY --from=builder /app/src/made.txt /app/src/greet.sh /out/
COPY --chown=1000:1000 data /owned/
ADD files.tar /unpacked/
USER nobody
EXPOSE 8080 53/udp
ENTRYPOINT ["sh", "-c"]
CMD ["cat /out/made.txt; ls -ln /owned; ls -ln /unpacked; id -u"]
`

// TestDockerBuild: docker build with the docker CLI (the legacy builder,
// as the CLI uses without buildx), as Docker's: ARGs before FROM and
// --build-arg, stages and COPY --from, WORKDIR made, COPY's ownership
// (root's, --chown's, the image's for --from), ADD unpacking a tar, a
// RUN's output streamed, the final config (user, ports, label,
// entrypoint, command); moby's step output; its intermediate containers
// gone; history; a second build all from the cache and the same image;
// a changed file rebuilds from its COPY on; -q prints the ID alone.
func TestDockerBuild(t *testing.T) {
	w, _ := startWorld(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile":    buildDockerfile,
		"greet.sh":      "#!/bin/sh\necho greet\n",
		"data/a.txt":    "A\n",
		"data/sub/b":    "B\n",
		".dockerignore": "*.log\n",
		"debug.log":     "not sent\n",
	})
	writeFilesTar(t, filepath.Join(dir, "files.tar"), map[string]string{"f1": "one\n", "d/f2": "two\n"})

	out, stderr, code := w.Docker(t, "build", "-t", "app:1", "--build-arg", "GREETING=hi", "--build-arg", "UNUSED=1", dir)
	if code != 0 {
		t.Fatalf("docker build: %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"Step 1/17 : ARG BASE=busybox\n",
		"Step 2/17 : FROM $BASE AS builder\n",
		"Step 8/17 : RUN echo \"$GREETING from $(pwd) as $(id -u)\" > made.txt &&     chmod +x greet.sh && echo built on stdout && echo warned >&2\n",
		" ---> Running in ",
		"built on stdout\n",
		"warned\n",
		" ---> Removed intermediate container ",
		"[Warning] One or more build-args [UNUSED] were not consumed\n",
		"Successfully tagged app:1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("docker build's output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`Successfully built ([0-9a-f]{12})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no 'Successfully built' in:\n%s", out)
	}
	id := dockerInspect(t, w, "{{.Id}}", "app:1")
	if !strings.HasPrefix(id, "sha256:"+m[1]) {
		t.Errorf("built %s, app:1 is %s", m[1], id)
	}
	got := mustDocker(t, w, "run", "--rm", "app:1")
	if !strings.HasPrefix(got, "hi from /app/src as 0\n") ||
		!regexp.MustCompile(`-rw-r--r-- +\d+ 1000 +1000 +2 .* a\.txt\ndrwxr-xr-x +\d+ 1000 +1000 .* sub\n`).MatchString(got) ||
		!regexp.MustCompile(`drwxr-xr-x +\d+ 0 +0 .* d\n-rw-r----- +\d+ 7 +8 +4 .* f1\n65534\n$`).MatchString(got) {
		t.Errorf("the built image's command printed:\n%s", got)
	}
	if got := mustDocker(t, w, "run", "--rm", "--entrypoint", "sh", "app:1", "-c",
		"ls /out; cat /owned/sub/b; test -e /data && echo DATA; test -e /debug.log && echo LOG; ls -ld /out | cut -c1-10"); got != "greet.sh\nmade.txt\nB\ndrwxr-xr-x\n" {
		t.Errorf("the built image's files: %q", got)
	}
	wantInspected(t, w, "app:1", map[string]string{
		"{{.Config.User}}":              "nobody",
		"{{json .Config.ExposedPorts}}": `{"53/udp":{},"8080/tcp":{}}`,
		"{{json .Config.Labels}}":       `{"org.example.kind":"demo"}`,
		"{{json .Config.Entrypoint}}":   `["sh","-c"]`,
		"{{json .Config.Cmd}}":          `["cat /out/made.txt; ls -ln /owned; ls -ln /unpacked; id -u"]`,
		"{{.Config.WorkingDir}}":        "",
		"{{len .RootFS.Layers}}":        "4", // busybox's, and a layer for each COPY and the ADD
		`{{index .Config.Env 0}}`:       "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	})
	if out := mustDocker(t, w, "ps", "-aq"); out != "" {
		t.Errorf("containers left after the build: %q", out)
	}
	hist := mustDocker(t, w, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1")
	for _, want := range []string{
		`/bin/sh -c #(nop)  CMD ["cat /out/made.txt; ls -ln /owned; ls -ln /unpacked; id -u"]` + "\n",
		"/bin/sh -c #(nop)  USER nobody\n",
		"/bin/sh -c #(nop) COPY --chown=1000:1000 dir:",
		"/bin/sh -c #(nop)  LABEL org.example.kind=demo\n",
	} {
		if !strings.Contains(hist, want) {
			t.Errorf("docker history lacks %q:\n%s", want, hist)
		}
	}

	// Again: every step from the cache, the same image.
	out = mustDocker(t, w, "build", "-t", "app:2", "--build-arg", "GREETING=hi", dir)
	if n := strings.Count(out, " ---> Using cache\n"); n != 14 || strings.Contains(out, "Running in") {
		t.Errorf("a second build used the cache %d times (want 14):\n%s", n, out)
	}
	if got := dockerInspect(t, w, "{{.Id}}", "app:2"); got != id {
		t.Errorf("the second build made %s, the first %s", got, id)
	}
	// --cache-from: hits only among the images named and their ancestors.
	out = mustDocker(t, w, "build", "--cache-from", testworld.BusyboxImage, "--build-arg", "GREETING=hi", dir)
	if strings.Contains(out, "Using cache") {
		t.Errorf("--cache-from busybox used the build's cache:\n%s", out)
	}
	out = mustDocker(t, w, "build", "--cache-from", "app:2", "--build-arg", "GREETING=hi", dir)
	if n := strings.Count(out, " ---> Using cache\n"); n != 8 {
		t.Errorf("--cache-from app:2: %d steps from the cache, want the final stage's 8:\n%s", n, out)
	}
	// Another build arg changes the RUN (its history records it), and all
	// after it.
	out = mustDocker(t, w, "build", "-q", "--build-arg", "GREETING=hey", dir)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) || strings.TrimSpace(out) == id {
		t.Errorf("docker build -q printed %q", out)
	}
	if got := mustDocker(t, w, "run", "--rm", "--entrypoint", "cat", strings.TrimSpace(out), "/out/made.txt"); got != "hey from /app/src as 0\n" {
		t.Errorf("rebuilt with another arg: %q", got)
	}
	// A changed file: its COPY and what follows run again.
	if err := os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("A2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustDocker(t, w, "build", "-t", "app:3", "--build-arg", "GREETING=hi", dir)
	if n := strings.Count(out, " ---> Using cache\n"); n != 6 {
		// The first stage's 4 steps before the COPY of data/, and the
		// second's LABEL and COPY --from=builder: made.txt is made again
		// the same, and a file is cached by its name and content.
		t.Errorf("after a change, %d steps from the cache (want 6):\n%s", n, out)
	}
	if got := mustDocker(t, w, "run", "--rm", "--entrypoint", "cat", "app:3", "/owned/a.txt"); got != "A2\n" {
		t.Errorf("the changed file: %q", got)
	}
	// Once the builds ended their images are not held: removed and pruned
	// as any image.
	mustDocker(t, w, "rmi", "app:3")
	if out := mustDocker(t, w, "image", "prune", "-f"); !strings.Contains(out, "deleted: sha256:") {
		t.Errorf("image prune after the builds deleted nothing:\n%s", out)
	}
}

// TestDockerBuildFailures: a RUN that fails ends the build with moby's
// message and the command's code, its container kept (moby's --rm keeps
// a failed step's) unless --force-rm; a Dockerfile mistake is reported
// with its line; -f names another Dockerfile; --target stops at a stage.
func TestDockerBuildFailures(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + bb + "\nRUN echo before; exit 3\n",
		"bad.df":     "FROM " + bb + "\nFOO bar\n",
		"multi.df":   "FROM " + bb + " AS first\nRUN echo one > /one\nFROM first AS second\nRUN exit 9\n",
		"mount.df":   "FROM " + bb + "\nRUN --mount=type=cache,target=/c true\n",
		"scratch.df": "FROM scratch\nRUN true\n",
	})
	out, stderr, code := w.Docker(t, "build", dir)
	if code == 0 || !strings.Contains(stderr, "The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3") || !strings.Contains(out, "before\n") {
		t.Errorf("a failing RUN: %d\n%s\n%s", code, out, stderr)
	}
	if ps := mustDocker(t, w, "ps", "-aq", "--filter", "status=exited"); strings.Count(ps, "\n") != 1 {
		t.Errorf("the failed step's container: %q, want it kept", ps)
	}
	mustDocker(t, w, "container", "prune", "-f")
	_, _, code = w.Docker(t, "build", "--force-rm", dir)
	if ps := mustDocker(t, w, "ps", "-aq"); code == 0 || ps != "" {
		t.Errorf("--force-rm: %d, containers %q", code, ps)
	}
	_, stderr, code = w.Docker(t, "build", "-f", filepath.Join(dir, "bad.df"), dir)
	if code == 0 || !strings.Contains(stderr, "dockerfile parse error on line 2: unknown instruction: FOO") {
		t.Errorf("an unknown instruction: %d %s", code, stderr)
	}
	_, stderr, code = w.Docker(t, "build", "-f", filepath.Join(dir, "mount.df"), dir)
	if code == 0 || !strings.Contains(stderr, "the --mount option requires BuildKit") {
		t.Errorf("RUN --mount: %d %s", code, stderr)
	}
	// A Dockerfile on stdin, no context; --iidfile; VOLUME discards what a
	// later RUN writes there (the RUN's container has a volume there, as
	// in Docker); USER applies to RUN.
	iid := filepath.Join(t.TempDir(), "iid")
	out, stderr, code = w.DockerIn(t, "FROM "+bb+"\nVOLUME /data\nRUN echo lost > /data/f && echo kept > /f\nUSER nobody\nRUN id -u > /tmp/uid\n",
		"build", "--iidfile", iid, "-t", "stdin:1", "-")
	if code != 0 {
		t.Fatalf("docker build -: %d\n%s\n%s", code, out, stderr)
	}
	if b, err := os.ReadFile(iid); err != nil || string(b) != dockerInspect(t, w, "{{.Id}}", "stdin:1") {
		t.Errorf("--iidfile: %q %v", b, err)
	}
	if got := mustDocker(t, w, "run", "--rm", "stdin:1", "sh", "-c", "cat /f /tmp/uid; ls /data"); got != "kept\n65534\n" {
		t.Errorf("the stdin build's files: %q", got)
	}
	if vols := mustDocker(t, w, "volume", "ls", "-q"); vols != "" {
		t.Errorf("volumes after the build and a run --rm: %q, want none (the RUN containers' went with them)", vols)
	}
	_, stderr, code = w.Docker(t, "build", "-f", filepath.Join(dir, "scratch.df"), dir)
	if code == 0 || !strings.Contains(stderr, "cannot run a command in an empty image (FROM scratch)") {
		t.Errorf("RUN in scratch: %d %s", code, stderr)
	}
	out = mustDocker(t, w, "build", "-f", filepath.Join(dir, "multi.df"), "--target", "first", "-t", "first:1", dir)
	if strings.Contains(out, "exit 9") {
		t.Errorf("--target first ran the stage after it:\n%s", out)
	}
	if got := mustDocker(t, w, "run", "--rm", "first:1", "cat", "/one"); got != "one\n" {
		t.Errorf("the target stage's image: %q", got)
	}
}
