package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestDockerCommit: docker commit with the docker CLI, as Docker's: the
// new image holds what the container added, changed and deleted (not its
// volume's files: the volume becomes the image's VOLUME), its config the
// container's with --change applied, --author and --message in inspect
// and history; docker history lists the commit above the parent's
// entries, with the parent's ID; a running container is paused for the
// commit and runs on (pause, commit, unpause: moby unpauses in a defer);
// a commit of a commit chains; a parent cannot be deleted; events name
// the image.
func TestDockerCommit(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	since := strings.TrimSpace(mustDocker(t, w, "run", "--rm", bb, "date", "+%s"))
	mustDocker(t, w, "run", "--name", "src", "-v", "/data", bb, "sh", "-c",
		"echo hi > /greeting; rm /etc/group; rm -r /home; mkdir /app; echo v1 > /app/v; echo vol > /data/f")
	id := strings.TrimSpace(mustDocker(t, w, "commit", "-a", "me", "-m", "snap", "-c", "ENV GREETING=hello",
		"-c", `CMD ["sh","-c","cat /greeting; echo $GREETING"]`, "src", "app:v1"))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("docker commit printed %q, want the image's ID", id)
	}
	if out := mustDocker(t, w, "run", "--rm", "app:v1"); out != "hi\nhello\n" {
		t.Errorf("the committed image's command: %q", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "app:v1", "sh", "-c",
		"test -e /etc/group && echo GROUP; test -e /home && echo HOME; cat /app/v; ls -A /data; test -e /etc/passwd && echo passwd"); out != "v1\npasswd\n" {
		t.Errorf("the committed image's files: %q, want /app/v, the image's other files, nothing deleted back, an empty new volume", out)
	}
	busybox := dockerInspect(t, w, "{{.Id}}", bb)
	wantInspected(t, w, "app:v1", map[string]string{
		"{{.Id}}":                  id,
		"{{.Author}}":              "me",
		"{{.Comment}}":             "snap",
		"{{.Parent}}":              busybox,
		"{{len .RootFS.Layers}}":   "2",
		"{{json .Config.Volumes}}": `{"/data":{}}`,
		"{{json .Config.Env}}":     `["GREETING=hello"]`,
	})
	hist := mustDocker(t, w, "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}", "app:v1")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], id+"|sh -c echo hi > /greeting;") || !strings.HasSuffix(lines[0], "|snap") ||
		!strings.HasPrefix(lines[1], busybox+"|") {
		t.Errorf("docker history app:v1:\n%s", hist)
	}
	if out := mustDocker(t, w, "images", "--format", "{{.Repository}}:{{.Tag}}", "app"); out != "app:v1\n" {
		t.Errorf("docker images app: %q", out)
	}
	// docker save and load keep what docker history and inspect show.
	archive := filepath.Join(t.TempDir(), "app.tar")
	mustDocker(t, w, "save", "-o", archive, "app:v1")
	mustDocker(t, w, "tag", "app:v1", "app:saved")
	mustDocker(t, w, "load", "-i", archive)
	hist = mustDocker(t, w, "history", "--format", "{{.CreatedBy}}|{{.Comment}}", "--no-trunc", "app:v1")
	if !strings.HasPrefix(hist, "sh -c echo hi > /greeting;") || !strings.Contains(hist, "|snap\n|Imported from -\n") {
		t.Errorf("docker history after a save and a load:\n%s", hist)
	}
	if got := dockerInspect(t, w, "{{.Author}}", "app:v1"); got != "me" {
		t.Errorf("author after a save and a load: %q", got)
	}
	mustDocker(t, w, "tag", "app:saved", "app:v1") // the committed one again, for what follows
	mustDocker(t, w, "rmi", "app:saved")

	// A running container: paused while committed, running after.
	mustDocker(t, w, "run", "-d", "--name", "live", "app:v1", "sh", "-c", "echo live > /live; sleep 600")
	eventually(t, "live wrote /live", func() bool {
		out, _, code := w.Docker(t, "exec", "live", "cat", "/live")
		return code == 0 && out == "live\n"
	})
	mustDocker(t, w, "commit", "-c", `CMD ["cat","/live","/app/v"]`, "live", "live:1")
	if got := dockerInspect(t, w, "{{.State.Status}}", "live"); got != "running" {
		t.Errorf("live after the commit: %s", got)
	}
	if out := mustDocker(t, w, "run", "--rm", "live:1"); out != "live\nv1\n" {
		t.Errorf("a commit of a commit: %q", out)
	}
	hist = mustDocker(t, w, "history", "--no-trunc", "-q", "live:1")
	if want := dockerInspect(t, w, "{{.Id}}", "live:1") + "\n" + id + "\n" + busybox + "\n"; hist != want {
		t.Errorf("docker history -q live:1:\n%s\nwant\n%s", hist, want)
	}

	// Unchanged: an entry without a layer. Not there: moby's 404.
	mustDocker(t, w, "create", "--name", "idle", bb, "true")
	mustDocker(t, w, "commit", "idle", "idle:1")
	if got := dockerInspect(t, w, "{{len .RootFS.Layers}}", "idle:1"); got != dockerInspect(t, w, "{{len .RootFS.Layers}}", bb) {
		t.Errorf("a commit without changes has %s layers", got)
	}
	// HEALTHCHECK and ONBUILD changes, as moby's commit takes them.
	mustDocker(t, w, "commit", "-c", "HEALTHCHECK --interval=5s --retries=2 CMD true", "-c", "ONBUILD RUN make", "idle", "hc:1")
	wantInspected(t, w, "hc:1", map[string]string{
		"{{json .Config.Healthcheck}}": `{"Test":["CMD-SHELL","true"],"Interval":5000000000,"Retries":2}`,
		"{{json .Config.OnBuild}}":     `["RUN make"]`,
	})
	if _, errOut, code := w.Docker(t, "commit", "nope"); code == 0 || !strings.Contains(errOut, "No such container: nope") {
		t.Errorf("docker commit nope: exit %d, %q", code, errOut)
	}

	// A parent cannot be deleted while an image was committed from it
	// (moby's hard conflict).
	if _, errOut, code := w.Docker(t, "rmi", "-f", busybox); code == 0 || !strings.Contains(errOut, "(cannot be forced) - image has dependent child images") {
		t.Errorf("docker rmi -f of a parent: exit %d, %q", code, errOut)
	}

	until := strings.TrimSpace(mustDocker(t, w, "run", "--rm", bb, "sh", "-c", "sleep 1; date +%s"))
	out := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=live", "--format",
		`{{.Action}} {{index .Actor.Attributes "imageRef"}}`)
	if !strings.Contains(out, "pause \ncommit live:1\nunpause \n") {
		t.Errorf("live's events:\n%s", out)
	}
}
