package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	berthruntime "github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/berth-net/berth/internal/volume"
)

// planVolumes, at create (d.mu held, so that no volume removal runs
// between its making a volume and the container's being registered),
// gives Config.Volumes (docker run -v /path) and the image's VOLUMEs
// anonymous volumes where nothing else is mounted (--volumes-from's
// copies included), and makes the container's volumes: an anonymous one
// gets a random name and moby's anonymous label, a named one is made if
// missing (with --mount's labels), as moby's create does. A copied
// volume is the other container's, which holds it. On failure the
// anonymous volumes it made are removed.
func (d *Daemon) planVolumes(cfg *container.Config, img *image.Image) (err error) {
	if img.Config != nil {
		for _, dst := range img.Config.Volumes {
			if !slices.Contains(cfg.Volumes, dst) {
				cfg.Volumes = append(cfg.Volumes, dst) // inspect's Config.Volumes, as moby's merge
			}
		}
	}
	for _, dst := range cfg.Volumes {
		// As moby's filepath.Clean of a path it then resolves in the
		// root filesystem: an image's relative one or one with "..", is
		// a path under the container's root (QA round 27: taken as it
		// was). The API has checked its own.
		dst = path.Clean("/" + dst)
		if dst == "/" {
			return errdefs.Invalid("the image's VOLUME %q would cover the container's root filesystem", "/")
		}
		if !slices.ContainsFunc(cfg.Mounts, func(m container.Mount) bool { return m.Destination == dst }) {
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountVolume, Destination: dst})
		}
	}
	var made []string
	defer func() {
		if err != nil {
			for _, name := range made {
				if rerr := d.volumes.Remove(name); rerr != nil {
					d.log.Warn("remove an anonymous volume of a failed create", "volume", name, "err", rerr)
				}
			}
		}
	}()
	for i := range cfg.Mounts {
		m := &cfg.Mounts[i]
		if m.Type != container.MountVolume || m.From != "" {
			continue
		}
		labels := m.VolumeLabels
		if m.Source == "" {
			// moby's createContainerOSSpecificSettings, for the volumes
			// without a source (-v /path, an image's VOLUME).
			if fileInRoot(img.RootfsDir, m.Destination) {
				return errdefs.Invalid("cannot mount volume over existing file, file exists %s", m.Destination)
			}
			labels, m.Anonymous = map[string]string{volume.AnonymousLabel: ""}, true
		}
		v, err := d.volumes.Create(m.Source, labels)
		if err != nil {
			return err
		}
		if m.Anonymous {
			made = append(made, v.Name)
		}
		m.Source, m.Mountpoint = v.Name, d.volumes.Mountpoint(v.Name)
	}
	return nil
}

// mountsFromLocked copies into cfg.Mounts, at create, the mounts of the
// containers --volumes-from names, as moby's registerMountPoints: their
// volumes (which this container then uses too), binds and --mount tmpfs
// mounts, read-only where they were or where the value's mode says ro,
// never their --tmpfs ones (no mount points in moby either). A later
// value's mount takes a destination from an earlier one's; the
// container's own -v, --mount and --tmpfs take it from both, and the
// copies from Config.Volumes and the image's VOLUMEs (planVolumes). The
// copy is made once: what the other container is given later does not
// reach this one, and it may be removed meanwhile (its volumes stay, in
// use). A container that is not there is moby's 400, not a 404, on
// which the docker CLI would try to pull the image.
func (d *Daemon) mountsFromLocked(cfg *container.Config) error {
	if len(cfg.VolumesFrom) == 0 {
		return nil
	}
	own := make(map[string]bool, len(cfg.Mounts))
	for _, m := range cfg.Mounts {
		own[m.Destination] = true
	}
	var copies []container.Mount
	for _, spec := range cfg.VolumesFrom {
		ref, readOnly := container.VolumesFromRef(spec)
		cs, err := d.lookupLocked(ref)
		if err != nil {
			return errdefs.WithKind(errdefs.KindInvalid, err)
		}
		for _, m := range cs.c.Config.Mounts {
			if m.Flag || own[m.Destination] {
				continue
			}
			cp := container.Mount{Type: m.Type, Source: m.Source, Destination: m.Destination, Mountpoint: m.Mountpoint,
				ReadOnly: m.ReadOnly || readOnly, Propagation: m.Propagation, Options: slices.Clone(m.Options),
				Anonymous: m.Anonymous, From: cs.c.ID,
				// moby's copy has no SkipMountpointCreation: a bind's
				// missing source is made at start.
				CreateSource: m.Type == container.MountBind}
			copies = slices.DeleteFunc(copies, func(o container.Mount) bool { return o.Destination == cp.Destination })
			copies = append(copies, cp)
		}
	}
	cfg.Mounts = append(cfg.Mounts, copies...)
	return nil
}

