package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestVolumes: named volumes as the local driver's — docker volume
// create, ls, inspect, rm (refused while used) — shared by containers
// and kept after them; a new volume gets the image's files at its path;
// anonymous volumes (-v /path) go with docker rm -v and run --rm; docker
// cp reads and writes them.
func TestVolumes(t *testing.T) {
	w, _ := startWorld(t)
	if out := mustDocker(t, w, "volume", "create", "--label", "app=shop", "data"); out != "data\n" {
		t.Errorf("docker volume create: %q", out)
	}
	mountpoint := dockerInspect(t, w, "{{.Mountpoint}} {{.Driver}} {{.Labels.app}}", "data")
	if !strings.HasSuffix(mountpoint, "/volumes/data/_data local shop") {
		t.Errorf("docker volume inspect data: %q", mountpoint)
	}
	mountpoint = strings.Fields(mountpoint)[0]
	mustDocker(t, w, "run", "--rm", "-v", "data:/data", testworld.BusyboxImage, "sh", "-c", "echo kept > /data/f")
	if out := mustDocker(t, w, "run", "--rm", "-v", "data:/data:ro", testworld.BusyboxImage, "cat", "/data/f"); out != "kept\n" {
		t.Errorf("a second container reads the volume: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(mountpoint, "f")); err != nil || string(b) != "kept\n" {
		t.Errorf("the volume's file on the host: %q, %v", b, err)
	}
	if out := mustDocker(t, w, "volume", "ls", "-q", "--filter", "label=app=shop"); out != "data\n" {
		t.Errorf("docker volume ls --filter label=app=shop: %q", out)
	}

	// In use: refused, with moby's words; --mount type=volume too.
	mustDocker(t, w, "run", "-d", "--name", "user1", "--mount", "type=volume,source=data,target=/d", testworld.BusyboxImage, "sleep", "600")
	if _, errOut, code := w.Docker(t, "volume", "rm", "data"); code == 0 || !strings.Contains(errOut, "remove data: volume is in use - [") {
		t.Errorf("docker volume rm of a used volume: exit %d, %q", code, errOut)
	}
	if got := dockerInspect(t, w, "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.RW}}{{end}}", "user1"); got != "volume data /d local true" {
		t.Errorf("inspect Mounts of a volume: %q", got)
	}
	// docker cp through the volume.
	if out := mustDocker(t, w, "cp", "user1:/d/f", "-"); !strings.Contains(out, "kept") {
		t.Errorf("docker cp out of a volume: %q", out)
	}

	// A new volume gets what the image has at its path (busybox's /etc).
	if out := mustDocker(t, w, "run", "--rm", "-v", "etcvol:/etc", testworld.BusyboxImage, "grep", "-c", "root", "/etc/passwd"); strings.TrimSpace(out) == "0" {
		t.Errorf("the image's /etc in a new volume: %q", out)
	}
	// nocopy: it stays empty (berth's /etc files are mounted on top).
	if _, errOut, code := w.Docker(t, "run", "--rm", "-v", "empty:/etc:nocopy", testworld.BusyboxImage, "ls", "/etc/passwd"); code == 0 || !strings.Contains(errOut, "No such file") {
		t.Errorf("a nocopy volume got the image's files: exit %d, %q", code, errOut)
	}

	// Anonymous volumes: made at create, gone with rm -v and with --rm.
	mustDocker(t, w, "run", "-d", "--name", "anon", "-v", "/scratch", testworld.BusyboxImage, "sleep", "600")
	name := dockerInspect(t, w, "{{range .Mounts}}{{.Name}}{{end}}", "anon")
	if len(name) != 64 {
		t.Fatalf("the anonymous volume's name: %q", name)
	}
	mustDocker(t, w, "rm", "-f", "-v", "anon")
	if _, _, code := w.Docker(t, "volume", "inspect", name); code == 0 {
		t.Error("docker rm -v left the anonymous volume")
	}
	before := mustDocker(t, w, "volume", "ls", "-q")
	mustDocker(t, w, "run", "--rm", "-v", "/tmpvol", testworld.BusyboxImage, "true")
	if after := mustDocker(t, w, "volume", "ls", "-q"); after != before {
		t.Errorf("run --rm left an anonymous volume: before %q, after %q", before, after)
	}
	// An anonymous volume over a file of the image: refused at create,
	// in moby's words, instead of failing every start.
	if _, errOut, code := w.Docker(t, "create", "--name", "overfile", "-v", "/etc/passwd", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "cannot mount volume over existing file, file exists /etc/passwd") {
		t.Errorf("docker create -v /etc/passwd: exit %d, %q", code, errOut)
	}
	if after := mustDocker(t, w, "volume", "ls", "-q"); after != before {
		t.Errorf("the refused create left a volume: before %q, after %q", before, after)
	}
	// Prune: unused anonymous volumes by default, all with -a; a volume
	// made by docker volume create without a name is anonymous too.
	mustDocker(t, w, "rm", "-f", "user1")
	mustDocker(t, w, "create", "--name", "anon2", "-v", "/x", testworld.BusyboxImage, "true")
	mustDocker(t, w, "rm", "anon2") // without -v: the volume stays
	unnamed := strings.TrimSpace(mustDocker(t, w, "volume", "create"))
	if got := dockerInspect(t, w, "{{json .Labels}}", unnamed); got != `{"com.docker.volume.anonymous":""}` {
		t.Errorf("docker volume create without a name: labels %s", got)
	}
	if out := mustDocker(t, w, "volume", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("docker volume prune: %q", out)
	}
	if out := mustDocker(t, w, "volume", "ls", "-q"); out != "data\nempty\netcvol\n" {
		t.Errorf("after prune (the anonymous one gone; data, empty and etcvol kept): %q", out)
	}
	mustDocker(t, w, "volume", "rm", "data")
	if _, err := os.Stat(mountpoint); err == nil {
		t.Error("docker volume rm left the volume's files")
	}

	// An anonymous volume mounted by its name is the user's: neither
	// --rm nor rm -v of that container removes it (moby: named mount
	// points are never removed).
	mustDocker(t, w, "run", "--name", "orig", "-v", "/keep", testworld.BusyboxImage, "sh", "-c", "echo precious > /keep/f")
	kept := dockerInspect(t, w, "{{range .Mounts}}{{.Name}}{{end}}", "orig")
	mustDocker(t, w, "rm", "orig")
	if out := mustDocker(t, w, "run", "--rm", "-v", kept+":/backup", testworld.BusyboxImage, "cat", "/backup/f"); out != "precious\n" {
		t.Errorf("reading an orphaned anonymous volume by name: %q", out)
	}
	if _, _, code := w.Docker(t, "volume", "inspect", kept); code != 0 {
		t.Error("run --rm removed an anonymous volume it mounted by name")
	}
	// The image's files are copied in once, at create: a volume emptied
	// later stays empty, and a file copied in before the first start sits
	// beside them.
	mustDocker(t, w, "run", "--rm", "-v", "cu:/etc", testworld.BusyboxImage, "sh", "-c", "rm -f /etc/passwd")
	if _, errOut, code := w.Docker(t, "run", "--rm", "-v", "cu:/etc", testworld.BusyboxImage, "cat", "/etc/passwd"); code == 0 || !strings.Contains(errOut, "No such file") {
		t.Errorf("an emptied volume was filled again: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "create", "--name", "cpc", "-v", "cpv:/etc", testworld.BusyboxImage, "sh", "-c", "cat /etc/new; grep -c root /etc/passwd")
	src := filepath.Join(t.TempDir(), "new")
	os.WriteFile(src, []byte("copied in\n"), 0o644)
	mustDocker(t, w, "cp", src, "cpc:/etc/new")
	if out, errOut, code := w.Docker(t, "start", "-a", "cpc"); code != 0 || out != "copied in\n1\n" {
		t.Errorf("docker cp into a volume before the first start: exit %d, %q, %q", code, out, errOut)
	}
	// docker system df counts the volumes; a boolean filter as moby reads it.
	if out := mustDocker(t, w, "system", "df", "--format", "{{.Type}} {{.TotalCount}}"); !strings.Contains(out, "Local Volumes ") || strings.Contains(out, "Local Volumes 0") {
		t.Errorf("docker system df: %q", out)
	}
	mustDocker(t, w, "rm", "cpc")
	mustDocker(t, w, "volume", "prune", "-f", "--filter", "all=True")
	if out := mustDocker(t, w, "volume", "ls", "-q"); out != "" {
		t.Errorf("volume prune --filter all=True left %q", out)
	}
}
