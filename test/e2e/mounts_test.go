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
	if got := dockerInspect(t, w, "{{json .HostConfig.Binds}} {{json .HostConfig.Tmpfs}}", "m1"); got != `["`+conf+`:/etc/app:ro","`+data+`:/data"] {"/run/scratch":"size=1m"}` {
		t.Errorf("HostConfig.Binds and Tmpfs: %s", got)
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
	// --mount refuses a source that is not there, in moby's words.
	_, errOut, code := w.Docker(t, "run", "--rm", "--mount", "type=bind,source="+filepath.Join(host, "nope")+",target=/x", testworld.BusyboxImage, "true")
	if code == 0 || !strings.Contains(errOut, `invalid mount config for type "bind": bind source path does not exist: `+filepath.Join(host, "nope")) {
		t.Errorf("--mount of a missing source: exit %d, %q", code, errOut)
	}
}
