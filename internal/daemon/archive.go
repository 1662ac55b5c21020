package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime"
)

// ContainerStatPath is docker cp's look at a path in a container (moby's
// ContainerStatPath): what its file system shows there, the files berth
// mounts over it included.
func (d *Daemon) ContainerStatPath(ctx context.Context, ref, path string) (container.PathStat, error) {
	var st container.PathStat
	err := d.inFiles(ref, path, true, func(v *runtime.FSView, _ fsInfo) error {
		return v.Run(func() (err error) {
			st, err = runtime.Stat(path)
			return err
		})
	})
	return st, err
}

// ContainerArchivePath is docker cp out of a container: a tar stream of
// path, and what it is (moby's ContainerArchivePath). The container's
// files stay open, and it cannot start or be removed, until the stream
// is closed.
func (d *Daemon) ContainerArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error) {
	var (
		st  container.PathStat
		out io.ReadCloser
	)
	abs := runtime.CopyPath(path)
	err := d.inFiles(ref, path, true, func(v *runtime.FSView, info fsInfo) error {
		err := v.Run(func() (err error) {
			st, err = runtime.Stat(abs)
			return err
		})
		if err != nil {
			return err
		}
		out = d.stream(v, info, "archive-path", func(w io.Writer) error { return runtime.Archive(w, path, st.Mode.IsDir()) })
		return nil
	})
	return out, st, err
}

// ContainerExport is docker export: a tar stream of the container's root
// file system, without the files berth mounts over it (moby's
// ContainerExport). The container cannot start or be removed until the
// stream is closed.
func (d *Daemon) ContainerExport(ctx context.Context, ref string) (io.ReadCloser, error) {
	var out io.ReadCloser
	err := d.inFiles(ref, "/", false, func(v *runtime.FSView, info fsInfo) error {
		out = d.stream(v, info, "export", runtime.Export)
		return nil
	})
	return out, err
}

// ContainerExtractToDir is docker cp into a container: it unpacks the tar
// stream content into the directory at path (moby's ContainerExtractToDir).
// copyUIDGID gives the files to the container's user instead of the IDs
// in the archive.
func (d *Daemon) ContainerExtractToDir(ctx context.Context, ref, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error {
	err := d.inFiles(ref, path, true, func(v *runtime.FSView, info fsInfo) error {
		opts := runtime.ExtractOptions{NoOverwriteDirNonDir: noOverwriteDirNonDir, ReadOnly: info.c.Config.ReadonlyRootfs}
		if copyUIDGID {
			opts.Owner = info.c.Config.User
		}
		if err := v.Run(func() error { return runtime.Extract(content, path, opts) }); err != nil {
			return err
		}
		d.containerEvent(info.c, "extract-to-dir", nil)
		return nil
	})
	return err
}

// stream runs write in v and returns what it writes; the view stays open
// until that is closed, and the container's event action is sent then.
func (d *Daemon) stream(v *runtime.FSView, info fsInfo, action string, write func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	info.keep()
	v.Go(func() { pw.CloseWithError(write(pw)) })
	return &archiveReader{PipeReader: pr, done: func() {
		v.Close()
		info.release()
		d.containerEvent(info.c, action, nil)
	}}
}

// fsInfo is what inFiles hands its function: a copy of the container,
// and keep, which makes the container's files stay open after the
// function returns, until release.
type fsInfo struct {
	c       *container.Container
	keep    func()
	release func()
}

// inFiles opens a view of ref's files and runs fn with it, with the
// container kept from starting and from removal meanwhile; errors are
// moby's: a missing path is a 404 naming path and ref as given, a refusal
// keeps its kind, anything else is the daemon's (500).
func (d *Daemon) inFiles(ref, path string, etcFiles bool, fn func(*runtime.FSView, fsInfo) error) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	if cs.goneLocked() {
		cs.mu.Unlock()
		return errdefs.NotFound("No such container: %s", ref)
	}
	c := cloneContainer(cs.c)
	cs.files.RLock()
	cs.mu.Unlock()
	var once sync.Once
	kept := false
	info := fsInfo{c: c, keep: func() { kept = true }, release: func() { once.Do(cs.files.RUnlock) }}
	defer func() {
		if !kept {
			info.release()
		}
	}()
	img, err := d.images.Get(c.Config.ImageID)
	if err != nil {
		return err
	}
	files := map[string]string{}
	for dst, src := range map[string]string{"/etc/hosts": c.HostsPath, "/etc/hostname": c.HostnamePath, "/etc/resolv.conf": c.ResolvConfPath} {
		if _, err := os.Stat(src); etcFiles && src != "" && err == nil {
			files[dst] = src
		}
	}
	v, err := d.runtime.OpenFS(c.ID, img.RootfsDir, files)
	if err != nil {
		return errdefs.WithKind(errdefs.KindUnknown, err)
	}
	err = fn(v, info)
	if !kept {
		v.Close()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return errdefs.NotFound("Could not find the file %s in container %s", path, ref)
	case errdefs.Is(err, errdefs.KindInvalid):
		return err
	default:
		return errdefs.WithKind(errdefs.KindUnknown, err)
	}
}

// archiveReader is the tar stream of ContainerArchivePath; done runs once
// it is closed and the archiver has stopped.
type archiveReader struct {
	*io.PipeReader
	once sync.Once
	done func()
}

func (r *archiveReader) Close() error {
	err := r.PipeReader.Close()
	r.once.Do(r.done)
	return err
}
