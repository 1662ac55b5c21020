package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
)

// errFilesClosed ends a docker cp or export that a start or a remove of
// its container cut short.
var errFilesClosed = errdefs.Conflict("the container started or was removed during the copy")

// filesUse is an open view of a container's files (docker cp, export).
// A container has one at a time (ctrState.files): two views of a stopped
// container would mount two overlays on its upper directory. A start
// waits a while for it to end (waitFiles) and a remove ends it at
// once (endFilesLocked), rather than wait for a client that may never
// finish reading.
type filesUse struct {
	v    *runtime.FSView
	once sync.Once
	done chan struct{} // closed once the view is closed

	mu     sync.Mutex
	stopFn func() // makes what the view runs return: its stream fails

	moved  atomic.Int64 // bytes the client took or gave so far: its progress
	upload atomic.Bool  // docker cp into the container: never cut for idling
}

// onStop sets what stop does.
func (u *filesUse) onStop(f func()) {
	u.mu.Lock()
	u.stopFn = f
	u.mu.Unlock()
}

func (u *filesUse) stop() {
	u.mu.Lock()
	f := u.stopFn
	u.mu.Unlock()
	if f != nil {
		f()
	}
}

// close ends the view (after what runs in it returns) and tells waiters.
func (u *filesUse) close() {
	u.once.Do(func() {
		u.v.Close()
		close(u.done)
	})
}

// startFilesWait bounds how long a start waits for a docker cp or export
// of the container that is still streaming (moby's start waits for the
// container lock the copy holds, for as long as it takes); filesIdle is
// how long the copy may move nothing before the start ends it.
const (
	startFilesWait = 30 * time.Second
	filesIdle      = 2 * time.Second
)

// waitFiles lets the container's open view, if any, end by itself while
// its client keeps moving data, for up to limit or until ctx ends (a
// start cut a copy short where moby's completes it; a client that stopped
// still does not hold the start for long). It holds no lock while it
// waits: the start ends whatever view is open when it takes cs.mu.
func (cs *ctrState) waitFiles(ctx context.Context, limit time.Duration) {
	cs.mu.Lock()
	u := cs.files
	cs.mu.Unlock()
	if u == nil {
		return
	}
	deadline := time.Now().Add(limit)
	last := u.moved.Load()
	for time.Now().Before(deadline) {
		t := time.NewTimer(min(filesIdle, time.Until(deadline)))
		select {
		case <-u.done:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		now := u.moved.Load()
		if isClosed(u.done) || ctx.Err() != nil || now == last {
			return
		}
		last = now
	}
}

// endFilesLocked (cs.mu held) ends the container's open view, if any, and
// waits until it is closed: what it runs returns at once (stop), or
// after the regular file it reads or writes.
func (cs *ctrState) endFilesLocked() {
	if u := cs.files; u != nil {
		u.stop()
		u.close()
		cs.files = nil
	}
}

// openFiles opens a view of ref's files, the container's only one: it
// waits for another to close first (or ctx to end). etcFiles puts
// berth's /etc files over the container's, as the container sees them.
func (d *Daemon) openFiles(ctx context.Context, ref string, etcFiles bool) (*filesUse, *container.Container, error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return nil, nil, err
	}
	for {
		cs.mu.Lock()
		if cs.goneLocked() {
			cs.mu.Unlock()
			return nil, nil, errdefs.NotFound("No such container: %s", ref)
		}
		if u := cs.files; u != nil && !isClosed(u.done) {
			// Another copy has the files: wait for it while its client
			// moves data; one that moved nothing for filesIdle has a
			// client that stopped, and gives way (it held every other
			// copy of the container for as long as its socket stayed).
			last := u.moved.Load()
			cs.mu.Unlock()
			t := time.NewTimer(filesIdle)
			select {
			case <-u.done:
			case <-ctx.Done():
				t.Stop()
				return nil, nil, ctx.Err()
			case <-t.C:
				cs.mu.Lock()
				// An upload pauses while the disk catches up, or while
				// its client's tar does: it is waited for, never cut.
				if cs.files == u && u.moved.Load() == last && !u.upload.Load() {
					cs.endFilesLocked()
				}
				cs.mu.Unlock()
			}
			t.Stop()
			continue
		}
		break
	}
	defer cs.mu.Unlock()
	c := cloneContainer(cs.c)
	img, err := d.images.Get(c.Config.ImageID)
	if err != nil {
		return nil, nil, err
	}
	files := map[string]runtime.FSMount{}
	for dst, src := range map[string]string{"/etc/hosts": c.HostsPath, "/etc/hostname": c.HostnamePath, "/etc/resolv.conf": c.ResolvConfPath} {
		if _, err := os.Stat(src); etcFiles && src != "" && err == nil {
			files[dst] = runtime.FSMount{Source: src}
		}
	}
	// And the host paths bound in, over them, as the container sees them
	// (moby's view mounts the container's volumes and binds too).
	for _, m := range c.Config.Mounts {
		src := m.Source
		if m.Type == container.MountVolume {
			src = d.volumes.Mountpoint(m.Source)
		}
		if _, err := os.Stat(src); etcFiles && m.Type != container.MountTmpfs && err == nil {
			files[m.Destination] = runtime.FSMount{Source: src, ReadOnly: m.ReadOnly}
		}
	}
	v, err := d.runtime.OpenFS(c.ID, img.RootfsDir, files)
	if err != nil {
		return nil, nil, err
	}
	u := &filesUse{v: v, done: make(chan struct{})}
	cs.files = u
	return u, c, nil
}

