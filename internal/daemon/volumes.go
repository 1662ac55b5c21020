package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	berthruntime "github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/berth-net/berth/internal/volume"
)

// planVolumes, at create, gives the image's VOLUMEs anonymous volumes
// where nothing else is mounted, and makes the container's volumes: an
// anonymous one gets a random name and moby's anonymous label, a named
// one is made if missing (with --mount's labels), as moby's create does.
func (d *Daemon) planVolumes(cfg *container.Config, img *image.Image) error {
	if img.Config != nil {
		for _, dst := range img.Config.Volumes {
			if !slices.ContainsFunc(cfg.Mounts, func(m container.Mount) bool { return m.Destination == dst }) {
				cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountVolume, Destination: dst})
			}
		}
	}
	for i := range cfg.Mounts {
		m := &cfg.Mounts[i]
		if m.Type != container.MountVolume {
			continue
		}
		labels := m.VolumeLabels
		if m.Source == "" {
			labels = map[string]string{volume.AnonymousLabel: ""}
		}
		v, err := d.volumes.Create(m.Source, labels)
		if err != nil {
			return err
		}
		m.Source, m.Mountpoint = v.Name, d.volumes.Mountpoint(v.Name)
	}
	return nil
}

// volumeBinds turns c's volumes into the binds runc makes of their
// directories, copying into a new, empty volume what the image has at its
// path first (unless nocopy), as Docker's first mount of a volume does.
func (d *Daemon) volumeBinds(c *container.Container, rootfs string) ([]container.Mount, error) {
	out := make([]container.Mount, 0, len(c.Config.Mounts))
	for _, m := range c.Config.Mounts {
		if m.Type != container.MountVolume {
			out = append(out, m)
			continue
		}
		if _, err := d.volumes.Get(m.Source); err != nil {
			return nil, err
		}
		if !m.NoCopy && d.volumes.Empty(m.Source) {
			if err := copyUp(rootfs, m.Destination, d.volumes.Mountpoint(m.Source)); err != nil {
				return nil, fmt.Errorf("copy the image's %s into volume %s: %w", m.Destination, m.Source, err)
			}
		}
		out = append(out, container.Mount{Type: container.MountBind, Source: d.volumes.Mountpoint(m.Source), Destination: m.Destination,
			ReadOnly: m.ReadOnly, Propagation: "rprivate"})
	}
	return out, nil
}

// copyUp copies what the image tree at rootfs has at dst (resolved inside
// it: its links cannot lead out) into the volume directory to, with the
// directory's own owner and mode; nothing when the image has no directory
// there.
func copyUp(rootfs, dst, to string) error {
	src, ok, err := resolveInRoot(rootfs, dst)
	if err != nil || !ok {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(berthruntime.WriteTree(pw, src)) }()
	err = image.ExtractTree(pr, to)
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	return errors.Join(os.Lchown(to, int(st.Uid), int(st.Gid)), os.Chmod(to, os.FileMode(st.Mode&0o7777)))
}

// resolveInRoot is the host path of p inside the tree at root, its links
// resolved as the container would (openat2 RESOLVE_IN_ROOT), if it is a
// directory there.
func resolveInRoot(root, p string) (string, bool, error) {
	dir, err := os.Open(root)
	if err != nil {
		return "", false, err
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), strings.TrimPrefix(p, "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer unix.Close(fd)
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", false, err
	}
	return real, true, nil
}

// volumeUsers are the IDs of the containers that mount volume name.
func (d *Daemon) volumeUsers(name string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, cs := range d.containers {
		for _, m := range cs.c.Config.Mounts {
			if m.Type == container.MountVolume && m.Source == name {
				ids = append(ids, id)
				break
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// CreateVolume is docker volume create (driver "local" only).
func (d *Daemon) CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (api.VolumeInfo, error) {
	if driver != "" && driver != "local" {
		return api.VolumeInfo{}, errdefs.NotFound("plugin %q not found", driver) // moby's answer for a driver it lacks
	}
	if len(opts) > 0 {
		return api.VolumeInfo{}, errdefs.Invalid("local volume options (-o type=…, device=…) are not supported by berth")
	}
	v, err := d.volumes.Create(name, labels)
	if err != nil {
		return api.VolumeInfo{}, err
	}
	return d.volumeInfo(v, false), nil
}

func (d *Daemon) volumeInfo(v *volume.Volume, size bool) api.VolumeInfo {
	info := api.VolumeInfo{Name: v.Name, Labels: v.Labels, CreatedAt: v.CreatedAt, Mountpoint: d.volumes.Mountpoint(v.Name),
		RefCount: len(d.volumeUsers(v.Name)), Size: -1}
	if size {
		info.Size = d.volumes.Size(v.Name)
	}
	return info
}

// Volume is docker volume inspect.
func (d *Daemon) Volume(ctx context.Context, name string) (api.VolumeInfo, error) {
	v, err := d.volumes.Get(name)
	if err != nil {
		return api.VolumeInfo{}, err
	}
	return d.volumeInfo(v, false), nil
}

// Volumes is docker volume ls; size also counts each one's bytes.
func (d *Daemon) Volumes(ctx context.Context, size bool) ([]api.VolumeInfo, error) {
	vs, err := d.volumes.List()
	if err != nil {
		return nil, err
	}
	out := make([]api.VolumeInfo, len(vs))
	for i, v := range vs {
		out[i] = d.volumeInfo(v, size)
	}
	return out, nil
}

// RemoveVolume is docker volume rm: refused while a container uses it
// (force only lets a missing volume pass), as moby's.
func (d *Daemon) RemoveVolume(ctx context.Context, name string, force bool) error {
	if users := d.volumeUsers(name); len(users) > 0 {
		return errdefs.Conflict("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	err := d.volumes.Remove(name)
	if force && errdefs.Is(err, errdefs.KindNotFound) {
		return nil
	}
	return err
}

// PruneVolumes is docker volume prune: the volumes no container uses and
// match keeps (the anonymous ones only unless all, as since Docker 23);
// it returns their names and the bytes freed.
func (d *Daemon) PruneVolumes(ctx context.Context, all bool, match func(api.VolumeInfo) bool) ([]string, uint64, error) {
	vs, err := d.volumes.List()
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var freed uint64
	for _, v := range vs {
		if (!all && !v.Anonymous()) || !match(d.volumeInfo(v, false)) || len(d.volumeUsers(v.Name)) > 0 {
			continue
		}
		size := d.volumes.Size(v.Name)
		if err := d.volumes.Remove(v.Name); err != nil {
			return names, freed, err
		}
		names, freed = append(names, v.Name), freed+uint64(size)
	}
	return names, freed, nil
}

// removeAnonymousVolumes removes the anonymous volumes c used that no
// other container uses (docker rm -v, and run --rm), as moby's; errors
// are logged: the container is gone either way.
func (d *Daemon) removeAnonymousVolumes(c *container.Container) {
	for _, m := range c.Config.Mounts {
		if m.Type != container.MountVolume {
			continue
		}
		v, err := d.volumes.Get(m.Source)
		if err != nil || !v.Anonymous() || len(d.volumeUsers(v.Name)) > 0 {
			continue
		}
		if err := d.volumes.Remove(v.Name); err != nil {
			d.log.Warn("remove an anonymous volume", "volume", v.Name, "err", err)
		}
	}
}
