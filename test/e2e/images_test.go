package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveAnImageInUse: docker rmi of the image of a running container
// is refused even with -f (moby's hard conflict) and the container keeps
// its files; with only a stopped container, the image is refused without
// -f in moby's words, and forced by ID it is untagged but kept, since its
// files are the container's lower layer: the container starts again.
func TestRemoveAnImageInUse(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "import", "--change", "ENV IN_USE=1", filepath.Join(w.Dir, "busybox.tar"), "inuse")
	id := dockerInspect(t, w, "{{.Id}}", "inuse")
	short := strings.TrimPrefix(id, "sha256:")[:12]
	ctr := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--name", "up", "inuse", "sleep", "1000"))[:12]

	for _, force := range []bool{false, true} {
		args := []string{"rmi", id}
		if force {
			args = []string{"rmi", "-f", id}
		}
		_, errOut, code := w.Docker(t, args...)
		want := fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", short, ctr)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("docker %s: exit %d, %q; want %q", strings.Join(args, " "), code, errOut, want)
		}
	}
	if out := mustDocker(t, w, "exec", "up", "ls", "/bin"); !strings.Contains(out, "busybox") {
		t.Errorf("the running container lost its files: ls /bin = %q", out)
	}
	_, errOut, code := w.Docker(t, "rmi", "inuse")
	if want := fmt.Sprintf(`conflict: unable to remove repository reference "inuse" (must force) - container %s is using its referenced image %s`, ctr, short); code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("docker rmi inuse: exit %d, %q; want %q", code, errOut, want)
	}

	mustDocker(t, w, "stop", "-t", "0", "up")
	_, errOut, code = w.Docker(t, "rmi", id)
	if want := fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, ctr); code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("docker rmi of a stopped container's image: exit %d, %q; want %q", code, errOut, want)
	}
	if out := mustDocker(t, w, "rmi", "-f", id); strings.TrimSpace(out) != "Untagged: inuse:latest" {
		t.Errorf("docker rmi -f of a stopped container's image printed %q, want only the untag", out)
	}
	mustDocker(t, w, "start", "up")
	if out := mustDocker(t, w, "exec", "up", "sh", "-c", "echo $IN_USE"); strings.TrimSpace(out) != "1" {
		t.Errorf("the container after its image was untagged: echo $IN_USE = %q", out)
	}
	mustDocker(t, w, "rm", "-f", "up")
	if out := mustDocker(t, w, "rmi", id); !strings.Contains(out, "Deleted: "+id) {
		t.Errorf("docker rmi once no container uses it printed %q, want Deleted: %s", out, id)
	}
}

// TestImageLabels: the labels of an image's config (import --change
// LABEL) show in docker images and are what its label filters and
// image prune's label and label! match: a label! filter keeps the
// images it names.
func TestImageLabels(t *testing.T) {
	w, _ := startWorld(t)
	tar := filepath.Join(w.Dir, "busybox.tar")
	mustDocker(t, w, "import", "--change", "LABEL keep=yes", tar, "kept")
	mustDocker(t, w, "import", "--change", "ENV OTHER=1", tar, "other")
	if out := mustDocker(t, w, "images", "--filter", "label=keep", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "kept" {
		t.Errorf("docker images --filter label=keep = %q, want only kept", out)
	}
	out := mustDocker(t, w, "image", "prune", "-a", "-f", "--filter", "label!=keep")
	if !strings.Contains(out, "untagged: other:latest") || strings.Contains(out, "kept") {
		t.Errorf("docker image prune -a --filter label!=keep printed:\n%s\nwant other removed and kept left", out)
	}
	if out := mustDocker(t, w, "images", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "kept" {
		t.Errorf("docker images after the prune = %q, want only kept", out)
	}
}