// copyUpLocked fills c's new volumes with what the image has at their
// paths, with d.mu held on entry and on return but not while it copies,
// nor while it waits for another create filling a volume c shares: c is
// pending meanwhile, its name and its volumes held (nameHolderLocked,
// volumeUsersLocked), so that no other create takes the name and no
// removal takes a volume. The caller registers c once its record is on
// disk (recordCreateLocked, pending again while it waits).
func (d *Daemon) copyUpLocked(c *container.Container, img *image.Image) error {
	d.pending[c.ID] = c
	defer delete(d.pending, c.ID)
	copies := d.claimCopyUpsLocked(c.Config)
	if len(copies) == 0 {
		return nil
	}
	d.mu.Unlock()
	err := d.populateVolumes(copies, img)
	d.mu.Lock()
	d.releaseCopyUpsLocked(copies)
	return err
}

// claimCopyUpsLocked returns cfg's volume mounts that populateVolumes is
// to fill: those of volumes still empty (unless nocopy), each claimed in
// d.copying, so that two creates never fill one volume at once. A volume
// another create is filling is waited for (d.mu released meanwhile), and
// is then no longer empty. releaseCopyUpsLocked gives the claims back.
func (d *Daemon) claimCopyUpsLocked(cfg container.Config) []container.Mount {
	for {
		var busy chan struct{}
		var copies []container.Mount
		for _, m := range cfg.Mounts {
			if m.Type != container.MountVolume || m.NoCopy || m.From != "" {
				continue // a copied volume is filled by its own creator, as moby's CopyData false
			}
			if ch := d.copying[m.Source]; ch != nil {
				busy = ch
				break
			}
			if d.volumes.Empty(m.Source) && !slices.ContainsFunc(copies, func(o container.Mount) bool { return o.Source == m.Source }) {
				copies = append(copies, m)
			}
		}
		if busy == nil {
			for _, m := range copies {
				d.copying[m.Source] = make(chan struct{})
			}
			return copies
		}
		d.mu.Unlock()
		<-busy
		d.mu.Lock()
	}
}

// releaseCopyUpsLocked ends the claims of claimCopyUpsLocked.
func (d *Daemon) releaseCopyUpsLocked(copies []container.Mount) {
	for _, m := range copies {
		close(d.copying[m.Source])
		delete(d.copying, m.Source)
	}
}

// populateVolumes copies into each of the volume mounts given what the
// image has at its path, once, at create, as moby's populateVolumes: a
// volume emptied later stays empty.
func (d *Daemon) populateVolumes(copies []container.Mount, img *image.Image) error {
	for _, m := range copies {
		if err := copyUp(img.RootfsDir, m.Destination, d.volumes.Mountpoint(m.Source)); err != nil {
			return fmt.Errorf("copy the image's %s into volume %s: %w", m.Destination, m.Source, err)
		}
	}
	return nil
}

