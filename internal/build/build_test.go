package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/runtime/image"
)

// fakeBackend keeps images as directories: a Derive shares its parent's,
// a Copy or Run makes a copy of the parent's with the layer laid over it.
type fakeBackend struct {
	t      *testing.T
	dir    string
	images map[string]*Image
	cache  map[string]*Image
	steps  []Step
	runs   []RunSpec
	// layers are the files each Copy's fill wrote, by the new image's ID.
	layers map[string][]string
	// fail makes a RUN whose command contains it exit with 3.
	fail string
	n    int
}

func newFake(t *testing.T) *fakeBackend {
	f := &fakeBackend{t: t, dir: t.TempDir(), images: map[string]*Image{}, cache: map[string]*Image{}, layers: map[string][]string{}}
	base := filepath.Join(f.dir, "base")
	for _, d := range []string{"bin", "etc", "srv/existing", "var/run-real"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(base, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(base, "etc/group"), []byte("root:x:0:\napp:x:1002:\nstaff:x:50:\n"), 0o644))
	must(t, os.Symlink("/var/run-real", filepath.Join(base, "run")))
	must(t, os.Symlink("/etc", filepath.Join(base, "hostetc")))
	f.add("base", &Image{ID: "sha256:base", Root: base, Config: &image.Config{Env: []string{"PATH=/bin", "FROM_BASE=1"}, Cmd: []string{"sh"}}})
	return f
}

// add names img by name and by ID.
func (f *fakeBackend) add(name string, img *Image) {
	f.images[name], f.images[img.ID] = img, img
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fakeBackend) Image(_ context.Context, ref string) (*Image, error) {
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return nil, errdefs.NotFound("No such image: %s", ref)
}

func (f *fakeBackend) Cached(_ context.Context, key string) (*Image, error) { return f.cache[key], nil }

func (f *fakeBackend) newImage(s Step, root string) *Image {
	f.n++
	img := &Image{ID: fmt.Sprintf("sha256:%064d", f.n), Config: s.Config.Clone(), Root: root}
	f.images[img.ID] = img
	f.cache[s.Key] = img
	f.steps = append(f.steps, s)
	return img
}

func (f *fakeBackend) parentRoot(s Step) string {
	if s.Parent == "" {
		return ""
	}
	return f.images[s.Parent].Root
}

func (f *fakeBackend) Derive(_ context.Context, s Step) (*Image, error) {
	return f.newImage(s, f.parentRoot(s)), nil
}

// cloneTree copies the tree at src (if any) to a new directory, then
// overlays upper (if any).
func (f *fakeBackend) cloneTree(src, upper string) string {
	dst, err := os.MkdirTemp(f.dir, "tree-")
	must(f.t, err)
	for _, from := range []string{src, upper} {
		if from == "" {
			continue
		}
		if out, err := exec.Command("cp", "-a", from+"/.", dst).CombinedOutput(); err != nil {
			f.t.Fatalf("cp: %v %s", err, out)
		}
	}
	return dst
}

func (f *fakeBackend) Copy(_ context.Context, s Step, fill func(string) error) (*Image, error) {
	upper, err := os.MkdirTemp(f.dir, "upper-")
	must(f.t, err)
	if err := fill(upper); err != nil {
		return nil, err
	}
	img := f.newImage(s, f.cloneTree(f.parentRoot(s), upper))
	f.layers[img.ID] = listTree(f.t, upper)
	return img, nil
}

func (f *fakeBackend) Run(_ context.Context, s Step, r RunSpec, out Output) (*Image, error) {
	f.runs = append(f.runs, r)
	fmt.Fprintln(out.Stdout, " ---> Running in c0ffee")
	fmt.Fprintf(out.Stdout, "ran %s\n", r.Cmd[len(r.Cmd)-1])
	if f.fail != "" && strings.Contains(strings.Join(r.Cmd, " "), f.fail) {
		return nil, &ExitError{Code: 3}
	}
	return f.newImage(s, f.cloneTree(f.parentRoot(s), "")), nil
}

// listTree lists the entries under root: "path mode uid:gid", a link's
// "-> target", a file's content.
func listTree(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", rel, fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += " " + strings.TrimSpace(string(b))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// context writes a build context: files by path (a value starting with
// "->" is a symlink), each file owned by 1234:1234, as a client's may be.
func writeCtx(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		for d := filepath.Dir(p); d != dir; d = filepath.Dir(d) {
			must(t, os.Chmod(d, 0o755)) // whatever the umask
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			must(t, os.Symlink(target, p))
			continue
		}
		must(t, os.WriteFile(p, []byte(content), 0o640))
		must(t, os.Chmod(p, 0o640)) // whatever the umask
		must(t, os.Lchown(p, 1234, 1234))
	}
	return dir
}

type result struct {
	id       string
	out, err string
	aux      []string
}

