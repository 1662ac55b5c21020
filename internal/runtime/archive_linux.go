package runtime

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// Stat describes path as moby's containerFSView.Stat does; it runs in an
// FSView.
func Stat(path string) (container.PathStat, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return container.PathStat{}, err
	}
	st := container.PathStat{Name: filepath.Base(path), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		if st.LinkTarget, err = followSymlinks(path); err != nil {
			return container.PathStat{}, err
		}
	}
	return st, nil
}

// maxSymlinks bounds followSymlinks, as moby's FollowSymlinkInScope.
const maxSymlinks = 255

// followSymlinks resolves every symlink in path, from the root (the
// view's, so nothing leads out), and returns the path it ends at, or
// the path as far as it resolved when a link is broken; more than
// maxSymlinks links is an error, as moby's.
func followSymlinks(path string) (string, error) {
	rest := strings.Split(filepath.Clean("/"+path), "/")[1:]
	cur := "/"
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		next := filepath.Join(cur, name)
		target, err := os.Readlink(next)
		if err != nil {
			cur = next // not a link, or missing: keep the name
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("evalSymlinksInScope: too many links in %s", path)
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(filepath.Clean(target), "/"), rest...)
	}
	return cur, nil
}

// archivePaths splits what docker cp asks for into the directory to
// archive from, the entry to archive in it, and the name it gets in the
// archive, as moby's containerArchivePath does: a directory's contents
// go under its base name ("." for a path that ends in "/."), a file
// alone, as its base name.
func archivePaths(path string, isDir bool) (dir, base, rebase string) {
	abs := CopyPath(path)
	rebase = filepath.Base(abs)
	if isDir {
		return abs, ".", rebase
	}
	dir, base = filepath.Split(abs)
	return dir, base, rebase
}

// CopyPath is path made absolute and clean, but for the "/." or "/" it
// ends with, which docker cp gives a meaning (moby's containerArchivePath).
func CopyPath(path string) string {
	return preserveTrailingDotOrSeparator(filepath.Join("/", path), path)
}

// preserveTrailingDotOrSeparator gives cleaned the "/." or "/" that
// original ended with, as moby's archive helper of that name.
func preserveTrailingDotOrSeparator(cleaned, original string) string {
	if strings.HasSuffix(original, "/.") && !strings.HasSuffix(cleaned, "/.") {
		if !strings.HasSuffix(cleaned, "/") {
			cleaned += "/"
		}
		cleaned += "."
	}
	if strings.HasSuffix(original, "/") && !strings.HasSuffix(cleaned, "/") {
		cleaned += "/"
	}
	return cleaned
}

// Archive writes path to w as docker cp's tar stream (moby's Tarballer
// with TarResourceRebaseOpts); it runs in an FSView. Files that vanish
// or cannot be read while it walks are left out, as moby does; an error
// writing to w stops it.
func Archive(w io.Writer, path string, isDir bool) error {
	dir, base, rebase := archivePaths(path, isDir)
	tw := tar.NewWriter(w)
	ta := tarAppender{tw: tw, links: map[[2]uint64]string{}}
	// moby's getWalkRoot: not filepath.Join, which would clean "lnk/."
	// to the symlink "lnk" where the walk must go through it.
	start := strings.TrimSuffix(dir, "/") + "/" + base
	err := filepath.WalkDir(start, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: skipped
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		if base == "." && rel != "." {
			rel = "./" + rel
		}
		if rebase != "" {
			replacement := rebase
			if rebase == "/" {
				replacement = ""
			}
			rel = strings.Replace(rel, base, replacement, 1)
		}
		return ta.add(p, rel)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Export writes the container's whole root file system to w as a tar
// stream (docker export; moby's TarWithOptions of the container's root):
// names relative to the root, the root itself left out. It runs in an
// FSView opened without the files berth mounts over the root, which moby
// does not export either.
func Export(w io.Writer) error { return WriteTree(w, "/") }

// WriteTree writes the tree at root to w as a tar stream, names relative
// to root and root itself left out, never following a symlink: an image's
// tree (docker save), or, in an FSView, a container's (Export).
func WriteTree(w io.Writer, root string) error {
	root = filepath.Clean(root)
	tw := tar.NewWriter(w)
	ta := tarAppender{tw: tw, links: map[[2]uint64]string{}}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil
		}
		return ta.add(p, rel)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// tarAppender writes files into a tar stream, a file with several links
// once and its other names as hard links to it.
type tarAppender struct {
	tw    *tar.Writer
	links map[[2]uint64]string // device and inode → first name written
}

// add writes the file at p as name; an error is the stream's, a file
// that cannot be read is skipped.
func (ta *tarAppender) add(p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket != 0 {
		return nil // tar has no sockets
	}
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return nil
		}
	}
	// No user or group names: a lookup here would read the container's
	// /etc/passwd and, through libc, could load its NSS modules into the
	// daemon (CVE-2019-14271, docker cp's).
	hdr, err := tar.FileInfoHeader(noNames{fi}, link)
	if err != nil {
		return nil
	}
	hdr.Name = canonicalTarName(name, fi.IsDir())
	hdr.ModTime = hdr.ModTime.Truncate(time.Second)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if st != nil {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		if !fi.IsDir() && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := ta.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				ta.links[key] = hdr.Name
			}
		}
	}
	if capability, err := lgetxattr(p, "security.capability"); err == nil && len(capability) > 0 {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capability)}
	}
	var f *os.File
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		if f = openRegular(p, st); f == nil {
			return nil // swapped for something else meanwhile: skipped
		}
		defer f.Close()
	}
	if err := ta.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if f != nil {
		// A file that shrank meanwhile is padded: the header is written.
		n, err := io.Copy(ta.tw, io.LimitReader(f, hdr.Size))
		if err != nil && !isReadError(err) {
			return err
		}
		if n < hdr.Size {
			if _, err := io.CopyN(ta.tw, zeros{}, hdr.Size-n); err != nil {
				return err
			}
		}
	}
	return nil
}