// fileError is moby's answer for an error of an operation in a
// container's files: a missing path is a 404 naming the path and the
// container as given, a refusal keeps its kind, anything else is the
// daemon's (500).
func fileError(err error, path, ref string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runtime.ErrViewClosed):
		return errFilesClosed
	case errors.Is(err, os.ErrNotExist):
		return errdefs.NotFound("Could not find the file %s in container %s", path, ref)
	case errdefs.Is(err, errdefs.KindInvalid), errdefs.Is(err, errdefs.KindConflict):
		return err
	default:
		return errdefs.WithKind(errdefs.KindUnknown, err)
	}
}

// ContainerStatPath is docker cp's look at a path in a container (moby's
// ContainerStatPath): what its file system shows there, the files berth
// mounts over it included.
func (d *Daemon) ContainerStatPath(ctx context.Context, ref, path string) (container.PathStat, error) {
	u, _, err := d.openFiles(ctx, ref, true)
	if err != nil {
		return container.PathStat{}, err
	}
	defer u.close()
	var st container.PathStat
	err = u.v.Run(func() (err error) {
		st, err = runtime.Stat(path)
		return err
	})
	return st, fileError(err, path, ref)
}

// ContainerArchivePath is docker cp out of a container: a tar stream of
// path, and what it is (moby's ContainerArchivePath). The view stays open
// until the stream is closed, or the container starts or is removed.
func (d *Daemon) ContainerArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error) {
	u, c, err := d.openFiles(ctx, ref, true)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	var st container.PathStat
	err = u.v.Run(func() (err error) {
		st, err = runtime.Stat(runtime.CopyPath(path))
		return err
	})
	if err != nil {
		u.close()
		return nil, st, fileError(err, path, ref)
	}
	out := stream(u, func(w io.Writer) error { return runtime.Archive(w, path, st.Mode.IsDir()) }, nil)
	d.containerEvent(c, "archive-path", nil) // as moby: when the stream is handed out
	return out, st, nil
}

// ContainerExport is docker export: a tar stream of the container's root
// file system, without the files berth mounts over it (moby's
// ContainerExport, which logs "export" once all of it was written).
func (d *Daemon) ContainerExport(ctx context.Context, ref string) (io.ReadCloser, error) {
	u, c, err := d.openFiles(ctx, ref, false)
	if err != nil {
		return nil, err
	}
	return stream(u, runtime.Export, func() { d.containerEvent(c, "export", nil) }), nil
}