func runBuild(t *testing.T, f *fakeBackend, ctx string, opts Options) (result, error) {
	var out, errOut bytes.Buffer
	var r result
	id, err := Build(context.Background(), f, ctx, opts, Output{Stdout: &out, Stderr: &errOut,
		Aux: func(id string) error { r.aux = append(r.aux, id); return nil }})
	r.id, r.out, r.err = id, out.String(), errOut.String()
	return r, err
}

// needRoot: copies set owners (under CI=true a test that cannot run
// fails, as the kernel tests do).
func needRoot(t *testing.T) { nstest.RequireRoot(t) }

// TestBuildSteps: each instruction's step as moby's legacy builder runs
// it: the output ("Step n/m : …" with the instruction as written, " --->
// <id>"), config steps as children that share the tree, RUN's command in
// the shell with the build args in its environment and, as "|n K=v", in
// its history, WORKDIR making its directory only when missing, the base's
// env kept with no PATH added when it has one, ENTRYPOINT dropping an
// inherited CMD, each stage's ID to aux.
func TestBuildSteps(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	df := "ARG IMG=base\nFROM $IMG\nARG V=1\nENV A=a \\\n    B=\"$V b\"\nRUN echo $A\nWORKDIR /srv/existing\nWORKDIR new/deep\n" +
		"ENTRYPOINT [\"/bin/app\"]\nUSER app\nEXPOSE 80 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo two\nMAINTAINER me\nHEALTHCHECK --retries=2 CMD true\n"
	dir := writeCtx(t, map[string]string{"Dockerfile": df})
	r, err := runBuild(t, f, dir, Options{BuildArgs: map[string]*string{"V": ptr("9"), "HTTP_PROXY": ptr("http://p")}, Labels: map[string]string{"z": "last", "a": "first"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	for _, want := range []string{
		"Step 1/18 : ARG IMG=base\nStep 2/18 : FROM $IMG\n ---> base\nStep 3/18 : ARG V=1\n ---> ",
		"Step 4/18 : ENV A=a     B=\"$V b\"\n",
		"Step 5/18 : RUN echo $A\n ---> Running in c0ffee\nran echo $A\n ---> ",
		"Step 17/18 : LABEL a=first\n",
		"Step 18/18 : LABEL z=last\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	if len(f.runs) != 2 {
		t.Fatalf("runs: %+v", f.runs)
	}
	wantRun := RunSpec{Cmd: []string{"/bin/sh", "-c", "echo $A"}, Env: []string{"PATH=/bin", "FROM_BASE=1", "A=a", "B=9 b", "HTTP_PROXY=http://p", "V=9"},
		Remove: false}
	if diff := cmp.Diff(wantRun, f.runs[0]); diff != "" {
		t.Errorf("first RUN (-want +got):\n%s", diff)
	}
	if r := f.runs[1]; !slices.Equal(r.Cmd, []string{"/bin/bash", "-c", "echo two"}) || r.User != "app" || r.WorkingDir != "/srv/existing/new/deep" {
		t.Errorf("second RUN: %+v", r)
	}
	var created []string
	for _, s := range f.steps {
		created = append(created, s.CreatedBy)
	}
	wantCreated := []string{
		"/bin/sh -c #(nop)  ARG V=1",
		"/bin/sh -c #(nop)  ENV A=a B=9 b",
		"|1 V=9 /bin/sh -c echo $A", // HTTP_PROXY is a built-in no ARG named: not recorded
		"/bin/sh -c #(nop) WORKDIR /srv/existing",
		"/bin/sh -c #(nop) WORKDIR /srv/existing/new/deep",
		`/bin/sh -c #(nop)  ENTRYPOINT ["/bin/app"]`,
		"/bin/sh -c #(nop)  USER app",
		"/bin/sh -c #(nop)  EXPOSE 80 53/udp",
		"/bin/sh -c #(nop)  VOLUME [/data]",
		"/bin/sh -c #(nop)  STOPSIGNAL SIGINT",
		"/bin/bash -c #(nop)  SHELL [/bin/bash -c]", // moby's comment is made with the new shell
		"|1 V=9 /bin/bash -c echo two",
		"/bin/bash -c #(nop)  MAINTAINER me",
		"/bin/bash -c #(nop)  HEALTHCHECK &{Test:[CMD-SHELL true] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:2}",
		"/bin/bash -c #(nop)  LABEL a=first",
		"/bin/bash -c #(nop)  LABEL z=last",
	}
	if diff := cmp.Diff(wantCreated, created); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if f.steps[11].Author != "" || f.steps[12].Author != "me" || f.steps[13].Author != "me" {
		t.Errorf("MAINTAINER: authors %q %q %q", f.steps[11].Author, f.steps[12].Author, f.steps[13].Author)
	}
	// The existing WORKDIR is a config step on the same tree; the new one
	// a layer with the directories, root's and 0755.
	if f.images[f.steps[3].Parent].Root != f.images[fmt.Sprintf("sha256:%064d", 4)].Root {
		t.Errorf("WORKDIR of an existing directory made a tree")
	}
	if got := f.layers[fmt.Sprintf("sha256:%064d", 5)]; !slices.Equal(got, []string{"srv drwxr-xr-x 0:0", "srv/existing drwxr-xr-x 0:0",
		"srv/existing/new drwxr-xr-x 0:0", "srv/existing/new/deep drwxr-xr-x 0:0"}) {
		t.Errorf("WORKDIR's layer: %q", got)
	}
	final := f.images[r.id].Config
	want := &image.Config{Env: []string{"PATH=/bin", "FROM_BASE=1", "A=a", "B=9 b"}, Entrypoint: []string{"/bin/app"}, User: "app",
		WorkingDir: "/srv/existing/new/deep", ExposedPorts: []string{"80/tcp", "53/udp"}, Volumes: []string{"/data"}, StopSignal: "SIGINT",
		Shell: []string{"/bin/bash", "-c"}, Labels: map[string]string{"a": "first", "z": "last"},
		Healthcheck: final.Healthcheck}
	if diff := cmp.Diff(want, final); diff != "" || final.Healthcheck.Retries != 2 {
		t.Errorf("final config (-want +got):\n%s", diff)
	}
	if !slices.Equal(r.aux, []string{r.id}) {
		t.Errorf("aux %q, want the one stage's %s", r.aux, r.id)
	}
}

func ptr(s string) *string { return &s }

// TestBuildCache: a second build finds every step in the cache and makes
// nothing; a changed build arg re-runs the RUN that sees it and every
// step after it in the stage (a miss busts the rest); a changed file
// re-runs its COPY; --no-cache runs everything.
func TestBuildCache(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"Dockerfile": "FROM base\nENV E=1\nCOPY f /f\nARG A\nRUN make $A\nCMD [\"x\"]\n", "f": "v1"})
	first, err := runBuild(t, f, dir, Options{BuildArgs: map[string]*string{"A": ptr("1")}})
	if err != nil {
		t.Fatal(err)
	}
	made := len(f.steps)
	again, err := runBuild(t, f, dir, Options{BuildArgs: map[string]*string{"A": ptr("1")}})
	if err != nil || again.id != first.id || len(f.steps) != made || strings.Count(again.out, " ---> Using cache\n") != 5 {
		t.Errorf("second build: %v, %s vs %s, %d new steps:\n%s", err, again.id, first.id, len(f.steps)-made, again.out)
	}
	other, err := runBuild(t, f, dir, Options{BuildArgs: map[string]*string{"A": ptr("2")}})
	if err != nil || other.id == first.id || strings.Count(other.out, " ---> Using cache\n") != 3 || len(f.steps) != made+2 {
		t.Errorf("another arg: %v, cached %d times, %d new steps:\n%s", err, strings.Count(other.out, "Using cache"), len(f.steps)-made, other.out)
	}
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("v2"), 0o640))
	changed, _ := runBuild(t, f, dir, Options{BuildArgs: map[string]*string{"A": ptr("1")}})
	if n := strings.Count(changed.out, " ---> Using cache\n"); n != 1 || changed.id == first.id {
		t.Errorf("a changed file: %d cached steps, want ENV's alone:\n%s", n, changed.out)
	}
	nocache, _ := runBuild(t, f, dir, Options{NoCache: true, BuildArgs: map[string]*string{"A": ptr("1")}})
	if strings.Contains(nocache.out, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", nocache.out)
	}
}

