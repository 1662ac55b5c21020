package runtime

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Committed is what CommitTree made: the digest of the container's
// changes as a layer tar (the new image's last diff ID), the bytes of file
// content those changes hold (docker history's size of the layer) and the
// bytes of file content in the whole new tree, each file once.
type Committed struct {
	DiffID   string
	DiffSize int64
	Size     int64
}

// CommitTree makes at dst, which must not exist, the root filesystem of
// an image committed from container id (docker commit): the tree at lower
// (the container's image's) with the container's changes applied as a
// layer is applied, from its overlay upper directory: a whiteout deletes,
// an opaque directory replaces the image's, anything else replaces what
// the image has at its path with a copy of the container's. The image's
// files are hard links to lower's, which is safe because an image's tree
// is never written to: overlayfs copies a file up before a container
// changes it, and the new tree's own changes are copies. A container that
// never started changed nothing. The init layer's files are not taken
// (moby commits the container's read-write layer only), nor what is
// mounted over the root (volumes, binds, /etc/hosts): none of it is in the
// upper directory.
//
// The upper directory is the container's to change, also while this runs
// (docker commit --pause=false): it is walked through descriptors
// (walkTree), and a file is copied only if the descriptor opened without
// following a link is still the regular file the walk saw. Entries that
// overlayfs's redirect_dir or metacopy would make (a directory renamed, a
// file whose data stayed below) are refused rather than read wrong;
// berth's mounts have redirect_dir off, which turns both off.
func (r *Runtime) CommitTree(ctx context.Context, id, lower, dst string) (Committed, error) {
	if err := checkID(id); err != nil {
		return Committed{}, err
	}
	h := sha256.New()
	c, err := commitTree(ctx, r.upperDir(id), lower, dst, h)
	c.DiffID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return c, err
}

// CommitUpper is CommitTree with the changes in the directory upper, laid
// over lower ("" for an empty tree) as a container's upper directory is
// (docker build's COPY, ADD and WORKDIR stage their files so).
func CommitUpper(ctx context.Context, upper, lower, dst string) (Committed, error) {
	if lower == "" {
		empty, err := os.MkdirTemp(filepath.Dir(dst), "empty-")
		if err != nil {
			return Committed{}, err
		}
		defer os.Remove(empty)
		lower = empty
	}
	h := sha256.New()
	c, err := commitTree(ctx, upper, lower, dst, h)
	c.DiffID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return c, err
}

// commitTree is CommitTree from the upper directory upper, writing the
// changes' layer tar into layer.
func commitTree(ctx context.Context, upper, lower, dst string, layer io.Writer) (Committed, error) {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return Committed{}, err
	}
	times := map[string][2]unix.Timespec{} // a directory's atime and mtime, by its path from the root
	if err := linkTree(ctx, lower, dst, times); err != nil {
		return Committed{}, fmt.Errorf("link the image's files: %w", err)
	}
	a := applier{ctx: ctx, dst: dst, times: times, copies: map[[2]uint64]copied{},
		tar: tarAppender{tw: tar.NewWriter(layer), links: map[[2]uint64]string{}}}
	if err := walkTree(upper, a.apply); err != nil {
		return Committed{}, fmt.Errorf("apply the container's changes: %w", err)
	}
	if err := a.tar.tw.Close(); err != nil {
		return Committed{}, err
	}
	if err := setDirTimes(dst, times); err != nil {
		return Committed{}, err
	}
	size, err := treeSize(dst)
	if err != nil {
		return Committed{}, err
	}
	return Committed{DiffSize: a.size, Size: size}, nil
}

// setDirTimes gives the directories of the tree at root their times, once
// nothing more is made in them. Each is opened beneath root without
// following a symbolic link on the way: the tree holds the container's
// links, which could lead out of it (a directory of the image the
// container replaced with a link to the host's /usr had its
// subdirectories' times written there). One that is no longer a
// directory there is left alone.
func setDirTimes(root string, times map[string][2]unix.Timespec) error {
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	for rel, ts := range times {
		fd := rfd
		if rel != "/" {
			fd, err = unix.Openat2(rfd, strings.TrimPrefix(rel, "/"), &unix.OpenHow{
				Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
			})
			if err != nil {
				continue
			}
		}
		err = unix.UtimesNanoAt(fd, ".", ts[:], 0)
		if fd != rfd {
			unix.Close(fd)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// linkTree makes dst (an empty directory) a copy of the tree at src whose
// directories are its own and whose other entries are hard links to
// src's; the directories' times go into times, to be set once the tree is
// complete.
func linkTree(ctx context.Context, src, dst string, times map[string][2]unix.Timespec) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if !d.IsDir() {
			return os.Link(p, target)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if rel != "." {
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		}
		if err := setOwnerMode(target, &st); err != nil {
			return err
		}
		if err := copyXattrs(target, func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
			func(name string, buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) }); err != nil {
			return err
		}
		key := "/"
		if rel != "." {
			key += filepath.ToSlash(rel)
		}
		times[key] = [2]unix.Timespec{st.Atim, st.Mtim}
		return nil
	})
}

