package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestBindAndTmpfsMounts: -v binds a host directory (made when missing),
// read-only with :ro; --mount binds one that must exist; --tmpfs and
// --mount type=tmpfs give a tmpfs (noexec unless exec is asked for);
// inspect lists the mount points as moby's; docker cp sees the binds.
func TestBindAndTmpfsMounts(t *testing.T) {
	w, _ := startWorld(t)
	host := t.TempDir()
	conf := filepath.Join(host, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "app.ini"), []byte("answer=42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(host, "made", "data") // -v makes it
	mustDocker(t, w, "run", "-d", "--name", "m1",
		"-v", conf+":/etc/app:ro", "-v", data+":/data",
		"--mount", "type=bind,source="+conf+",target=/conf2",
		"--tmpfs", "/run/scratch:size=1m", "--mount", "type=tmpfs,target=/cache,tmpfs-size=2097152",
		testworld.BusyboxImage, "sleep", "600")
	if out := mustDocker(t, w, "exec", "m1", "cat", "/etc/app/app.ini", "/conf2/app.ini"); out != "answer=42\nanswer=42\n" {
		t.Errorf("the bound files in m1: %q", out)
	}
	if _, _, code := w.Docker(t, "exec", "m1", "touch", "/etc/app/x"); code == 0 {
		t.Error("a write to the :ro bind succeeded")
	}
	mustDocker(t, w, "exec", "m1", "sh", "-c", "echo written > /data/out")
	if b, err := os.ReadFile(filepath.Join(data, "out")); err != nil || string(b) != "written\n" {
		t.Errorf("the container's write to /data, on the host: %q, %v", b, err)
	}
	out := mustDocker(t, w, "exec", "m1", "sh", "-c", "grep -E ' /run/scratch | /cache ' /proc/mounts")
	if !strings.Contains(out, "tmpfs /run/scratch tmpfs rw,nosuid,nodev,noexec") || !strings.Contains(out, "size=1024k") || !strings.Contains(out, "size=2048k") {
		t.Errorf("the tmpfs mounts in m1:\n%s", out)
	}
	// moby's MountPoints: the binds and --mount's tmpfs, not --tmpfs's.
	got := dockerInspect(t, w, `{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.Mode}} {{.RW}} {{.Propagation}};{{end}}`, "m1")
	want := "tmpfs  /cache  true ;bind " + conf + " /conf2  true rprivate;bind " + data + " /data  true rprivate;bind " + conf + " /etc/app ro false rprivate;"
	if got != want {
		t.Errorf("inspect Mounts:\n%s\nwant:\n%s", got, want)
	}
	// (The docker CLI sends -v's values in no set order.)
	if got := dockerInspect(t, w, "{{json .HostConfig.Binds}} {{json .HostConfig.Tmpfs}}", "m1"); got != `["`+conf+`:/etc/app:ro","`+data+`:/data"] {"/run/scratch":"size=1m"}` &&
		got != `["`+data+`:/data","`+conf+`:/etc/app:ro"] {"/run/scratch":"size=1m"}` {
		t.Errorf("HostConfig.Binds and Tmpfs: %s", got)
	}
	if got := dockerInspect(t, w, "{{range .HostConfig.Mounts}}{{.Type}}:{{.Target}} {{end}}", "m1"); got != "bind:/conf2 tmpfs:/cache" {
		t.Errorf("HostConfig.Mounts: %q, want the --mount specs as given", got)
	}
	// docker cp reads and writes through the binds, as the container sees them.
	if out := mustDocker(t, w, "cp", "m1:/etc/app/app.ini", "-"); !strings.Contains(out, "answer=42") {
		t.Errorf("docker cp out of a bind: %q", out)
	}
	src := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(src, []byte("in\n"), 0o644)
	mustDocker(t, w, "cp", src, "m1:/data/in.txt")
	if b, err := os.ReadFile(filepath.Join(data, "in.txt")); err != nil || string(b) != "in\n" {
		t.Errorf("docker cp into a bind, on the host: %q, %v", b, err)
	}
	if _, errOut, code := w.Docker(t, "cp", src, "m1:/etc/app/"); code == 0 || !strings.Contains(errOut, "mounted volume is marked read-only") {
		t.Errorf("docker cp into the :ro bind: exit %d, %q", code, errOut)
	}
	// The :ro bind stays read-only for docker cp however the path is
	// named: through a symlink to it, or from "/" with the tar's names.
	mustDocker(t, w, "exec", "m1", "ln", "-s", "/etc", "/etclink")
	for _, dst := range []string{"m1:/etclink/app/", "m1:/"} {
		tarIn := filepath.Join(t.TempDir(), "in.tar")
		writeTar(t, tarIn, [2]string{"etc/app/evil", "x"})
		if _, _, code := w.DockerIn(t, string(mustRead(t, tarIn)), "cp", "-", dst); code == 0 {
			t.Errorf("docker cp - %s wrote into the :ro bind", dst)
		}
	}
	if _, err := os.Stat(filepath.Join(conf, "evil")); err == nil {
		t.Error("a docker cp wrote through the :ro bind onto the host")
	}

	// A bind over /etc leaves berth's /etc files on top of it, as moby's.
	etc := t.TempDir()
	if out := mustDocker(t, w, "run", "--rm", "--hostname", "etcbox", "-v", etc+":/etc", testworld.BusyboxImage, "cat", "/etc/hostname"); out != "etcbox\n" {
		t.Errorf("/etc/hostname with a bind over /etc: %q", out)
	}
	// Read-only all the way down: a mount under a :ro bind's source too.
	sub := filepath.Join(etc, "sub")
	os.Mkdir(sub, 0o755)
	if _, errOut, code := w.InHost(t, "mount", "-t", "tmpfs", "tmpfs", sub); code != 0 {
		t.Fatalf("mount a tmpfs under the source: %s", errOut)
	}
	t.Cleanup(func() { w.InHost(t, "umount", sub) })
	if out, _, _ := w.Docker(t, "run", "--rm", "-v", etc+":/m:ro", testworld.BusyboxImage, "sh", "-c", "grep ' /m/sub ' /proc/mounts; touch /m/sub/x && echo WROTE"); !strings.Contains(out, " /m/sub tmpfs ro,") || strings.Contains(out, "WROTE") {
		t.Errorf("a mount below a :ro bind's source, in the container: %q; want it read-only", out)
	}
	// tmpfs-mode as typed (1777), and docker cp into a bind of a
	// container never started.
	if out := mustDocker(t, w, "run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-mode=1777", testworld.BusyboxImage, "stat", "-c", "%a", "/t"); out != "1777\n" {
		t.Errorf("tmpfs-mode=1777: %q", out)
	}
	fresh := t.TempDir()
	mustDocker(t, w, "create", "--name", "m2", "-v", fresh+":/gdata", testworld.BusyboxImage, "true")
	mustDocker(t, w, "cp", src, "m2:/gdata/f")
	if b, err := os.ReadFile(filepath.Join(fresh, "f")); err != nil || string(b) != "in\n" {
		t.Errorf("docker cp into a bind of a container never started: %q, %v", b, err)
	}

	// --mount refuses a source that is not there, in moby's words.
	_, errOut, code := w.Docker(t, "run", "--rm", "--mount", "type=bind,source="+filepath.Join(host, "nope")+",target=/x", testworld.BusyboxImage, "true")
	if code == 0 || !strings.Contains(errOut, `invalid mount config for type "bind": bind source path does not exist: `+filepath.Join(host, "nope")) {
		t.Errorf("--mount of a missing source: exit %d, %q", code, errOut)
	}
}

// writeTar writes a tar of regular files (name, body) at p.
func writeTar(t *testing.T, p string, files ...[2]string) {
	t.Helper()
	if err := os.WriteFile(p, tarBytes(t, files...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBindMountOfAFile: -v binds a host file as it binds a directory
// (`-v ./app.yml:/etc/app.yml`): the file is there, so nothing is made,
// as moby ignores the "not a directory" of making it (QA round 26: berth
// refused every such run).
func TestBindMountOfAFile(t *testing.T) {
	w, _ := startWorld(t)
	file := filepath.Join(t.TempDir(), "app.yml")
	if err := os.WriteFile(file, []byte("answer: 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustDocker(t, w, "run", "--rm", "-v", file+":/etc/app.yml:ro", testworld.BusyboxImage, "cat", "/etc/app.yml"); out != "answer: 42\n" {
		t.Errorf("the bound file reads %q", out)
	}
}