// TestBuildArgs: ARG scoping as moby's: a meta ARG feeds FROM and, named
// again without a value, the stage; a stage's ARG is its own; ENV wins
// over an ARG of the same name; an undeclared --build-arg is warned
// about, a built-in proxy one is not.
func TestBuildArgs(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"Dockerfile": "ARG TAG=base\nARG OTHER=o\nFROM ${TAG}\nARG TAG\nARG LOCAL=l\nENV LOCAL=env\n" +
		"RUN echo $TAG $OTHER $LOCAL\nFROM base\nRUN echo $LOCAL\n"})
	r, err := runBuild(t, f, dir, Options{BuildArgs: map[string]*string{"EXTRA": ptr("x"), "no_proxy": ptr("y"), "NONE": nil}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.runs[0].Env; !slices.Equal(got, []string{"PATH=/bin", "FROM_BASE=1", "LOCAL=env", "TAG=base", "no_proxy=y"}) {
		t.Errorf("first stage's RUN env: %q", got)
	}
	if got := f.runs[1].Env; !slices.Equal(got, []string{"PATH=/bin", "FROM_BASE=1", "no_proxy=y"}) {
		t.Errorf("second stage's RUN env: %q (LOCAL is the first stage's)", got)
	}
	if !strings.Contains(r.out, "[Warning] One or more build-args [EXTRA NONE] were not consumed\n") {
		t.Errorf("no warning for undeclared args:\n%s", r.out)
	}
	if len(r.aux) != 2 {
		t.Errorf("aux per stage: %q", r.aux)
	}
}

// TestBuildCopy: COPY's sources and destinations as moby's: a file to a
// path or into a directory, a directory's contents, wildcards, several
// sources into a "/" destination, owners root's unless --chown (names
// from the image's passwd and group) or --from (kept), modes kept, a
// destination resolved through the image's links inside the image, a
// source link resolved inside the context.
func TestBuildCopy(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{
		"a.txt": "A", "b.txt": "B", "d/x": "X", "d/sub/y": "Y", "d/link": "->x",
		"up": "->../../../../etc/hostname", "abs": "->/a.txt", "priv/z": "Z",
	})
	must(t, os.Chmod(filepath.Join(dir, "priv"), 0o700))
	cases := []struct {
		df   string
		want []string
	}{
		{"COPY a.txt /file", []string{"file -rw-r----- 0:0 A"}},
		{"COPY a.txt /srv/existing", []string{"srv drwxr-xr-x 0:0", "srv/existing drwxr-xr-x 0:0", "srv/existing/a.txt -rw-r----- 0:0 A"}},
		{"COPY a.txt /new/", []string{"new drwxr-xr-x 0:0", "new/a.txt -rw-r----- 0:0 A"}},
		{"COPY d /dd", []string{"dd drwxr-xr-x 0:0", "dd/link Lrwxrwxrwx 0:0 -> x", "dd/sub drwxr-xr-x 0:0", "dd/sub/y -rw-r----- 0:0 Y", "dd/x -rw-r----- 0:0 X"}},
		{"COPY *.txt /t/", []string{"t drwxr-xr-x 0:0", "t/a.txt -rw-r----- 0:0 A", "t/b.txt -rw-r----- 0:0 B"}},
		{"COPY --chown=app:staff a.txt ./rel", []string{"rel -rw-r----- 1001:50 A"}},
		{"COPY --chown=7 a.txt /n", []string{"n -rw-r----- 7:7 A"}},
		// /run is the image's link to /var/run-real: the file goes there.
		{"COPY a.txt /run/", []string{"var drwxr-xr-x 0:0", "var/run-real drwxr-xr-x 0:0", "var/run-real/a.txt -rw-r----- 0:0 A"}},
		// /hostetc -> /etc in the image: its /etc, never the host's.
		{"COPY b.txt /hostetc/b", []string{"etc drwxr-xr-x 0:0", "etc/b -rw-r----- 0:0 B"}},
		// A source link to an absolute path is the context's file.
		{"COPY abs /abs", []string{"abs -rw-r----- 0:0 A"}},
		{`COPY ["a.txt", "b.txt", "/j/"]`, []string{"j drwxr-xr-x 0:0", "j/a.txt -rw-r----- 0:0 A", "j/b.txt -rw-r----- 0:0 B"}},
		// A directory's new destination is 0755 and root's (the --chown
		// owner's), whatever the source directory's mode: moby's
		// CopyWithTar. Its new parents are root's, a file's the owner's.
		{"COPY priv /p", []string{"p drwxr-xr-x 0:0", "p/z -rw-r----- 0:0 Z"}},
		{"COPY --chown=7 priv /c1/c2", []string{"c1 drwxr-xr-x 0:0", "c1/c2 drwxr-xr-x 7:7", "c1/c2/z -rw-r----- 7:7 Z"}},
		{"COPY --chown=7 a.txt /f1/f2", []string{"f1 drwxr-xr-x 7:7", "f1/f2 -rw-r----- 7:7 A"}},
	}
	for _, tc := range cases {
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM base\n"+tc.df+"\n"), 0o644))
		r, err := runBuild(t, f, dir, Options{NoCache: true})
		if err != nil {
			t.Errorf("%s: %v", tc.df, err)
			continue
		}
		if got := f.layers[r.id]; !slices.Equal(got, tc.want) {
			t.Errorf("%s: layer\n%q\nwant\n%q", tc.df, got, tc.want)
		}
	}
	for df, want := range map[string]string{
		"COPY up /x":                 "file not found in build context or excluded by .dockerignore: stat up: file does not exist",
		"COPY a.txt b.txt /dir":      "When using COPY with more than one source file, the destination must be a directory and end with a /",
		"COPY nope*.txt /x/":         "COPY failed: no source files were specified",
		"COPY a.txt":                 "COPY requires at least two arguments",
		"COPY --chmod=644 a /b":      "the --chmod option requires BuildKit",
		"COPY --chown=ghost a.txt /": "can't find uid for user ghost: no such user: ghost",
		"COPY --from=nope a /b":      "invalid from flag value nope: pull access denied for nope",
		"COPY --from=0 a /b":         "invalid from flag value 0: refers to current build stage",
		"ADD https://x/y /y":         "berth does not download build sources",
		"COPY --bogus a /b":          "unknown flag: bogus",
		// A file of the image where a directory goes fails the step, as
		// moby's MkdirAll does, and is never made a directory.
		"COPY a.txt /etc/passwd/x": "failed to copy files: mkdir /etc/passwd: not a directory",
		"COPY d /etc/passwd":       "failed to copy files: mkdir /etc/passwd: not a directory",
		"WORKDIR /etc/passwd":      "Cannot mkdir: /etc/passwd is not a directory",
		"WORKDIR /etc/passwd/sub":  "mkdir /etc/passwd: not a directory",
	} {
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM base\n"+df+"\n"), 0o644))
		if _, err := runBuild(t, f, dir, Options{NoCache: true}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", df, err, want)
		}
	}
}

