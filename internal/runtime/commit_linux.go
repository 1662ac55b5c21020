package runtime

import (
	"archive/tar"
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
func (r *Runtime) CommitTree(id, lower, dst string) (Committed, error) {
	if err := checkID(id); err != nil {
		return Committed{}, err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return Committed{}, err
	}
	times := map[string][2]unix.Timespec{} // a directory's atime and mtime, by its path from the root
	if err := linkTree(lower, dst, times); err != nil {
		return Committed{}, fmt.Errorf("link the image's files: %w", err)
	}
	upper := r.upperDir(id)
	h := sha256.New()
	a := applier{upper: upper, dst: dst, times: times, copies: map[[2]uint64]string{},
		tar: tarAppender{tw: tar.NewWriter(h), links: map[[2]uint64]string{}}}
	if err := walkTree(upper, a.apply); err != nil {
		return Committed{}, fmt.Errorf("apply the container's changes: %w", err)
	}
	if err := a.tar.tw.Close(); err != nil {
		return Committed{}, err
	}
	for rel, ts := range times {
		err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dst, rel), ts[:], unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			return Committed{}, err
		}
	}
	size, err := treeSize(dst)
	if err != nil {
		return Committed{}, err
	}
	return Committed{DiffID: "sha256:" + hex.EncodeToString(h.Sum(nil)), DiffSize: a.size, Size: size}, nil
}

// linkTree makes dst (an empty directory) a copy of the tree at src whose
// directories are its own and whose other entries are hard links to
// src's; the directories' times go into times, to be set once the tree is
// complete.
func linkTree(src, dst string, times map[string][2]unix.Timespec) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
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
type applier struct {
	upper, dst string
	times      map[string][2]unix.Timespec
	// copies are the upper directory's files with several links, by
	// device and inode, and their first copy: the others become links to
	// it, as the container had them.
	copies map[[2]uint64]string
	tar    tarAppender
	size   int64
}

func (a *applier) apply(e walkEntry) error {
	target := filepath.Join(a.dst, e.rel)
	name := strings.TrimPrefix(e.rel, "/")
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if e.st.Rdev == 0 { // a whiteout: deleted
			delete(a.times, e.rel)
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
	delete(a.times, e.rel)
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	key := [2]uint64{e.st.Dev, e.st.Ino}
	if first, ok := a.copies[key]; ok && e.st.Nlink > 1 {
		if err := os.Link(first, target); err == nil {
			return a.tar.add(target, name)
		}
	}
	copied, err := a.copy(e, target)
	if err != nil || !copied {
		return err
	}
	if e.st.Nlink > 1 {
		a.copies[key] = target
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFREG {
		a.size += e.st.Size
	}
	return a.tar.add(target, name)
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
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		fd, err := openBeneath(a.upper, e.rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
		if err != nil {
			return false, nil
		}
		src := os.NewFile(uintptr(fd), e.rel)
		defer src.Close()
		var now unix.Stat_t
		if err := unix.Fstat(fd, &now); err != nil || now.Mode&unix.S_IFMT != unix.S_IFREG || now.Ino != e.st.Ino || now.Dev != e.st.Dev {
			return false, nil
		}
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
		fd, err := openBeneath(a.upper, e.rel, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return false, nil
		}
		link, err := readlinkFd(fd)
		unix.Close(fd)
		if err != nil {
			return false, nil
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

// readlinkFd reads the symlink open as fd (O_PATH|O_NOFOLLOW).
func readlinkFd(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
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
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			size += st.Size
		}
		return nil
	})
	return size, err
}
