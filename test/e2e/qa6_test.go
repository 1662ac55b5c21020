package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestExecRunsAsTheContainersUser: an exec without -u runs as the
// container's --user, as moby's ContainerExecCreate does (it ran as root,
// whatever the container's user); -u still overrides it, and exec inspect
// shows the user the process got.
func TestExecRunsAsTheContainersUser(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "nobodys", "--user", "65534", "--workdir", "/tmp", testworld.BusyboxImage, "sleep", "600")
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "nobodys", "sh", "-c", "id -u; pwd")); got != "65534\n/tmp" {
		t.Errorf("exec without -u in a --user 65534 -w /tmp container: %q, want uid 65534 in /tmp", got)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "-u", "0", "nobodys", "id", "-u")); got != "0" {
		t.Errorf("exec -u 0: uid %q, want 0", got)
	}
}

// TestHostConfigShownAndNoHealthcheck: docker inspect shows the settings
// berth applies (--read-only, --cap-add, --cap-drop, --sysctl), as sent
// (the docker CLI sends capabilities as CAP_ names);
// --no-healthcheck (Compose's "healthcheck: disable: true") is accepted
// and runs no check (TestHealthChecks has the real ones).
func TestHostConfigShownAndNoHealthcheck(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "tight", "--read-only", "--cap-drop", "ALL", "--cap-add", "net_bind_service",
		"--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--no-healthcheck", testworld.BusyboxImage, "sleep", "600")
	got := dockerInspect(t, w, "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}} {{.HostConfig.Sysctls}}", "tight")
	if want := "true [CAP_NET_BIND_SERVICE] [ALL] map[net.ipv4.ip_unprivileged_port_start:0]"; got != want {
		t.Errorf("inspect: %q, want %q", got, want)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "tight", "sh", "-c", "grep CapEff /proc/self/status")); got != "CapEff:\t0000000000000400" {
		t.Errorf("the capabilities in force: %q, want only NET_BIND_SERVICE", got)
	}
	if got := dockerInspect(t, w, "{{json .State.Health}} {{json .Config.Healthcheck}}", "tight"); got != `null {"Test":["NONE"]}` {
		t.Errorf("--no-healthcheck: State.Health and Config.Healthcheck %s", got)
	}
}