// openRegular opens p for reading if it is still the regular file st
// describes: a running container may swap it for a FIFO (which would
// block the view) or a device node of its making between the Lstat and
// the open, so the open neither follows a link nor blocks, and what it
// opened must be the same inode.
func openRegular(p string, st *syscall.Stat_t) *os.File {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Mode&unix.S_IFMT != unix.S_IFREG || st == nil || now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), p)
}

// noNames is a FileInfo whose user and group names are empty, so that
// tar.FileInfoHeader looks none up.
type noNames struct{ os.FileInfo }

func (noNames) Uname() (string, error) { return "", nil }
func (noNames) Gname() (string, error) { return "", nil }

// isReadError tells a failed read of the file from a failed write of the
// stream (io.Copy returns either).
func isReadError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// canonicalTarName is name with "/" separators, and a trailing one for a
// directory.
func canonicalTarName(name string, isDir bool) string {
	name = filepath.ToSlash(name)
	if isDir && !strings.HasSuffix(name, "/") {
		name += "/"
	}
	return name
}

func lgetxattr(p, attr string) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Lgetxattr(p, attr, buf) })
}

// ExtractOptions are docker cp's choices for an upload.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with something
	// else, or the reverse.
	NoOverwriteDirNonDir bool
	// Owner, if set, is a --user value ("name", "uid:gid", …) looked up
	// in the container's /etc/passwd and /etc/group, whose IDs own every
	// file extracted (docker cp -a); otherwise each keeps the archive's.
	Owner string
	// ReadOnly refuses the extraction: the container's root is read-only
	// (unless the path is on a bind that is not).
	ReadOnly bool
}