// stream runs write in u's view and returns what it writes; ok, if set,
// runs once all of it was written. The view closes with the stream, or
// when a start or a remove of the container ends it.
func stream(u *filesUse, write func(io.Writer) error, ok func()) io.ReadCloser {
	pr, pw := io.Pipe()
	u.onStop(func() { pr.CloseWithError(errFilesClosed) })
	if err := u.v.Go(func() {
		err := write(pw)
		pw.CloseWithError(err)
		if err == nil && ok != nil {
			ok()
		}
	}); err != nil {
		pw.CloseWithError(errFilesClosed) // a start or a removal came first
	}
	return &archiveReader{PipeReader: pr, u: u}
}

// archiveReader is a stream from a view; closing it closes the view.
type archiveReader struct {
	*io.PipeReader
	u *filesUse
}

func (r *archiveReader) Read(p []byte) (int, error) {
	n, err := r.PipeReader.Read(p)
	r.u.moved.Add(int64(n))
	return n, err
}

// countingReader counts what an upload gives a view into u.moved.
type countingReader struct {
	r io.Reader
	u *filesUse
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.u.moved.Add(int64(n))
	return n, err
}

func (r *archiveReader) Close() error {
	err := r.PipeReader.Close()
	r.u.close()
	return err
}

// ContainerExtractToDir is docker cp into a container: it unpacks the tar
// stream content into the directory at path (moby's
// ContainerExtractToDir). copyUIDGID gives the files to the container's
// user instead of the IDs in the archive.
func (d *Daemon) ContainerExtractToDir(ctx context.Context, ref, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error {
	u, c, err := d.openFiles(ctx, ref, true)
	if err != nil {
		return err
	}
	defer u.close()
	u.upload.Store(true)
	opts := runtime.ExtractOptions{NoOverwriteDirNonDir: noOverwriteDirNonDir, ReadOnly: c.Config.ReadonlyRootfs}
	if copyUIDGID {
		opts.Owner = c.Config.User
	}
	// The upload reaches the view through a pipe, so that a start or a
	// remove can end a view waiting on a client that sends nothing. Its
	// compression (gzip, bzip2, xz, zstd, as moby's Untar takes them) is
	// undone here, outside the view: the xz program that runs is the
	// host's.
	pr, pw := io.Pipe()
	compressed := make(chan bool, 1)
	go func() {
		src, closeSrc, err := image.Decompressed(ctx, countingReader{content, u})
		compressed <- err == nil && image.IsCompressed(src)
		if err == nil {
			_, err = io.Copy(pw, src)
			closeSrc()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	// On the writer's side, so that Extract's next read returns it.
	u.onStop(func() { pw.CloseWithError(errFilesClosed) })
	// A missing destination is the 404 naming it, also when it is a
	// symlink to nothing (moby's Join with "/", which takes ".." away
	// before any link is followed, then EvalSymlinks and Lstat: the
	// view's thread is in the container's root, where os.Stat follows
	// links as that does); a missing file inside the archive's work (a
	// hard link to nothing) is not: it is the extraction's error, as
	// moby's untar returns it.
	var destErr error
	err = u.v.Run(func() error {
		if _, err := os.Stat(filepath.Join("/", path)); err != nil {
			destErr = err
			return nil
		}
		return runtime.Extract(pr, path, opts)
	})
	// A compressed stream's end (its check) follows the tar's: read it
	// too, so that a stream cut or corrupt there is an error. A plain
	// one's is not waited for.
	if err == nil && destErr == nil {
		select {
		case c := <-compressed:
			if c {
				err = image.DrainTail(pr)
			}
		default: // not sent: the view read no byte of the upload
		}
	}
	switch {
	case destErr != nil:
		return fileError(destErr, path, ref)
	case err != nil && errors.Is(err, os.ErrNotExist):
		return errdefs.WithKind(errdefs.KindUnknown, fmt.Errorf("extract the archive into %s: %w", path, err))
	case err != nil:
		return fileError(err, path, ref)
	}
	d.containerEvent(c, "extract-to-dir", nil)
	return nil
}