// TestBuildAddCompressedTars: ADD unpacks a local tar compressed with
// xz or zstd, as with gzip and bzip2 (moby's DecompressStream; the
// official images' Dockerfiles start "ADD rootfs.tar.xz /"): it was
// copied as a file.
func TestBuildAddCompressedTars(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"in/f": "packed"})
	for _, c := range []struct{ name, flag string }{{"t.tar.xz", "--xz"}, {"t.tar.zst", "--zstd"}, {"t.tar.bz2", "--bzip2"}, {"t.tar.gz", "--gzip"}} {
		if out, err := exec.Command("tar", "-C", filepath.Join(dir, "in"), c.flag, "--owner=0", "--group=0", "-cf", filepath.Join(dir, c.name), "f").CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v %s", c.flag, err, out)
		}
	}
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"),
		[]byte("FROM base\nADD t.tar.xz /xz/\nADD t.tar.zst /zst/\nADD t.tar.bz2 /bz2/\nADD t.tar.gz /gz/\n"), 0o644))
	r, err := runBuild(t, f, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := listTree(t, f.images[r.id].Root)
	for _, d := range []string{"xz", "zst", "bz2", "gz"} {
		if want := d + "/f -rw-r----- 0:0 packed"; !slices.Contains(got, want) {
			t.Errorf("ADD of a %s tar: no %q in %q", d, want, got)
		}
	}
}

