package daemon

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/berth-net/berth/internal/store"
	"github.com/berth-net/berth/internal/volume"
)

// TestMountsFrom: --volumes-from copies the other containers' volumes,
// binds and --mount tmpfs mounts (not their --tmpfs ones), read-only
// where they were or with :ro; a later value's mount takes a destination
// from an earlier's, and the container's own mounts take it from both. A
// container that is not there is a 400 (a 404 would make docker run try
// to pull the image).
func TestMountsFrom(t *testing.T) {
	db := &container.Container{ID: "aaaa1111", Name: "db", Config: container.Config{Mounts: []container.Mount{
		{Type: container.MountVolume, Source: "0123abcd", Destination: "/data", Mountpoint: "/v/0123abcd/_data", Anonymous: true, Mode: "z"},
		{Type: container.MountVolume, Source: "conf", Destination: "/conf", ReadOnly: true, Mountpoint: "/v/conf/_data"},
		{Type: container.MountBind, Source: "/srv/logs", Destination: "/logs", Propagation: "rprivate"},
		{Type: container.MountTmpfs, Destination: "/cache", Options: []string{"size=1m"}},
		{Type: container.MountTmpfs, Destination: "/run", Flag: true},
	}}}
	web := &container.Container{ID: "bbbb2222", Name: "web", Config: container.Config{Mounts: []container.Mount{
		{Type: container.MountVolume, Source: "static", Destination: "/logs", Mountpoint: "/v/static/_data"},
	}}}
	d := &Daemon{containers: map[string]*ctrState{db.ID: newCtrState(db), web.ID: newCtrState(web)}}

	cfg := container.Config{
		VolumesFrom: []string{"db:ro", "bbbb"},
		Mounts:      []container.Mount{{Type: container.MountBind, Source: "/etc/app", Destination: "/conf", Propagation: "rprivate"}},
	}
	if err := d.mountsFromLocked(&cfg); err != nil {
		t.Fatal(err)
	}
	want := []container.Mount{
		{Type: container.MountBind, Source: "/etc/app", Destination: "/conf", Propagation: "rprivate"},
		{Type: container.MountVolume, Source: "0123abcd", Destination: "/data", Mountpoint: "/v/0123abcd/_data", ReadOnly: true, Anonymous: true, From: "aaaa1111"},
		{Type: container.MountTmpfs, Destination: "/cache", Options: []string{"size=1m"}, ReadOnly: true, From: "aaaa1111"},
		{Type: container.MountVolume, Source: "static", Destination: "/logs", Mountpoint: "/v/static/_data", From: "bbbb2222"},
	}
	if diff := cmp.Diff(want, cfg.Mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}

	cfg = container.Config{VolumesFrom: []string{"db"}}
	if err := d.mountsFromLocked(&cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mounts) != 4 || cfg.Mounts[1].Destination != "/conf" || !cfg.Mounts[1].ReadOnly || cfg.Mounts[2].ReadOnly || !cfg.Mounts[2].CreateSource {
		t.Errorf("rw copies: %+v; want db's four mount points, /conf still read-only, /logs writable and made at start if missing", cfg.Mounts)
	}

	cfg = container.Config{VolumesFrom: []string{"db", "nope"}}
	err := d.mountsFromLocked(&cfg)
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "No such container: nope") {
		t.Errorf("a missing container: %v; want a 400 naming it", err)
	}
}

// TestCopiedVolumesAreNotTheCreatesToMakeOrRemove: a copied volume is
// the other container's: a create that fails after planning its volumes
// removes the anonymous volumes it made, never one it copied (which would
// take the other container's data), and neither makes nor fills one.
func TestCopiedVolumesAreNotTheCreatesToMakeOrRemove(t *testing.T) {
	dir := t.TempDir()
	vols, err := volume.NewStore(filepath.Join(dir, "volumes"), store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := vols.Create("", map[string]string{volume.AnonymousLabel: ""})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{volumes: vols, copying: map[string]chan struct{}{}}
	cfg := container.Config{Mounts: []container.Mount{
		{Type: container.MountVolume, Source: theirs.Name, Destination: "/data", Anonymous: true, From: "aaaa1111"},
		{Type: container.MountVolume, Destination: "/mine"},
	}}
	if err := d.planVolumes(&cfg, &image.Image{RootfsDir: dir}); err != nil {
		t.Fatal(err)
	}
	if cfg.Mounts[0].Source != theirs.Name || cfg.Mounts[1].Source == "" || !cfg.Mounts[1].Anonymous {
		t.Errorf("planned mounts %+v", cfg.Mounts)
	}
	if copies := d.claimCopyUpsLocked(cfg); len(copies) != 1 || copies[0].Destination != "/mine" {
		t.Errorf("volumes to fill: %+v; want only the create's own", copies)
	}
	d.removeMadeVolumes(cfg)
	if _, err := vols.Get(theirs.Name); err != nil {
		t.Errorf("the failed create removed the volume it copied: %v", err)
	}
	if _, err := vols.Get(cfg.Mounts[1].Source); err == nil {
		t.Error("the failed create left the volume it made")
	}
}

// TestCommitConfigMerge: a commit request's config (with its changes)
// filled in from the container's where it says nothing, as moby's merge;
// its ONBUILD triggers kept (review of session 38: lost with a body).
func TestCommitConfigMerge(t *testing.T) {
	req := &image.Config{Cmd: []string{"top"}, Env: []string{"A=1"}, OnBuild: []string{"RUN make"}, Volumes: []string{"/req"}}
	got := mergeCommitConfig(req, container.Config{User: "web", Env: []string{"A=0", "PATH=/bin"}, Cmd: []string{"sh"},
		WorkingDir: "/srv", Volumes: []string{"/data"}, Labels: map[string]string{"l": "1"}})
	want := &image.Config{User: "web", Env: []string{"A=1", "PATH=/bin"}, Cmd: []string{"top"}, WorkingDir: "/srv",
		Labels: map[string]string{"l": "1"}, OnBuild: []string{"RUN make"}, Volumes: []string{"/req", "/data"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
}