// volumeBinds turns c's volumes into the binds runc makes of their
// directories.
func (d *Daemon) volumeBinds(c *container.Container) ([]container.Mount, error) {
	out := make([]container.Mount, 0, len(c.Config.Mounts))
	for _, m := range c.Config.Mounts {
		if m.Type != container.MountVolume {
			out = append(out, m)
			continue
		}
		if _, err := d.volumes.Get(m.Source); err != nil {
			return nil, err
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
	// Into a directory beside the volume's, its entries moved in once all
	// are copied: a copy cut short (a full disk, a daemon killed) leaves
	// the volume empty, to be filled by the next create, where it left a
	// part of the files that no create completed (the volume was no
	// longer empty), and the next start deletes what was staged
	// (volume.NewStore). Only a crash within the moves, one rename per
	// top-level entry, still leaves a part.
	stage := volume.StagingDir(to)
	if err := os.RemoveAll(stage); err != nil {
		return err
	}
	if err := os.Mkdir(stage, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(berthruntime.WriteTree(pw, src)) }()
	err = image.ExtractTree(pr, stage)
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range ents {
		// A name a container using the volume made meanwhile stays its.
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(stage, e.Name()), unix.AT_FDCWD, filepath.Join(to, e.Name()), unix.RENAME_NOREPLACE)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("move %s into the volume: %w", e.Name(), err)
		}
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

// fileInRoot says whether the tree at root has something other than a
// directory at p, its links resolved as the container would.
func fileInRoot(root, p string) bool {
	dir, err := os.Open(root)
	if err != nil {
		return false
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), strings.TrimPrefix(p, "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR
}

// volumeUsers are the IDs of the containers that mount volume name.
func (d *Daemon) volumeUsers(name string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.volumeUsersLocked(name)
}

// volumeUsersLocked is volumeUsers with d.mu held: the containers
// registered, and those being created (pending) that mount it.
func (d *Daemon) volumeUsersLocked(name string) []string {
	var ids []string
	uses := func(c *container.Container) bool {
		return slices.ContainsFunc(c.Config.Mounts, func(m container.Mount) bool { return m.Type == container.MountVolume && m.Source == name })
	}
	for id, cs := range d.containers {
		if uses(cs.c) {
			ids = append(ids, id)
		}
	}
	for id, c := range d.pending {
		if uses(c) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// forgetUnused forgets volume name if no container uses it, both under
// d.mu (a create that would use it registers under d.mu too), and
// returns where its files went, for volume.Purge.
func (d *Daemon) forgetUnused(name string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if users := d.volumeUsersLocked(name); len(users) > 0 {
		return "", errdefs.Conflict("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	return d.volumes.Forget(name)
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
	gone, err := d.forgetUnused(name)
	if force && errdefs.Is(err, errdefs.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return volume.Purge(gone)
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
		if (!all && !v.Anonymous()) || !match(d.volumeInfo(v, false)) {
			continue
		}
		size := d.volumes.Size(v.Name)
		gone, err := d.forgetUnused(v.Name)
		if errdefs.Is(err, errdefs.KindConflict) || errdefs.Is(err, errdefs.KindNotFound) {
			continue // in use, or removed meanwhile
		}
		if err == nil {
			err = volume.Purge(gone)
		}
		if err != nil {
			return names, freed, err
		}
		names, freed = append(names, v.Name), freed+uint64(size)
	}
	d.volumeEvent("", "prune", map[string]string{"reclaimed": strconv.FormatUint(freed, 10)})
	return names, freed, nil
}

// removeAnonymousVolumes removes the volumes c asked for without a name
// that no other container uses (docker rm -v, and run --rm), as moby's —
// never one it named, even an anonymous one; errors are logged: the
// container is gone either way.
func (d *Daemon) removeAnonymousVolumes(c *container.Container) {
	for _, m := range c.Config.Mounts {
		if m.Type != container.MountVolume || !m.Anonymous {
			continue
		}
		gone, err := d.forgetUnused(m.Source)
		if err == nil {
			err = volume.Purge(gone)
		}
		if err != nil && !errdefs.Is(err, errdefs.KindConflict) && !errdefs.Is(err, errdefs.KindNotFound) {
			d.log.Warn("remove an anonymous volume", "volume", m.Source, "err", err)
		}
	}
}

// removeMadeVolumes removes the anonymous volumes planVolumes made for a
// create that then failed (d.mu held; no other container can use them).
func (d *Daemon) removeMadeVolumes(cfg container.Config) {
	for _, m := range cfg.Mounts {
		if m.Type == container.MountVolume && m.Anonymous && m.From == "" {
			if err := d.volumes.Remove(m.Source); err != nil {
				d.log.Warn("remove an anonymous volume of a failed create", "volume", m.Source, "err", err)
			}
		}
	}
}