// TestBuildStages: COPY --from a stage by name and by index keeps the
// owners there; FROM a stage starts from its image; --target stops at
// one; ADD unpacks a local tar (its owners kept) but copies other files.
func TestBuildStages(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"plain.gz.txt": "text"})
	tarPath := filepath.Join(dir, "t.tar")
	if out, err := exec.Command("tar", "-C", dir, "--owner=5", "--group=6", "-cf", tarPath, "plain.gz.txt").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	df := "FROM base AS one\nCOPY --chown=9:9 plain.gz.txt /made\nFROM one AS two\nCOPY --from=one /made /again\nCOPY --from=0 /made /byindex\n" +
		"FROM base\nADD t.tar /x/\nADD plain.gz.txt /y\n"
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
	r, err := runBuild(t, f, dir, Options{Target: "TWO"})
	if err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, f.images[r.id].Root); !slices.Contains(got, "again -rw-r----- 9:9 text") || !slices.Contains(got, "byindex -rw-r----- 9:9 text") ||
		!slices.Contains(got, "made -rw-r----- 9:9 text") {
		t.Errorf("stage two's tree: %q", got)
	}
	if strings.Contains(r.out, "ADD") {
		t.Errorf("--target two ran the stage after it:\n%s", r.out)
	}
	r, err = runBuild(t, f, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := listTree(t, f.images[r.id].Root)
	if !slices.Contains(got, "x/plain.gz.txt -rw-r----- 5:6 text") || !slices.Contains(got, "y -rw-r----- 0:0 text") {
		t.Errorf("ADD: %q", got)
	}
	if _, err := runBuild(t, f, dir, Options{Target: "three"}); err == nil || err.Error() != `target stage "three" could not be found` {
		t.Errorf("a missing target: %v", err)
	}
}

// TestBuildOnBuild: a base's ONBUILD triggers run right after its FROM,
// and the child image has none.
func TestBuildOnBuild(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	f.add("trig", &Image{ID: "sha256:trig", Root: f.images["base"].Root, Config: &image.Config{Env: []string{"PATH=/bin"}, OnBuild: []string{"RUN make", "ENV BUILT=1"}}})
	dir := writeCtx(t, map[string]string{"Dockerfile": "FROM trig\nCMD [\"run\"]\n"})
	r, err := runBuild(t, f, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.out, "Step 1/2 : FROM trig\n# Executing 2 build triggers\n ---> Running in c0ffee\nran make\n") {
		t.Errorf("output:\n%s", r.out)
	}
	if c := f.images[r.id].Config; len(c.OnBuild) != 0 || !slices.Contains(c.Env, "BUILT=1") {
		t.Errorf("the child's config: %+v", c)
	}
}

