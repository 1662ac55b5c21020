package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestVolumesFrom: Docker's documented backup and restore of a data
// container through --volumes-from, with the docker CLI; :ro; the copy
// taking the place of -v /path's anonymous volume but not of the
// container's own bind; a chain of two; moby's 400 for a container that
// is not there (no pull attempt); the volume kept while a copy uses it
// and removed with the last rm -v.
func TestVolumesFrom(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	mustDocker(t, w, "create", "-v", "/dbdata", "--name", "dbstore", bb, "/bin/true")
	vol := dockerInspect(t, w, "{{range .Mounts}}{{.Name}}{{end}}", "dbstore")
	if len(vol) != 64 {
		t.Fatalf("dbstore's anonymous volume: %q", vol)
	}
	mustDocker(t, w, "run", "--rm", "--volumes-from", "dbstore", bb, "sh", "-c", "mkdir /dbdata/t && echo row1 > /dbdata/t/rows")

	// The backup, as Docker's documentation writes it.
	backup := t.TempDir()
	mustDocker(t, w, "run", "--rm", "--volumes-from", "dbstore", "-v", backup+":/backup", bb, "tar", "cf", "/backup/backup.tar", "/dbdata")
	if fi, err := os.Stat(filepath.Join(backup, "backup.tar")); err != nil || fi.Size() == 0 {
		t.Fatalf("the backup on the host: %v", err)
	}
	// The restore into a new data container.
	mustDocker(t, w, "run", "-v", "/dbdata", "--name", "dbstore2", bb, "true")
	mustDocker(t, w, "run", "--rm", "--volumes-from", "dbstore2", "-v", backup+":/backup", bb, "sh", "-c", "cd /dbdata && tar xf /backup/backup.tar --strip 1")
	if out := mustDocker(t, w, "run", "--rm", "--volumes-from", "dbstore2", bb, "cat", "/dbdata/t/rows"); out != "row1\n" {
		t.Errorf("the restored data: %q", out)
	}

	// :ro makes every copied mount read-only; inspect shows the value
	// and the other container's volume.
	mustDocker(t, w, "create", "--name", "reader", "--volumes-from", "dbstore:ro", bb, "sh", "-c", "cat /dbdata/t/rows; touch /dbdata/x && echo WROTE")
	if out, _, _ := w.Docker(t, "start", "-a", "reader"); !strings.HasPrefix(out, "row1\n") || strings.Contains(out, "WROTE") {
		t.Errorf("a :ro copy: %q", out)
	}
	wantInspected(t, w, "reader", map[string]string{
		"{{json .HostConfig.VolumesFrom}}":                                     `["dbstore:ro"]`,
		"{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}": "volume " + vol + " /dbdata false",
	})

	// The copy takes the place of -v /path's anonymous volume (moby mounts
	// Config.Volumes only where nothing else is), not of a bind of the
	// container's own.
	if got := strings.TrimSpace(mustDocker(t, w, "run", "--rm", "-v", "/dbdata", "--volumes-from", "dbstore", bb, "cat", "/dbdata/t/rows")); got != "row1" {
		t.Errorf("-v /dbdata beside --volumes-from: %q, want dbstore's volume", got)
	}
	own := t.TempDir()
	os.WriteFile(filepath.Join(own, "rows"), []byte("mine\n"), 0o644)
	if out := mustDocker(t, w, "run", "--rm", "-v", own+":/dbdata/t", "--volumes-from", "dbstore", bb, "cat", "/dbdata/t/rows"); out != "mine\n" {
		t.Errorf("a bind inside the copied volume: %q", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "-v", own+":/dbdata", "--volumes-from", "dbstore", bb, "cat", "/dbdata/rows"); out != "mine\n" {
		t.Errorf("the container's own bind at the copied destination: %q", out)
	}

	// A chain: a container whose mounts were copied lends them on.
	mustDocker(t, w, "create", "--name", "middle", "--volumes-from", "dbstore", bb, "true")
	if out := mustDocker(t, w, "run", "--rm", "--volumes-from", "middle", bb, "cat", "/dbdata/t/rows"); out != "row1\n" {
		t.Errorf("through a chain of two: %q", out)
	}

	// Not there: moby's 400 and words; the docker CLI does not take it
	// for a missing image.
	if _, errOut, code := w.Docker(t, "run", "--rm", "--volumes-from", "nope", bb, "true"); code != 125 || !strings.Contains(errOut, "No such container: nope") || strings.Contains(errOut, "Unable to find image") {
		t.Errorf("--volumes-from a missing container: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--volumes-from", "dbstore:rshared", bb, "true"); code != 125 || !strings.Contains(errOut, "invalid mode: rshared") {
		t.Errorf("--volumes-from with a propagation: exit %d, %q", code, errOut)
	}

	// The volume is the copies' too: rm -v of dbstore leaves it, the
	// last user's rm -v takes it (an anonymous volume, as moby's).
	mustDocker(t, w, "rm", "-v", "dbstore", "reader")
	if out := mustDocker(t, w, "start", "-a", "middle"); out != "" {
		t.Errorf("middle after dbstore is gone: %q", out)
	}
	if _, _, code := w.Docker(t, "volume", "inspect", vol); code != 0 {
		t.Fatal("rm -v dbstore removed a volume another container uses")
	}
	if _, errOut, code := w.Docker(t, "volume", "rm", vol); code == 0 || !strings.Contains(errOut, "volume is in use") {
		t.Errorf("docker volume rm of the copied volume: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "rm", "-v", "middle")
	if _, _, code := w.Docker(t, "volume", "inspect", vol); code == 0 {
		t.Error("the last rm -v left the anonymous volume")
	}
}
