package e2e

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestImagePruneImageByImage: docker image prune lists what it removed
// image by image, as moby's: each image's tags, then the image, then the
// next image's (berth listed every tag before every image).
func TestImagePruneImageByImage(t *testing.T) {
	w, _ := startWorld(t)
	tar := filepath.Join(w.Dir, "busybox.tar")
	ids := map[string]string{}
	for _, name := range []string{"first", "second"} {
		mustDocker(t, w, "import", "--change", "ENV WHICH="+name, tar, name)
		ids[name] = strings.TrimSpace(mustDocker(t, w, "images", "--no-trunc", "--format", "{{.ID}}", name))
	}
	since := strconv.FormatInt(time.Now().Unix(), 10)
	out := mustDocker(t, w, "image", "prune", "-a", "-f")
	// Its events too: each image's untag, then its delete.
	events := strings.Split(strings.TrimSpace(mustDocker(t, w, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}")), "\n")
	for _, id := range ids {
		i := slices.Index(events, "untag "+id)
		if i < 0 || i+1 >= len(events) || events[i+1] != "delete "+id {
			t.Errorf("image events of the prune:\n%s\nwant %s's untag followed at once by its delete", strings.Join(events, "\n"), id)
		}
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "untagged: ") || strings.HasPrefix(l, "deleted: ") {
			lines = append(lines, l)
		}
	}
	for name, id := range ids {
		i := slices.Index(lines, "untagged: "+name+":latest")
		if i < 0 || i+1 >= len(lines) || lines[i+1] != "deleted: "+id {
			t.Errorf("docker image prune -a printed:\n%s\nwant %s's tag followed at once by its image %s", out, name, id)
		}
	}
}

// TestDockerDiffStaysInTheImage: docker diff looks through the image's
// tree as overlayfs does, never through its symlinks on the host: an
// image whose /y points at a host directory, replaced by a directory in
// the container, lists nothing of the host's (QA round 27: it listed the
// host directory's names).
func TestDockerDiffStaysInTheImage(t *testing.T) {
	w, _ := startWorld(t)
	secret := filepath.Join(w.Dir, "secretdir")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secret, "host_only_file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(w.Dir, "evil.tar")
	withSymlink(t, filepath.Join(w.Dir, "busybox.tar"), evil, "y", secret)
	mustDocker(t, w, "import", evil, "evil")
	mustDocker(t, w, "run", "--name", "d1", "evil", "sh", "-c", "rm /y && mkdir /y")
	out := mustDocker(t, w, "diff", "d1")
	if strings.Contains(out, "host_only_file") {
		t.Errorf("docker diff lists a host directory's files:\n%s", out)
	}
	if !strings.Contains(out, "C /y\n") {
		t.Errorf("docker diff: no C /y (a symlink replaced by a directory) in\n%s", out)
	}
}

// withSymlink copies the tar at from to to with one more entry: a symlink
// name -> target.
func withSymlink(t *testing.T, from, to, name, target string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImageVolumesCleaned: an image's VOLUME paths are cleaned as moby
// cleans them, under the container's root: a relative one and one with
// ".." are volumes at the path they name from /; one that is "/" is
// refused at create (QA round 27: taken as they were).
func TestImageVolumesCleaned(t *testing.T) {
	w, _ := startWorld(t)
	tar := filepath.Join(w.Dir, "busybox.tar")
	mustDocker(t, w, "import", "--change", `VOLUME ["rel/dir", "/../../up"]`, tar, "vols")
	out := mustDocker(t, w, "run", "--rm", "vols", "sh", "-c", "grep -o ' /[a-z/]* ' /proc/mounts | sort")
	for _, want := range []string{" /rel/dir ", " /up "} {
		if !strings.Contains(out, want) {
			t.Errorf("mounts of a container of the image: no %q in\n%s", want, out)
		}
	}
	// inspect's Config.Volumes: the image's, merged with the request's
	// (moby's merge; it was null).
	mustDocker(t, w, "create", "--name", "withvols", "-v", "/mine", "vols", "true")
	if got := dockerInspect(t, w, "{{json .Config.Volumes}}", "withvols"); got != `{"../../up":{},"/mine":{},"rel/dir":{}}` && got != `{"/../../up":{},"/mine":{},"rel/dir":{}}` {
		t.Errorf("Config.Volumes = %s", got)
	}
	mustDocker(t, w, "import", "--change", `VOLUME ["/"]`, tar, "rootvol")
	if _, errOut, code := w.Docker(t, "create", "rootvol", "true"); code == 0 || !strings.Contains(errOut, "would cover the container's root filesystem") {
		t.Errorf("create of an image with VOLUME /: exit %d, %q", code, errOut)
	}
}