// Extract unpacks the tar stream r into the directory at path, as moby's
// containerExtractToDir and archive.Untar do; it runs in an FSView. r is
// a plain tar: a compression is the caller's to undo before the view
// (image.Decompressed), where the xz program it runs is the host's, not
// the container's.
func Extract(r io.Reader, path string, opts ExtractOptions) error {
	abs, err := filepath.EvalSymlinks(filepath.Join("/", path))
	if err != nil {
		return err
	}
	abs = preserveTrailingDotOrSeparator(abs, path)
	fi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errdefs.Invalid("extraction point is not a directory")
	}
	// moby's checkWritablePath, asked of the mount that holds the path
	// (its symlinks resolved): a read-only bind, or the root when the
	// container's is read-only. The view mounts read-only binds so, and
	// the container's root on a file system of its own.
	var sfs unix.Statfs_t
	var here, root unix.Stat_t
	if err := unix.Statfs(abs, &sfs); err != nil {
		return err
	}
	if err := errors.Join(unix.Stat(abs, &here), unix.Stat("/", &root)); err != nil {
		return err
	}
	onRoot := here.Dev == root.Dev
	switch {
	case !onRoot && sfs.Flags&unix.ST_RDONLY != 0:
		return errdefs.Invalid("mounted volume is marked read-only")
	case onRoot && opts.ReadOnly:
		return errdefs.Invalid("container rootfs is marked read-only")
	}
	var owner *[2]uint32
	if opts.Owner != "" {
		// Files, never libc (see tarAppender.add), read as the image's
		// are (readInRoot): never a FIFO, a device, or without bound.
		passwd, err := readInRoot("/", "etc/passwd")
		if err != nil {
			return err
		}
		group, err := readInRoot("/", "etc/group")
		if err != nil {
			return err
		}
		uid, gid, err := resolveOwner(opts.Owner, passwd, group)
		if err != nil {
			return err
		}
		owner = &[2]uint32{uid, gid}
	}
	dest := filepath.Clean(abs)
	tr := tar.NewReader(r)
	type dirTimes struct {
		path         string
		atime, mtime time.Time
	}
	var dirs []dirTimes
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := filepath.Clean(hdr.Name)
		if err := ensureParent(filepath.Join(dest, filepath.Dir(name))); err != nil {
			return err
		}
		p := filepath.Join(dest, name)
		if !inside(dest, p) {
			return fmt.Errorf("%q is outside of %q", name, dest) // moby's breakoutError: a 500
		}
		if keep, err := replaceable(p, dest, name, hdr, opts.NoOverwriteDirNonDir); err != nil || keep {
			if err != nil {
				return err
			}
			continue
		}
		if err := createEntry(p, dest, hdr, tr); err != nil {
			return err
		}
		uid, gid := hdr.Uid, hdr.Gid
		if owner != nil {
			uid, gid = int(owner[0]), int(owner[1])
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		for k, v := range hdr.PAXRecords {
			if attr, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				// A file system or a kernel that does not take it is no
				// failure, as in moby's.
				err := unix.Lsetxattr(p, attr, []byte(v), 0)
				if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
					return fmt.Errorf("set %s on %s: %w", attr, p, err)
				}
			}
		}
		mode := hdr.FileInfo().Mode()
		if hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeLink {
			if err := os.Chmod(p, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				return err
			}
		}
		atime := hdr.AccessTime
		if atime.IsZero() {
			atime = hdr.ModTime
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			dirs = append(dirs, dirTimes{p, atime, hdr.ModTime}) // after their contents
		case tar.TypeLink:
		default:
			if err := lutimes(p, atime, hdr.ModTime); err != nil {
				return err
			}
		}
	}
	for _, d := range dirs {
		if err := lutimes(d.path, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// inside says whether p is dest or below it.
func inside(dest, p string) bool {
	rel, err := filepath.Rel(dest, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// ensureParent makes dir, an archive entry's parent, if it is missing,
// as moby's createImpliedDirectories: mode 0755, owned by root.
func ensureParent(dir string) error {
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == "/" {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := os.Lchown(d, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// replaceable removes what is at p unless the entry is a directory over
// a directory (kept, its contents merged), and says to skip the entry
// for the extraction point itself; with noOverwriteDirNonDir a directory
// and a non-directory may not replace each other (moby's Unpack, words
// and all).
func replaceable(p, dest, name string, hdr *tar.Header, noOverwriteDirNonDir bool) (skip bool, err error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	isDir := hdr.Typeflag == tar.TypeDir
	if noOverwriteDirNonDir {
		if fi.IsDir() && !isDir {
			return false, fmt.Errorf("cannot overwrite directory %q with non-directory %q", p, dest)
		}
		if !fi.IsDir() && isDir {
			return false, fmt.Errorf("cannot overwrite non-directory %q with directory %q", p, dest)
		}
	}
	if fi.IsDir() && name == "." {
		return true, nil
	}
	if fi.IsDir() && isDir {
		return false, nil
	}
	return false, os.RemoveAll(p)
}

// createEntry makes the file hdr describes at p; hard links and symlinks
// may not lead out of dest (moby's breakout checks).
func createEntry(p, dest string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			return nil
		}
		return os.Mkdir(p, os.FileMode(mode))
	case tar.TypeReg, tar.TypeRegA:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(mode))
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeLink:
		target := filepath.Join(dest, hdr.Linkname)
		if !inside(dest, target) {
			return fmt.Errorf("invalid hardlink %q -> %q", target, hdr.Linkname)
		}
		return os.Link(target, p)
	case tar.TypeSymlink:
		if !inside(dest, filepath.Join(filepath.Dir(p), hdr.Linkname)) {
			return fmt.Errorf("invalid symlink %q -> %q", p, hdr.Linkname)
		}
		return os.Symlink(hdr.Linkname, p)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		return unix.Mknod(p, kind|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	default:
		return fmt.Errorf("unhandled tar header type %d", hdr.Typeflag)
	}
}

func lutimes(p string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}