// TestDockerEvents: docker events (what Docker Compose follows for `up` in
// the foreground and `logs -f`) reports a container's life and its
// network's in Docker's words, with the labels and the exit code; a
// filter on a label picks one project's.
func TestDockerEvents(t *testing.T) {
	w, _ := startWorld(t)
	since := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "date", "+%s"))
	mustDocker(t, w, "network", "create", "evnet")
	mustDocker(t, w, "run", "-d", "--name", "ev1", "--label", "project=shop", "--network", "evnet", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "run", "-d", "--name", "ev2", "--label", "project=blog", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "stop", "-t", "0", "ev1")
	mustDocker(t, w, "rm", "ev1")
	mustDocker(t, w, "network", "rm", "evnet")
	mustDocker(t, w, "network", "create", "--label", "project=shop", "evprune")
	mustDocker(t, w, "network", "prune", "-f", "--filter", "label=project=shop")
	mustDocker(t, w, "restart", "-t", "0", "ev2")
	mustDocker(t, w, "run", "--rm", "--name", "evatt", "--label", "project=att", testworld.BusyboxImage, "true")
	if _, _, code := w.Docker(t, "exec", "ev2", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("docker exec ev2 sh -c 'exit 3': exit %d", code)
	}
	mustDocker(t, w, "cp", "ev2:/etc/hostname", "-")
	until := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "sh", "-c", "sleep 1; date +%s"))
	got := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "label=project=shop",
		"--format", `{{.Type}} {{.Action}} {{.Actor.Attributes.name}}{{with .Actor.Attributes.signal}} signal={{.}}{{end}}{{with .Actor.Attributes.exitCode}} exitCode={{.}}{{end}}`)
	// As moby: the stop signal and then the SIGKILL are each a kill (busybox
	// sleep as PID 1 ignores SIGTERM), then die, stop; rm: destroy.
	want := "container create ev1\ncontainer start ev1\ncontainer kill ev1 signal=15\ncontainer kill ev1 signal=9\n" +
		"container die ev1 exitCode=137\ncontainer stop ev1\ncontainer destroy ev1\n"
	if got != want {
		t.Errorf("events of project shop:\n%s\nwant:\n%s", got, want)
	}
	// An attached run: the CLI attaches before it starts, and moby logs
	// the attach.
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "label=project=att", "--format", "{{.Action}}")
	if want := "create\nattach\nstart\ndie\ndestroy\n"; got != want {
		t.Errorf("events of an attached run --rm:\n%s\nwant:\n%s", got, want)
	}
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=network", "--filter", "network=evnet",
		"--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if want := "network create evnet\nnetwork connect evnet\nnetwork disconnect evnet\nnetwork destroy evnet\n"; got != want {
		t.Errorf("events of network evnet:\n%s\nwant:\n%s", got, want)
	}
	// A network prune destroys, as moby's deleteNetwork logs it.
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "network=evprune", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if want := "network create evprune\nnetwork destroy evprune\n"; got != want {
		t.Errorf("events of the pruned network:\n%s\nwant:\n%s", got, want)
	}
	// Then the prune itself, with no actor, as moby's NetworksPrune.
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=network", "--filter", "event=prune", "--format", "{{.Type}} {{.Action}} [{{.Actor.ID}}] {{.Actor.Attributes.reclaimed}}")
	if want := "network prune [] 0\n"; got != want {
		t.Errorf("the network prune event:\n%s\nwant:\n%s", got, want)
	}
	// docker restart: the stop's events, the start's, then restart.
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=ev2", "--filter", "event=start", "--filter", "event=restart", "--format", "{{.Action}}")
	if want := "start\nstart\nrestart\n"; got != want {
		t.Errorf("start and restart events of ev2:\n%s\nwant:\n%s", got, want)
	}
	// An exec's three events, moby's "exec_create" and "exec_start"
	// filters matching their "exec_create: CMD" actions, and docker cp's.
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "container=ev2", "--filter", "event=exec_create",
		"--filter", "event=exec_start", "--filter", "event=exec_die", "--filter", "event=archive-path",
		"--format", "{{.Action}}{{with .Actor.Attributes.exitCode}} exitCode={{.}}{{end}}{{if .Actor.Attributes.execID}} +execID{{end}}")
	if want := "exec_create: sh -c exit 3 +execID\nexec_start: sh -c exit 3 +execID\nexec_die exitCode=3 +execID\narchive-path\n"; got != want {
		t.Errorf("exec and cp events of ev2:\n%s\nwant:\n%s", got, want)
	}
}