// applier applies the entries of a container's upper directory, in
// walkTree's order (a directory before what is in it), to the new tree,
// and writes each change into tar, whose digest is the layer's diff ID.
// The new tree is written by path names: every directory on the way to an
// entry of the upper directory is one that dir made (or found) a real
// directory before (walkTree gives a directory before what is in it), so
// no link of the container's is ever followed there.
type applier struct {
	ctx   context.Context
	dst   string
	times map[string][2]unix.Timespec
	// copies are the upper directory's files with several links, by
	// device and inode, with their first copy: the others become links to
	// it, as the container had them, and hard links in the layer's tar.
	copies map[[2]uint64]copied
	tar    tarAppender
	size   int64
}

// copied is the first copy of a file with several links: its path in the
// new tree and its name in the layer's tar.
type copied struct{ path, name string }

func (a *applier) apply(e walkEntry) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	target := filepath.Join(a.dst, e.rel)
	name := strings.TrimPrefix(e.rel, "/")
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if e.st.Rdev == 0 { // a whiteout: deleted
			a.forget(e.rel, true)
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			return a.marker(path.Join(path.Dir(name), ".wh."+path.Base(name)))
		}
	case unix.S_IFDIR:
		return a.dir(e, target, name)
	case unix.S_IFSOCK:
		return nil // a socket is not a file an image can hold (tar has none)
	}
	a.forget(e.rel, true)
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	key := [2]uint64{e.st.Dev, e.st.Ino}
	if first, ok := a.copies[key]; ok && e.st.Nlink > 1 {
		if err := os.Link(first.path, target); err == nil {
			var st unix.Stat_t
			if err := unix.Lstat(target, &st); err != nil {
				return err
			}
			if k := [2]uint64{st.Dev, st.Ino}; a.tar.links[k] == "" {
				a.tar.links[k] = first.name // the first went into the tar with one link
			}
			return a.tar.add(target, name)
		}
	}
	done, err := a.copy(e, target)
	if err != nil || !done {
		return err
	}
	if e.st.Nlink > 1 {
		a.copies[key] = copied{target, canonicalTarName(name, false)}
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFREG {
		a.size += e.st.Size
	}
	return a.tar.add(target, name)
}

// forget drops the directory times kept for what the image had under rel
// (and for rel itself unless only its contents went): it is gone from the
// new tree, and its path may now lead through a link of the container's.
func (a *applier) forget(rel string, self bool) {
	if self {
		delete(a.times, rel)
	}
	prefix := rel + "/"
	for k := range a.times {
		if strings.HasPrefix(k, prefix) {
			delete(a.times, k)
		}
	}
}

// dir makes target the directory the upper one at e is: made where the
// image has none (or has something else there), emptied first where it is
// opaque (it hides the image's), with the upper one's owner, mode,
// extended attributes and times.
func (a *applier) dir(e walkEntry, target, name string) error {
	if _, err := fgetxattr(e.dir, "trusted.overlay.redirect"); err == nil {
		return fmt.Errorf("%s: a directory overlayfs redirected (redirect_dir) cannot be committed", e.rel)
	}
	var st unix.Stat_t
	err := unix.Lstat(target, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
	case err == nil:
		if err := os.Remove(target); err != nil {
			return err
		}
		fallthrough
	case errors.Is(err, unix.ENOENT):
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
	default:
		return err
	}
	opaqueDir := opaque(e.dir)
	if opaqueDir {
		a.forget(e.rel, false)
		names, err := readNames(target)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := os.RemoveAll(filepath.Join(target, n)); err != nil {
				return err
			}
		}
	}
	if err := setOwnerMode(target, &e.st); err != nil {
		return err
	}
	if err := copyXattrs(target, func(buf []byte) (int, error) { return unix.Flistxattr(e.dir, buf) },
		func(n string, buf []byte) (int, error) { return unix.Fgetxattr(e.dir, n, buf) }); err != nil {
		return err
	}
	a.times[e.rel] = [2]unix.Timespec{e.st.Atim, e.st.Mtim}
	if name == "" {
		return nil // the root: in no tar
	}
	// The upper directory's times in the tar (set again at the end, once
	// what is made in it has changed them), so that the same changes
	// give the same diff ID.
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, []unix.Timespec{e.st.Atim, e.st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := a.tar.add(target, name); err != nil {
		return err
	}
	if opaqueDir {
		return a.marker(name + "/.wh..wh..opq")
	}
	return nil
}

