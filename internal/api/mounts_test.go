package api

import (
	"path/filepath"
	"strings"
	"testing"

	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// TestContainerMounts: -v, --mount and --tmpfs as moby's parser reads
// them, and its refusals in its words; volumes refused by name.
func TestContainerMounts(t *testing.T) {
	dir := t.TempDir()
	got, err := containerMounts(&ctypes.Config{}, &ctypes.HostConfig{
		Binds:  []string{"/srv/conf:/etc/app:ro", dir + ":/data", "/x:/y:rw,private"},
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: "/m", ReadOnly: true}, {Type: mount.TypeTmpfs, Target: "/cache", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777, Options: [][]string{{"exec"}}}}},
		Tmpfs:  map[string]string{"/run": "rw,size=64m,exec"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []container.Mount{
		{Type: "bind", Source: "/srv/conf", Destination: "/etc/app", ReadOnly: true, Propagation: "rprivate", Mode: "ro", CreateSource: true},
		{Type: "bind", Source: dir, Destination: "/data", Propagation: "rprivate", CreateSource: true},
		{Type: "bind", Source: "/x", Destination: "/y", Propagation: "private", Mode: "rw,private", CreateSource: true},
		{Type: "bind", Source: dir, Destination: "/m", ReadOnly: true, Propagation: "rprivate"},
		{Type: "tmpfs", Destination: "/cache", Options: []string{"size=1048576", "mode=1777", "exec"}},
		{Type: "tmpfs", Destination: "/run", Options: []string{"rw", "size=64m", "exec"}, Flag: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		cfg  ctypes.Config
		hc   ctypes.HostConfig
		want string
	}{
		{hc: ctypes.HostConfig{Binds: []string{"/a:/b:bogus"}}, want: "invalid mode: bogus"},
		{hc: ctypes.HostConfig{Binds: []string{"/a:ro"}}, want: "invalid volume specification: '/a:ro'"},
		{hc: ctypes.HostConfig{Binds: []string{"/a:/"}}, want: "destination can't be '/'"},
		{hc: ctypes.HostConfig{Binds: []string{"/a:/b", "/c:/b"}}, want: "Duplicate mount point: /b"},
		{hc: ctypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: filepath.Join(dir, "nope"), Target: "/b"}}},
			want: `invalid mount config for type "bind": bind source path does not exist: ` + filepath.Join(dir, "nope")},
		{hc: ctypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: "rel"}}},
			want: `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{hc: ctypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "vv", Target: "/v", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}}},
			want: `volume driver "nfs" is not supported by berth`},
		{hc: ctypes.HostConfig{VolumesFrom: []string{""}}, want: "volumes-from specification cannot be an empty string"},
		{hc: ctypes.HostConfig{VolumesFrom: []string{"other:bogus"}}, want: "invalid mode: bogus"},
		{hc: ctypes.HostConfig{VolumesFrom: []string{"other:ro,rw"}}, want: "invalid mode: ro,rw"},
		{hc: ctypes.HostConfig{VolumesFrom: []string{"other:rshared"}}, want: "invalid mode: rshared"},
		{hc: ctypes.HostConfig{VolumesFrom: []string{"other:ro,nocopy"}}, want: "invalid mode: ro,nocopy"},
		{cfg: ctypes.Config{Volumes: map[string]struct{}{"rel": {}}}, want: "invalid volume specification: 'rel'"},
		{hc: ctypes.HostConfig{Binds: []string{"/a:/b:nocopy"}}, want: "field VolumeOptions must not be specified"},
		{hc: ctypes.HostConfig{Binds: []string{"/a:/b:rshared"}}, want: "bind propagation rshared is not supported by berth"},
		{hc: ctypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"suid"}}}}}},
			want: `invalid mount config for type "tmpfs": invalid option: suid`},
	} {
		_, err := containerMounts(&tc.cfg, &tc.hc)
		if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %+v: %v, want %q", tc.cfg, tc.hc, err, tc.want)
		}
	}
}

// TestVolumeMounts: -v name:/path is a named volume, -v /path an
// anonymous one, --mount type=volume with nocopy and labels; Config.Volumes
// are left to the daemon (after --volumes-from's copies, as moby's).
func TestVolumeMounts(t *testing.T) {
	got, err := containerMounts(&ctypes.Config{Volumes: map[string]struct{}{"/anon": {}, "/named": {}}}, &ctypes.HostConfig{
		Binds:  []string{"data:/named:ro,nocopy", "/cache"},
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "logs", Target: "/logs", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []container.Mount{
		{Type: "volume", Source: "data", Destination: "/named", Mode: "ro,nocopy", ReadOnly: true, NoCopy: true},
		{Type: "volume", Destination: "/cache"},
		{Type: "volume", Source: "logs", Destination: "/logs", NoCopy: true, VolumeLabels: map[string]string{"a": "b"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
}

// TestVolumeOptionsRefused: --mount type=volume,volume-opt=… asks for a
// kind of volume berth does not make (a tmpfs, a device): refused as
// docker volume create -o is, never a plain directory instead.
func TestVolumeOptionsRefused(t *testing.T) {
	_, err := containerMounts(&ctypes.Config{}, &ctypes.HostConfig{Mounts: []mount.Mount{{
		Type: mount.TypeVolume, Source: "n5", Target: "/x",
		VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}},
	}}})
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "local volume options (volume-opt=type=…, device=…) are not supported by berth") {
		t.Errorf("err = %v, want the refusal of volume options", err)
	}
}

// TestMountTypes: a type moby knows and berth does not mount is refused
// by name; one moby does not know either, in moby's words.
func TestMountTypes(t *testing.T) {
	for typ, want := range map[mount.Type]string{
		"bogus":           `invalid mount config for type "bogus": mount type unknown`,
		mount.TypeCluster: "cluster mounts (--mount type=cluster) are not supported by berth",
		"image":           "image mounts (--mount type=image) are not supported by berth",
	} {
		_, err := containerMounts(&ctypes.Config{}, &ctypes.HostConfig{Mounts: []mount.Mount{{Type: typ, Source: "x", Target: "/x"}}})
		if !errdefs.Is(err, errdefs.KindInvalid) || err.Error() != want {
			t.Errorf("type %s: %v, want %q", typ, err, want)
		}
	}
}
