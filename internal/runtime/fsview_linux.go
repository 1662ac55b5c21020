package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// FSView runs file operations in a container's root file system as the
// container sees it (docker cp, docker export): its overlay, with the
// files berth mounts over it (/etc/hosts, /etc/hostname,
// /etc/resolv.conf), from one OS thread that has a mount namespace of its
// own and the container's root as its root. Paths are the container's and
// resolve inside it — "..", absolute symlinks and all — as in moby's
// containerFSView, which does the same (unshare, then chroot).
//
// A running container's overlay is the one mounted for it; a stopped
// container's is mounted in the view's namespace alone. Close unmounts
// what the view mounted before it returns. The caller keeps a container
// to one view at a time, and ends it before the container starts or is
// removed: two overlays on one upper directory are undefined.
type FSView struct {
	ops     chan func()
	closing chan struct{} // closed by Close: no op is taken after it
	done    chan struct{}
	close   sync.Once
}

// ErrViewClosed is what Run and Go return once the view is closed (a
// start or a removal of the container ended it meanwhile).
var ErrViewClosed = errors.New("the container's file system view is closed")

// FSMount is a host file or directory a view mounts over a container
// path: berth's /etc files, the user's binds.
type FSMount struct {
	Source   string
	ReadOnly bool // read-only all the way down, as the container has it
}

// OpenFS opens a view of container id's root file system; lower is its
// image's tree, files what is mounted over its paths.
func (r *Runtime) OpenFS(id, lower string, files map[string]FSMount) (*FSView, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	v := &FSView{ops: make(chan func()), closing: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go v.serve(r, id, lower, files, ready)
	if err := <-ready; err != nil {
		<-v.done
		return nil, err
	}
	return v, nil
}

// serve enters the container's file system on a thread of its own, runs
// the view's operations there until Close, and leaves it unmounted. The
// thread stays locked to the goroutine, so the Go runtime ends it when
// serve returns: its namespace and its root never reach another
// goroutine.
func (v *FSView) serve(r *Runtime, id, lower string, files map[string]FSMount, ready chan<- error) {
	goruntime.LockOSThread()
	defer close(v.done)
	e := &fsEntry{}
	err := e.enter(r, id, lower, files)
	if err != nil {
		ready <- fmt.Errorf("open the container's file system: %w", err)
	} else {
		ready <- nil
		for done := false; !done; {
			select {
			case op := <-v.ops:
				op()
			case <-v.closing:
				done = true
			}
		}
	}
	if err := e.leave(); err != nil {
		r.log.Warn("leaving a container's file system", "container", id, "err", err)
	}
}

// fsEntry is what entering a container's file system did, for leave to
// undo: the host's root to go back to, and the mounts made.
type fsEntry struct {
	hostRoot int    // an O_PATH descriptor of the host's root; -1 if none
	root     string // the container's root on the host
	moved    []string
	chrooted bool
}

// enter gives the calling thread a mount namespace of its own, the
// container's overlay (mounting it if it is not), the files over it, and
// its root as root and working directory.
func (e *fsEntry) enter(r *Runtime, id, lower string, files map[string]FSMount) error {
	e.hostRoot = -1
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	// Nothing mounted here reaches the daemon's namespace.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	e.hostRoot, e.root = fd, r.rootfs(id)
	if err := r.ensureOverlay(id, lower); err != nil {
		return err
	}
	// The host files are opened as mount trees before the root changes
	// and moved onto their container paths after, so that those paths
	// resolve inside the container: a symlink there is followed (as runc
	// follows it), and cannot lead out.
	dsts := make([]string, 0, len(files))
	for dst := range files {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	trees := make([]int, 0, len(dsts))
	defer func() {
		for _, fd := range trees {
			unix.Close(fd)
		}
	}()
	isDir := make([]bool, len(dsts))
	for i, dst := range dsts {
		m := files[dst]
		fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("open %s: %w", m.Source, err)
		}
		trees = append(trees, fd)
		if m.ReadOnly {
			// As moby's view: a read-only bind stays read-only here, all
			// the way down, so that no copy writes through it.
			attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
			if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
				return fmt.Errorf("make %s read-only: %w", m.Source, err)
			}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		isDir[i] = st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	if err := unix.Chroot(e.root); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	e.chrooted = true
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	for i, dst := range dsts {
		if err := ensureMountPoint(dst, isDir[i]); err != nil {
			return fmt.Errorf("mount point %s: %w", dst, err)
		}
		if err := unix.MoveMount(trees[i], "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
			return fmt.Errorf("mount %s: %w", dst, err)
		}
		e.moved = append(e.moved, dst)
	}
	return nil
}

// leave unmounts what enter mounted, from the host's root, so that the
// container's overlay is gone when the view closes: a start that mounts
// it again right after must not find a second one on its upper directory.
func (e *fsEntry) leave() error {
	if e.hostRoot < 0 {
		return nil
	}
	defer unix.Close(e.hostRoot)
	var errs []error
	for i := len(e.moved) - 1; i >= 0; i-- {
		errs = append(errs, unmountAll(e.moved[i]))
	}
	if e.chrooted {
		if err := unix.Fchdir(e.hostRoot); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := unix.Chroot("."); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	return errors.Join(append(errs, unmountAll(e.root))...)
}

// Run runs fn in the view and returns its error, or ErrViewClosed if
// the view was closed before fn ran. (The view's ops channel is never
// closed: a Close racing a Run panicked the sender.)
func (v *FSView) Run(fn func() error) error {
	errc := make(chan error, 1)
	select {
	case v.ops <- func() { errc <- fn() }:
		return <-errc
	case <-v.closing:
		return ErrViewClosed
	}
}

// Go starts fn in the view and returns at once, or returns ErrViewClosed
// without running it; the view runs nothing else until fn returns.
func (v *FSView) Go(fn func()) error {
	select {
	case v.ops <- fn:
		return nil
	case <-v.closing:
		return ErrViewClosed
	}
}

// Close ends the view once what runs in it has returned, and its mounts.
func (v *FSView) Close() {
	v.close.Do(func() { close(v.closing) })
	<-v.done
}

// ensureMountPoint makes dst (in the view, so inside the container) a
// directory or a file to mount on, unless something is there, as runc
// makes mount points at start and moby's view for a container that has
// not started (the container's layer gets it, as with runc).
func ensureMountPoint(dst string, dir bool) error {
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	return f.Close()
}