// copy makes at target a copy of the upper directory's non-directory at
// e: a regular file's content, a link's target, a device's or a FIFO's
// node; with its owner, mode, times and (a regular file's) extended
// attributes. false: it was swapped for something else meanwhile, and is
// left out.
func (a *applier) copy(e walkEntry, target string) (bool, error) {
	base := path.Base(e.rel)
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		// Found from the walk's own descriptor of its directory (not by
		// a path name, which a removal of the container could take
		// away), as a path first: opened for reading only once it is
		// known to be the regular file the walk saw (a device node
		// swapped in would otherwise be opened on the host).
		pfd, err := unix.Openat(e.parent, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, swappedOr(err)
		}
		var now unix.Stat_t
		err = unix.Fstat(pfd, &now)
		if err != nil || now.Mode&unix.S_IFMT != unix.S_IFREG || now.Ino != e.st.Ino || now.Dev != e.st.Dev {
			unix.Close(pfd)
			return false, err
		}
		fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		unix.Close(pfd)
		if err != nil {
			return false, err
		}
		src := os.NewFile(uintptr(fd), e.rel)
		defer src.Close()
		if _, err := fgetxattr(fd, "trusted.overlay.metacopy"); err == nil {
			return false, fmt.Errorf("%s: a file overlayfs copied up without its data (metacopy) cannot be committed", e.rel)
		}
		dst, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return false, err
		}
		_, err = io.Copy(dst, src)
		if err == nil {
			err = copyXattrs(target, func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
				func(n string, buf []byte) (int, error) { return unix.Fgetxattr(fd, n, buf) })
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, err
		}
	case unix.S_IFLNK:
		link, err := readlinkAt(e.parent, base)
		if err != nil {
			return false, swappedOr(err)
		}
		if err := os.Symlink(link, target); err != nil {
			return false, err
		}
	default: // a FIFO or a device
		if err := unix.Mknod(target, e.st.Mode, int(e.st.Rdev)); err != nil {
			return false, err
		}
	}
	if err := setOwnerMode(target, &e.st); err != nil {
		return false, err
	}
	ts := []unix.Timespec{e.st.Atim, e.st.Mtim}
	return true, unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// marker writes a whiteout's or an opaque directory's marker file into
// the layer's tar.
func (a *applier) marker(name string) error {
	return a.tar.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(0, 0)})
}

// setOwnerMode gives p st's owner and then (a link has none) its mode,
// set-ID bits included: a change of owner clears them.
func setOwnerMode(p string, st *unix.Stat_t) error {
	if err := unix.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	return unix.Fchmodat(unix.AT_FDCWD, p, st.Mode&0o7777, 0)
}

// copyXattrs sets on p the extended attributes list and get read, but
// overlayfs's own (trusted.overlay.*), which mean something only in an
// upper directory. A file system that takes none is no error.
func copyXattrs(p string, list func([]byte) (int, error), get func(string, []byte) (int, error)) error {
	names, err := xattrNames(list)
	if err != nil {
		return nil
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") {
			continue
		}
		v, err := readXattr(func(buf []byte) (int, error) { return get(n, buf) })
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(p, n, v, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("set %s on %s: %w", n, p, err)
		}
	}
	return nil
}

// xattrNames lists extended attribute names through list (llistxattr or
// flistxattr on one file), growing the buffer as needed.
func xattrNames(list func([]byte) (int, error)) ([]string, error) {
	b, err := readXattr(list)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range strings.Split(string(b), "\x00") {
		if n != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// readXattr calls read with a buffer that grows until the value fits.
func readXattr(read func([]byte) (int, error)) ([]byte, error) {
	n, err := read(nil)
	if err != nil {
		return nil, err
	}
	for {
		buf := make([]byte, n+1)
		m, err := read(buf)
		if errors.Is(err, unix.ERANGE) {
			n = 2*n + 64
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:m], nil
	}
}

func fgetxattr(fd int, name string) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) })
}

// swappedOr is nil for the errors of an entry the container removed or
// replaced since the walk saw it (left out of the commit, as anything it
// changes after the commit began may be), and err for any other.
func swappedOr(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

// readlinkAt reads the symlink name in the directory open as dir.
func readlinkAt(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// readNames lists the directory p.
func readNames(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// treeSize is the bytes of file content in the tree at root, each file
// once however many links it has.
func treeSize(root string) (int64, error) {
	var size int64
	seen := map[uint64]bool{}
	err := walkTree(root, func(e walkEntry) error {
		if e.st.Mode&unix.S_IFMT == unix.S_IFREG && !seen[e.st.Ino] {
			seen[e.st.Ino] = true
			size += e.st.Size
		}
		return nil
	})
	return size, err
}