// TestDockerEventsImagesAndVolumes: images and volumes have their
// events, as moby logs them: tag, import, save, load, untag, delete and
// prune of images (an image event named by its tag or its ID, --filter
// image matching either, with or without the tag); create, mount,
// unmount, destroy and prune of volumes, anonymous ones included.
func TestDockerEventsImagesAndVolumes(t *testing.T) {
	w, _ := startWorld(t)
	since := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "date", "+%s"))
	id := dockerInspect(t, w, "{{.Id}}", testworld.BusyboxImage)
	mustDocker(t, w, "tag", testworld.BusyboxImage, "evimg:1")
	mustDocker(t, w, "rmi", "evimg:1")
	mustDocker(t, w, "volume", "create", "evvol")
	mustDocker(t, w, "run", "--rm", "-v", "evvol:/data:ro", "-v", "/anon", "--name", "evuser", testworld.BusyboxImage, "true")
	mustDocker(t, w, "volume", "rm", "evvol")
	mustDocker(t, w, "volume", "create", "--label", "evprune=1", "evpruned")
	mustDocker(t, w, "volume", "prune", "-af", "--filter", "label=evprune")
	archive := filepath.Join(t.TempDir(), "img.tar")
	mustDocker(t, w, "save", "-o", archive, testworld.BusyboxImage)
	until := strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "sh", "-c", "sleep 1; date +%s"))

	format := "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"
	got := mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=image", "--filter", "image=evimg", "--format", format)
	want := fmt.Sprintf("image tag %s evimg:1\n", id)
	if got != want {
		t.Errorf("events of image evimg:\n%s\nwant:\n%s", got, want)
	}
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=image", "--filter", "event=untag", "--filter", "event=save", "--format", format)
	if want := fmt.Sprintf("image untag %s %s\nimage save %s %s\n", id, id, id, id); got != want {
		t.Errorf("untag and save events:\n%s\nwant:\n%s", got, want)
	}
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "volume=evvol",
		"--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}{{with .Actor.Attributes.destination}} {{.}}{{end}}{{with index .Actor.Attributes \"read/write\"}} rw={{.}}{{end}}")
	if want := "volume create evvol local\nvolume mount evvol local /data rw=false\nvolume unmount evvol local\nvolume destroy evvol local\n"; got != want {
		t.Errorf("events of volume evvol:\n%s\nwant:\n%s", got, want)
	}
	// The anonymous volume of run --rm: made at create, gone with the container.
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=volume", "--filter", "event=create", "--filter", "event=destroy", "--format", "{{.Action}} {{.Actor.ID}}")
	if n := len(lines(got)); n != 6 || !strings.Contains(got, "create evpruned\ndestroy evpruned\n") {
		t.Errorf("volume create and destroy events:\n%s\nwant evvol's, the anonymous volume's and evpruned's", got)
	}
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=volume", "--filter", "event=prune", "--format", "{{.Action}} [{{.Actor.ID}}] {{.Actor.Attributes.reclaimed}}")
	if want := "prune [] 0\n"; got != want {
		t.Errorf("the volume prune event:\n%s\nwant:\n%s", got, want)
	}

	// docker import, rmi -f and load, in their own window.
	since = until
	mustDocker(t, w, "create", "--name", "evexp", testworld.BusyboxImage, "true")
	rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
	mustDocker(t, w, "export", "-o", rootfs, "evexp")
	mustDocker(t, w, "rm", "evexp")
	imported := strings.TrimSpace(mustDocker(t, w, "import", rootfs, "evimp:1"))
	mustDocker(t, w, "rmi", "evimp:1")
	mustDocker(t, w, "image", "rm", "-f", testworld.BusyboxImage)
	mustDocker(t, w, "load", "-i", archive)
	until = strings.TrimSpace(mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "sh", "-c", "sleep 1; date +%s"))
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=image", "--filter", "image="+imported, "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if want := fmt.Sprintf("tag evimp:1\nimport %s\nuntag %s\ndelete %s\n", imported, imported, imported); got != want {
		t.Errorf("events of an imported image:\n%s\nwant:\n%s", got, want)
	}
	// A loaded image's ID is its new config's digest.
	loaded := dockerInspect(t, w, "{{.Id}}", testworld.BusyboxImage)
	got = mustDocker(t, w, "events", "--since", since, "--until", until, "--filter", "type=image", "--filter", "image="+id, "--filter", "image="+loaded, "--format", "{{.Action}} {{.Actor.ID}}")
	if want := fmt.Sprintf("untag %s\ndelete %s\nload %s\n", id, id, loaded); got != want {
		t.Errorf("image events of rmi -f and load:\n%s\nwant:\n%s", got, want)
	}
}

// TestRunRmKeepsQuickOutput: docker run --rm of a command that prints and
// exits at once shows its output every time. The AutoRemove waits for
// the attached client to read the log; when the exit came first (a
// command done before its client opened the log), the removal took the
// log with it and the output was lost, about one run in twenty.
func TestRunRmKeepsQuickOutput(t *testing.T) {
	w, _ := startWorld(t)
	for i := range 20 {
		if got := mustDocker(t, w, "run", "--rm", testworld.BusyboxImage, "echo", "quick"); got != "quick\n" {
			t.Fatalf("run %d: output %q, want \"quick\\n\"", i, got)
		}
	}
}