// TestBuildFailures: errors in moby's words: a failed RUN with its
// command and code, Dockerfile mistakes with their line, what the legacy
// builder cannot do.
func TestBuildFailures(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	f.fail = "boom"
	dir := writeCtx(t, map[string]string{"Dockerfile": "FROM base\nRUN echo boom\n", "empty": "\n\n", "zero": "", "notfrom": "RUN x\n",
		"badflag": "FROM base\nRUN --network=none true\n", "unknown": "FROM base\nFETCH x\n",
		"dupname": "FROM base AS a\nFROM base AS a\n", "nobase": "FROM missing\n", "plat": "FROM --platform=" + otherPlatform + " base\n",
		"onlyarg": "ARG X=1\n", "envflag": "FROM base\nENV --x A=1\n", "argflag": "ARG --y X\nFROM base\n"})
	_, err := runBuild(t, f, dir, Options{})
	var se *StepError
	if !errorsAs(err, &se) || se.Code != 3 || se.Msg != "The command '/bin/sh -c echo boom' returned a non-zero code: 3" {
		t.Errorf("a failed RUN: %v", err)
	}
	for name, want := range map[string]string{
		"nothere": "Cannot locate specified Dockerfile: nothere",
		"zero":    "the Dockerfile (zero) cannot be empty",
		"empty":   "failed to parse empty: file with no instructions", // blank lines alone: buildkit's parser
		"notfrom": "dockerfile parse error on line 1: no build stage in current context",
		"badflag": "the --network option requires BuildKit",
		"unknown": "dockerfile parse error on line 2: unknown instruction: FETCH",
		"dupname": "a stage name already used",
		"nobase":  "pull access denied for missing",
		"plat":    "berth builds for linux/" + runtime.GOARCH + " only, not " + otherPlatform,
		"onlyarg": "No image was generated. Is your Dockerfile empty?",
		"envflag": "dockerfile parse error on line 2: unknown flag: x",
		"argflag": "dockerfile parse error on line 1: unknown flag: y",
	} {
		_, err := runBuild(t, f, dir, Options{Dockerfile: name})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}

// otherPlatform is a platform that is not the host's.
var otherPlatform = map[bool]string{true: "linux/arm64", false: "linux/s390x"}[runtime.GOARCH == "s390x"]

func errorsAs(err error, target **StepError) bool {
	se, ok := err.(*StepError)
	if ok {
		*target = se
	}
	return ok
}

// TestInScope: paths resolved in a tree as a chroot would: links,
// absolute or relative, and ".." stay inside.
func TestInScope(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "a/b"), 0o755))
	must(t, os.Symlink("/a", filepath.Join(root, "abs")))
	must(t, os.Symlink("../../../..", filepath.Join(root, "a/up")))
	must(t, os.Symlink("loop", filepath.Join(root, "loop")))
	for in, want := range map[string]string{
		"a/b": "a/b", "/abs/b": "a/b", "a/up/a/b": "a/b", "../../a": "a", "abs/../abs": "a", "/": "", "a/up": "",
	} {
		got, err := inScope(root, in, true)
		if err != nil || got != want {
			t.Errorf("inScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, _ := inScope(root, "abs", false); got != "abs" {
		t.Errorf("the last link, not followed: %q", got)
	}
	if _, err := inScope(root, "loop", true); err == nil {
		t.Errorf("a link loop resolved")
	}
}

// TestDockerignoreBuildFiles: the Dockerfile and .dockerignore the CLI
// always sends are dropped from the context once read when .dockerignore
// excludes them, as moby's removeDockerfile; patterns as moby's
// patternmatcher reads them.
func TestDockerignoreBuildFiles(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"build/app.df": "FROM base\nCOPY . /ctx/\n", ".dockerignore": "# comment\n**/*.df\n.dockerignore\n", "keep": "k"})
	r, err := runBuild(t, f, dir, Options{Dockerfile: "build/app.df"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.layers[r.id]; !slices.Equal(got, []string{"ctx drwxr-xr-x 0:0", "ctx/build drwxr-xr-x 0:0", "ctx/keep -rw-r----- 0:0 k"}) {
		t.Errorf("the context copied: %q", got)
	}
	patterns := []ignorePattern{}
	for _, line := range []string{"*.md", "!README.md", "docs", "a?c", "**/tmp", "x/**/y", "[ab].txt"} {
		p := ignorePattern{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			p.exclude, line = true, rest
		}
		p.re = regexpMust(patternRegexp(line))
		patterns = append(patterns, p)
	}
	for file, want := range map[string]bool{
		"NOTES.md": true, "README.md": false, "sub/NOTES.md": false, "docs/x": true, "abc": true, "abbc": false,
		"tmp": true, "a/b/tmp/f": true, "x/y": true, "x/1/2/y": true, "b.txt": true, "c.txt": false, "Dockerfile": false,
	} {
		if got := ignored(file, patterns); got != want {
			t.Errorf("ignored(%q) = %v, want %v", file, got, want)
		}
	}
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// TestBuildReviewed: what a review found, each with the input that showed
// it: a COPY --from a stage with no files reads nothing (never the
// daemon's working directory); a link a later source puts where a
// directory was leads no directory's times out of the layer; --chown's
// lookup reads only a regular passwd (not a FIFO the image made); the
// cache tells files of the same content by name, and RUN's exec form
// from its shell form; ADD copies a gzip file that is no tar; COPY's
// JSON form expands variables; the history has the destination as
// written.
func TestBuildReviewed(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	victim := t.TempDir()
	must(t, os.Mkdir(filepath.Join(victim, "etc"), 0o755))
	old := time.Unix(1000000, 0)
	must(t, os.Chtimes(filepath.Join(victim, "etc"), old, old))
	dir := writeCtx(t, map[string]string{"a.txt": "same", "b.txt": "same", "s1/a/etc/f": "x", "s2/a": "->" + victim,
		"plain.gz": "", "Dockerfile": ""})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("not a tar"))
	zw.Close()
	must(t, os.WriteFile(filepath.Join(dir, "plain.gz"), gz.Bytes(), 0o644))
	fifoRoot := t.TempDir()
	must(t, os.Mkdir(filepath.Join(fifoRoot, "etc"), 0o755))
	must(t, syscall.Mkfifo(filepath.Join(fifoRoot, "etc/passwd"), 0o644))
	f.add("fifo", &Image{ID: "sha256:fifo", Root: fifoRoot, Config: &image.Config{}})
	build := func(df string) (result, error) {
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
		return runBuild(t, f, dir, Options{})
	}
	if _, err := build("FROM scratch AS empty\nFROM base\nCOPY --from=empty Dockerfile /stolen\n"); err == nil || !strings.Contains(err.Error(), "stat Dockerfile: file does not exist") {
		t.Errorf("COPY --from an empty stage: %v", err)
	}
	if _, err := build("FROM base\nCOPY s1 s2 /d/\n"); err != nil {
		t.Errorf("COPY s1 s2: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(victim, "etc")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("a directory's times reached through a source's link: %v %v", fi.ModTime(), err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := build("FROM fifo\nCOPY --chown=app a.txt /a\n")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no such user: app") {
			t.Errorf("--chown with a FIFO for passwd: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--chown with a FIFO for passwd hung the build")
	}
	first, _ := build("FROM base\nCOPY a.txt /d/\n")
	second, err := build("FROM base\nCOPY b.txt /d/\n")
	if err != nil || strings.Contains(second.out, "Using cache") || !slices.Contains(f.layers[second.id], "d/b.txt -rw-r----- 0:0 same") {
		t.Errorf("a file of the same content by another name: %v, %s vs %s\n%s", err, first.id, second.id, second.out)
	}
	build("FROM base\nRUN echo a b\n")
	if r, _ := build("FROM base\nRUN [\"/bin/sh\", \"-c\", \"echo\", \"a\", \"b\"]\n"); strings.Contains(r.out, "Using cache") {
		t.Errorf("RUN's exec form hit its shell form's cache:\n%s", r.out)
	}
	if r, err := build("FROM base\nADD plain.gz /p/\n"); err != nil || !slices.Contains(f.layers[r.id], fmt.Sprintf("p/plain.gz -rw-r----- 0:0 %s", strings.TrimSpace(gz.String()))) {
		t.Errorf("ADD of a gzip file that is no tar: %v %q", err, f.layers[r.id])
	}
	if r, err := build("FROM base\nENV SRC=a.txt\nCOPY [\"$SRC\", \"rel/\"]\n"); err != nil || !slices.Contains(f.layers[r.id], "rel/a.txt -rw-r----- 0:0 same") {
		t.Errorf("COPY's JSON form with a variable: %v %q", err, f.layers[r.id])
	}
	if last := f.steps[len(f.steps)-1].CreatedBy; !strings.HasSuffix(last, " in rel/ ") {
		t.Errorf("history: %q, want the destination as written", last)
	}
	// A character device 0:0 would be a whiteout in the layer: refused,
	// copied or unpacked.
	must(t, syscall.Mknod(filepath.Join(dir, "wh"), syscall.S_IFCHR|0o644, 0))
	if _, err := build("FROM base\nCOPY wh /bin\n"); err == nil || !strings.Contains(err.Error(), "character device 0:0") {
		t.Errorf("COPY of a 0:0 device: %v", err)
	}
	must(t, os.Remove(filepath.Join(dir, "wh")))
	tf, err := os.Create(filepath.Join(dir, "wh.tar"))
	must(t, err)
	tw := tar.NewWriter(tf)
	must(t, tw.WriteHeader(&tar.Header{Name: "bin", Typeflag: tar.TypeChar, Mode: 0o644}))
	must(t, tw.Close())
	tf.Close()
	if _, err := build("FROM base\nADD wh.tar /\n"); err == nil || !strings.Contains(err.Error(), "character device 0:0") {
		t.Errorf("ADD of a tar with a 0:0 device: %v", err)
	}
}

// TestBuildOptions: --platform of another architecture refused from the
// request too; --pull warned about; --label values taken as they are
// (quotes, blanks, no variables); the default Dockerfile name falls back
// to "dockerfile"; COPY --from a local image by name.
func TestBuildOptions(t *testing.T) {
	needRoot(t)
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"dockerfile": "FROM base\nCOPY --from=base /etc/group /g\n"})
	if _, err := runBuild(t, f, dir, Options{Platform: otherPlatform}); err == nil || !strings.Contains(err.Error(), "not "+otherPlatform) {
		t.Errorf("--platform %s: %v", otherPlatform, err)
	}
	r, err := runBuild(t, f, dir, Options{Pull: true, Labels: map[string]string{"q": `it's "x" $HOME`, "sp": "a b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.out, "[Warning] berth does not pull images") {
		t.Errorf("--pull said nothing:\n%s", r.out)
	}
	if got := f.images[r.id].Config.Labels; !cmp.Equal(got, map[string]string{"q": `it's "x" $HOME`, "sp": "a b"}) {
		t.Errorf("labels: %q", got)
	}
	var copied []string
	for id, l := range f.layers {
		if strings.Contains(strings.Join(l, "\n"), "g -rw-r--r-- 0:0 root:x:0:") {
			copied = append(copied, id)
		}
	}
	if len(copied) == 0 {
		t.Errorf("COPY --from=base: %q", f.layers)
	}
}

// TestBuildPrecheck: a Dockerfile's mistakes are found before any step
// runs, as moby's legacy builder parses the whole file first (buildkit's
// instructions.Parse, "dockerfile parse error on line N"), in every
// stage whatever --target says; what needs the build's variables stays
// the step's.
func TestBuildPrecheck(t *testing.T) {
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"a": "A"})
	for bad, want := range map[string]string{
		"HEALTHCHECK --interval=abc CMD true": "line 3:",
		"COPY --bogus=1 a b":                  "dockerfile parse error on line 3: unknown flag: bogus",
		"EXPOSE":                              "dockerfile parse error on line 3: EXPOSE requires at least one argument",
		"COPY onlyone":                        "dockerfile parse error on line 3: COPY requires at least two arguments, but only one was provided. Destination could not be determined",
		"ENV FOO":                             "dockerfile parse error on line 3: ENV must have two arguments",
		"ENV A=1 B":                           `dockerfile parse error on line 3: Syntax error - can't find = in "B". Must be of the form: name=value`,
		"ONBUILD ONBUILD RUN x":               "dockerfile parse error on line 3: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
		"ONBUILD FROM x":                      "dockerfile parse error on line 3: FROM isn't allowed as an ONBUILD trigger",
		"FOO bar":                             "dockerfile parse error on line 3: unknown instruction: FOO",
		"USER":                                "dockerfile parse error on line 3: USER requires exactly one argument",
		"RUN --bogus true":                    "dockerfile parse error on line 3: unknown flag: bogus",
		`SHELL sh -c`:                         "dockerfile parse error on line 3: SHELL requires the arguments to be in JSON form",
		"RUN --security=insecure true":        "dockerfile parse error on line 3: unknown flag: security",
		`VOLUME []`:                           "dockerfile parse error on line 3: VOLUME requires at least one argument",
		`VOLUME ["/a", ""]`:                   "dockerfile parse error on line 3: VOLUME specified can not be an empty string",
	} {
		f.runs = nil
		// The mistake is in a later stage than --target's: found all the same.
		df := "FROM base AS one\nRUN echo first\n" + bad + "\nFROM base AS two\n"
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
		_, err := runBuild(t, f, dir, Options{NoCache: true})
		if err == nil || !strings.Contains(err.Error(), want) || !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%s: %v, want %q", bad, err, want)
		}
		if len(f.runs) != 0 {
			t.Errorf("%s: a RUN ran before the mistake was found", bad)
		}
		df = "FROM base AS one\nRUN echo first\nFROM base AS two\n" + bad + "\n"
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
		if _, err := runBuild(t, f, dir, Options{NoCache: true, Target: "one"}); err == nil {
			t.Errorf("%s in a stage after --target's: no error", bad)
		}
	}
	// Variables are the step's: EXPOSE $P with P from an ARG builds.
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM base\nARG P=80\nEXPOSE $P\nLABEL \"a b\"=c\nUSER $P\n"), 0o644))
	if _, err := runBuild(t, f, dir, Options{NoCache: true}); err != nil {
		t.Errorf("a Dockerfile of variables: %v", err)
	}
}

// TestBuildNoInstructions: a Dockerfile of comments alone fails in
// moby's words.
func TestBuildNoInstructions(t *testing.T) {
	f := newFake(t)
	dir := writeCtx(t, map[string]string{"Dockerfile": "# nothing\n\n# here\n"})
	if _, err := runBuild(t, f, dir, Options{}); err == nil || err.Error() != "failed to parse Dockerfile: file with no instructions" {
		t.Errorf("comments alone: %v", err)
	}
}
