package daemon

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
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
