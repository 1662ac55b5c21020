package build

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
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime/image"
)

// maxLinks bounds the links inScope follows, as moby's
// FollowSymlinkInScope.
const maxLinks = 255

// inScope resolves p inside the tree at root as a process chrooted there
// would (links, absolute or relative, and ".." never lead out of it) and
// returns the path it ends at, relative to root ("" for root itself).
// The last component's link is followed only if followLast. The trees a
// build reads (its context, images' trees) do not change under it.
func inScope(root, p string, followLast bool) (string, error) {
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("resolve %s: no tree to resolve it in", p) // never the daemon's working directory
	}
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	if len(rest) == 1 && rest[0] == "" {
		return "", nil
	}
	cur := ""
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = strings.TrimPrefix(path.Dir("/"+cur), "/")
			continue
		}
		next := path.Join(cur, name)
		if len(rest) == 0 && !followLast {
			cur = next
			break
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			cur = next // not a link, or missing
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("too many links in %s", p)
		}
		if path.IsAbs(target) {
			cur = ""
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// isDirIn says whether p is a directory in the tree at root, its links
// followed inside the tree.
func isDirIn(root, p string) bool {
	rel, err := inScope(root, p, true)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(filepath.Join(root, rel))
	return err == nil && fi.IsDir()
}

// copyInfo is one source of a COPY or ADD.
type copyInfo struct {
	// name is the source as found (a wildcard's match), for the base
	// name a file gets in a directory destination.
	name string
	// rel is where it is in the source tree, its links resolved.
	rel  string
	hash string
	dir  bool
}

// copier makes a COPY or ADD's files: from the sources in srcRoot (the
// context, or an image's tree for --from) into upper, the directory the
// backend lays over lower (the current image's tree) as a layer.
type copier struct {
	ctx                   context.Context // a cancelled build stops copying
	lower, upper, srcRoot string
	fromImage, decompress bool
	// preserve keeps the sources' owners (COPY --from without --chown);
	// otherwise everything copied is uid:gid's (root's by default).
	preserve bool
	uid, gid int
	dest     string
	infos    []copyInfo
	// dirTimes are the directories made from sources, for their times
	// once nothing more is written in them.
	dirTimes []dirTime
}

type dirTime struct {
	rel string // in upper
	fi  fs.FileInfo
}

// collect finds the sources: each a path in the source tree (leading "/"
// and "./" dropped), or a pattern matched against every path in it.
func (c *copier) collect(sources []string, instr string) error {
	for _, src := range sources {
		if c.srcRoot == "" {
			// A stage with no files of its own (FROM scratch and nothing
			// after): nothing to copy from.
			return errdefs.Invalid("%s failed: stat %s: file does not exist", instr, strings.TrimPrefix(path.Clean("/"+src), "/"))
		}
		if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "git@") {
			if instr == "COPY" {
				return errdefs.Invalid("COPY failed: source can't be a URL for COPY")
			}
			return errdefs.Invalid("ADD failed: berth does not download build sources (%s): download it into the build context and ADD or COPY the file", src)
		}
		orig := strings.TrimPrefix(path.Clean("/"+src), "/")
		if orig == "" {
			orig = "."
		}
		if !strings.ContainsAny(orig, "*?[") {
			info, err := c.info(orig)
			if err != nil {
				return fmt.Errorf("%s failed: %w", instr, err)
			}
			c.infos = append(c.infos, info)
			continue
		}
		err := filepath.WalkDir(c.srcRoot, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(c.srcRoot, p)
			if err != nil || rel == "." {
				return err
			}
			if ok, _ := filepath.Match(orig, rel); !ok {
				return nil
			}
			info, err := c.info(rel)
			if err != nil {
				return err
			}
			c.infos = append(c.infos, info)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s failed: %w", instr, err)
		}
	}
	if len(c.infos) == 0 {
		return errdefs.Invalid("%s failed: no source files were specified", instr)
	}
	return nil
}

func (c *copier) info(name string) (copyInfo, error) {
	rel, err := inScope(c.srcRoot, name, true)
	if err != nil {
		return copyInfo{}, err
	}
	full := filepath.Join(c.srcRoot, rel)
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		if c.fromImage {
			return copyInfo{}, errdefs.Invalid("stat %s: file does not exist", name)
		}
		return copyInfo{}, errdefs.Invalid("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", name)
	}
	if err != nil {
		return copyInfo{}, err
	}
	info := copyInfo{name: name, rel: rel, dir: fi.IsDir()}
	if !info.dir {
		h, err := entryHash(full, name, fi)
		if err != nil {
			return copyInfo{}, err
		}
		info.hash = "file:" + h
		return info, nil
	}
	var sums []string
	err = filepath.WalkDir(full, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, _ := filepath.Rel(full, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		h, err := entryHash(p, path.Join(name, filepath.ToSlash(sub)), fi)
		if err != nil {
			return err
		}
		sums = append(sums, h)
		return nil
	})
	if err != nil {
		return copyInfo{}, err
	}
	sort.Strings(sums)
	info.hash = hashStrings("dir", sums)
	return info, nil
}

// entryHash is a digest of what copying the entry at p (name: its path
// in the source tree, as moby's file hash has it) makes: its name, type,
// mode, owner, device and content or link target; not its times, which
// moby's tarsum leaves out too (a file written again the same hits the
// cache).
func entryHash(p, name string, fi fs.FileInfo) (string, error) {
	h := sha256.New()
	st, _ := fi.Sys().(*syscall.Stat_t)
	var uid, gid uint32
	var rdev uint64
	if st != nil {
		uid, gid, rdev = st.Uid, st.Gid, st.Rdev
	}
	fmt.Fprintf(h, "%s\x00%o\x00%d:%d\x00%d\x00", name, fi.Mode(), uid, gid, rdev)
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		io.WriteString(h, t)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashStrings(prefix string, s []string) string {
	sum := sha256.Sum256([]byte(strings.Join(s, ",")))
	return prefix + ":" + hex.EncodeToString(sum[:])
}

// hash names the sources in the step's history and cache key, as
// moby's: one source's own hash, several hashed together.
func (c *copier) hash() string {
	if len(c.infos) == 1 {
		return c.infos[0].hash
	}
	hs := make([]string, len(c.infos))
	for i, in := range c.infos {
		hs[i] = in.hash
	}
	return hashStrings("multi", hs)
}

// destRel is dest resolved in the current image's tree (its links
// followed there, as moby resolves a destination in the container's
// root).
func (c *copier) destRel(dest string) (string, error) {
	if c.lower == "" {
		return strings.TrimPrefix(path.Clean("/"+dest), "/"), nil
	}
	return inScope(c.lower, dest, true)
}

// isDir says whether rel is a directory in the tree the step makes.
func (c *copier) isDir(rel string) bool {
	if fi, err := os.Lstat(filepath.Join(c.upper, rel)); err == nil {
		return fi.IsDir()
	}
	if c.lower == "" {
		return false
	}
	fi, err := os.Lstat(filepath.Join(c.lower, rel))
	return err == nil && fi.IsDir()
}

// mkdirAll makes the directories of rel in upper: one the image has
// gets its mode, owner and times (in a layer a directory's metadata is
// the upper one's), a new one mode and uid:gid. A file where a directory
// goes, the image's or one this step made, fails the step
// (NotDirError), as moby's MkdirAll fails it; a whiteout there (the
// image's entry deleted in this layer) gives way.
func (c *copier) mkdirAll(rel string, mode fs.FileMode, uid, gid int) error {
	if rel == "" {
		return nil
	}
	cur := ""
	for _, name := range strings.Split(rel, "/") {
		cur = path.Join(cur, name)
		p := filepath.Join(c.upper, cur)
		fi, err := os.Lstat(p)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil && !isWhiteout(fi):
			return &NotDirError{Path: "/" + cur}
		case err == nil:
			if err := os.Remove(p); err != nil {
				return err
			}
		case c.lower != "":
			if lfi, err := os.Lstat(filepath.Join(c.lower, cur)); err == nil && !lfi.IsDir() {
				return &NotDirError{Path: "/" + cur}
			}
		}
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if c.lower != "" && fi == nil {
			if lfi, err := os.Lstat(filepath.Join(c.lower, cur)); err == nil && lfi.IsDir() {
				if err := copyMeta(p, lfi); err != nil {
					return err
				}
				continue
			}
		}
		if err := errors.Join(os.Lchown(p, uid, gid), os.Chmod(p, mode)); err != nil {
			return err
		}
	}
	return nil
}

// NotDirError is a file of the image, or of the step, where a path
// needs a directory.
type NotDirError struct{ Path string }

func (e *NotDirError) Error() string { return "mkdir " + e.Path + ": not a directory" }

// isWhiteout reports whether fi is an overlay whiteout: a character
// device 0:0.
func isWhiteout(fi fs.FileInfo) bool {
	return fi.Mode()&fs.ModeCharDevice != 0 && statOf(fi).Rdev == 0
}

// statOf is fi's stat (os.Lstat's always has one).
func statOf(fi fs.FileInfo) *syscall.Stat_t { return fi.Sys().(*syscall.Stat_t) }

// times are st's access and modification times, for UtimesNanoAt.
func times(st *syscall.Stat_t) []unix.Timespec {
	return []unix.Timespec{{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}, {Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}}
}

// copyMeta gives p fi's mode, owner and times.
func copyMeta(p string, fi fs.FileInfo) error {
	st := statOf(fi)
	if err := errors.Join(os.Lchown(p, int(st.Uid), int(st.Gid)), unix.Chmod(p, st.Mode&0o7777)); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, times(st), unix.AT_SYMLINK_NOFOLLOW)
}

// owner is who a copied entry belongs to.
func (c *copier) owner(fi fs.FileInfo) (int, int) {
	if c.preserve {
		st := statOf(fi)
		return int(st.Uid), int(st.Gid)
	}
	return c.uid, c.gid
}

// copyAll copies every source as moby's performCopyForInfo: a
// directory's contents into the destination directory, an archive ADD
// unpacks there, any other file to the destination or, when that is a
// directory or ends with "/", into it under its own name.
func (c *copier) copyAll() error {
	destRel, err := c.destRel(c.dest)
	if err != nil {
		return err
	}
	toDir := strings.HasSuffix(c.dest, "/")
	for _, in := range c.infos {
		src := filepath.Join(c.srcRoot, in.rel)
		fi, err := os.Lstat(src)
		if err != nil {
			return err
		}
		archive := false
		if c.decompress && fi.Mode().IsRegular() {
			if archive, err = isArchive(src); err != nil {
				return fmt.Errorf("unpack %s: %w", in.name, err)
			}
		}
		switch {
		case fi.IsDir():
			// moby's copyDirectory: CopyWithTar makes the destination
			// and its parents root's, 0755, whatever the source
			// directory's mode, owner and times (its tar leaves the
			// source's own entry out; a COPY . of a 0700 context would
			// lock a later USER out); a new destination then goes to
			// the --chown owner (root's without one), and stays root's
			// when the sources keep their owners (--from).
			existed := c.isDir(destRel)
			if err := c.mkdirAll(dirOf(destRel), 0o755, 0, 0); err != nil {
				return err
			}
			uid, gid := c.uid, c.gid
			if existed || c.preserve {
				uid, gid = 0, 0
			}
			if err := c.mkdirAll(destRel, 0o755, uid, gid); err != nil {
				return err
			}
			if err := c.copyChildren(src, destRel); err != nil {
				return err
			}
		case archive:
			if err := c.mkdirAll(destRel, 0o755, c.uid, c.gid); err != nil {
				return err
			}
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			err = image.ExtractArchive(c.context(), f, filepath.Join(c.upper, destRel), true)
			f.Close()
			if err != nil {
				return fmt.Errorf("unpack %s: %w", in.name, err)
			}
		default:
			target := destRel
			if toDir || c.isDir(destRel) {
				target = path.Join(destRel, path.Base(in.name))
			}
			if err := c.mkdirAll(dirOf(target), 0o755, c.uid, c.gid); err != nil {
				return err
			}
			if err := c.copyEntry(src, target, fi); err != nil {
				return err
			}
		}
		if err := c.setDirTimes(); err != nil {
			return err
		}
	}
	return nil
}

// setDirTimes gives the directories one source made their source's
// times, once nothing more is written in them, the deepest first. Each
// is reached beneath upper without following a link: a later source may
// have put a link where a directory was, which must not lead a time
// onto the host.
func (c *copier) setDirTimes() error {
	up, err := unix.Open(c.upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(up)
	for i := len(c.dirTimes) - 1; i >= 0; i-- {
		d := c.dirTimes[i]
		parent := up
		if dir := dirOf(d.rel); dir != "" {
			fd, err := unix.Openat2(up, dir, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
			if err != nil {
				continue // no longer a directory there
			}
			parent = fd
		}
		err := unix.UtimesNanoAt(parent, path.Base(d.rel), times(statOf(d.fi)), unix.AT_SYMLINK_NOFOLLOW)
		if parent != up {
			unix.Close(parent)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	c.dirTimes = nil
	return nil
}

// context is the build's context (a cancelled build stops copying).
func (c *copier) context() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

// dirOf is the directory rel is in ("" for the root).
func dirOf(rel string) string {
	if d := path.Dir(rel); d != "." && d != "/" {
		return d
	}
	return ""
}

// copyChildren copies what the directory src holds into rel.
func (c *copier) copyChildren(src, rel string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(src, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if err := c.copyEntry(p, path.Join(rel, e.Name()), fi); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies the entry at src (fi) to rel in upper, replacing what
// is there unless both are directories, and a directory's contents with
// it.
func (c *copier) copyEntry(src, rel string, fi fs.FileInfo) error {
	if c.ctx != nil && c.ctx.Err() != nil {
		return c.ctx.Err()
	}
	dst := filepath.Join(c.upper, rel)
	uid, gid := c.owner(fi)
	st := statOf(fi)
	if old, err := os.Lstat(dst); err == nil && !(old.IsDir() && fi.IsDir()) {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := errors.Join(os.Lchown(dst, uid, gid), unix.Chmod(dst, st.Mode&0o7777)); err != nil {
			return err
		}
		c.dirTimes = append(c.dirTimes, dirTime{rel, fi})
		return c.copyChildren(src, rel)
	case fi.Mode().IsRegular():
		if err := copyFile(c.context(), src, dst); err != nil {
			return err
		}
		if err := errors.Join(os.Lchown(dst, uid, gid), unix.Chmod(dst, st.Mode&0o7777)); err != nil {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
		if err := os.Lchown(dst, uid, gid); err != nil {
			return err
		}
	case fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0:
		if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			// In a layer it would be a whiteout: the image's file of
			// that name deleted, not a device copied.
			return errdefs.Invalid("%s is a character device 0:0, which a layer cannot hold", rel)
		}
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
		if err := os.Lchown(dst, uid, gid); err != nil {
			return err
		}
	default:
		return nil // sockets are not copied
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, times(st), unix.AT_SYMLINK_NOFOLLOW)
}

// copyFile writes a new file at dst with src's content, until ctx ends.
func copyFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, image.WithContext(ctx, in))
	return errors.Join(err, out.Close())
}

// isArchive says whether the file at p is a tar archive, plain or
// compressed with gzip, bzip2, xz or zstd (what ADD unpacks, as moby's).
// An xz file when the host has no xz program is an error: moby copies it
// as it is then, so that what the image holds would depend on the host.
func isArchive(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	r, closeR, err := image.Decompressed(context.Background(), f)
	if err != nil {
		if errdefs.Is(err, errdefs.KindInvalid) {
			return false, nil // a gzip header that does not read
		}
		return false, err
	}
	defer closeR()
	// As moby's IsArchivePath: an archive is what a tar header reads from.
	_, err = tar.NewReader(r).Next()
	return err == nil, nil
}

// lookupChown reads --chown's user[:group] (the group defaults to the
// user's word, as moby's): numbers as they are, names from the image's
// /etc/passwd and /etc/group.
func lookupChown(root, spec string) (int, int, error) {
	userStr, groupStr, _ := strings.Cut(spec, ":")
	if groupStr == "" {
		groupStr = userStr
	}
	uid, err := lookupID(root, "/etc/passwd", userStr, "user")
	if err != nil {
		return 0, 0, err
	}
	gid, err := lookupID(root, "/etc/group", groupStr, "group")
	if err != nil {
		return 0, 0, err
	}
	return uid, gid, nil
}

func lookupID(root, file, name, kind string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid %s id %d", kind, n)
		}
		return n, nil
	}
	var b []byte
	if root != "" {
		if rel, err := inScope(root, file, true); err == nil {
			b, _ = readRegular(filepath.Join(root, rel))
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("can't find %s for %s %s: no such %s: %s", map[string]string{"user": "uid", "group": "gid"}[kind], kind, name, kind, name)
}

// maxReadFile bounds what readRegular reads.
const maxReadFile = 16 << 20

// readRegular reads the file at p if it is a regular file (the image's
// or context's, which a build must not let name a device or a FIFO of
// the host's to read from: it is not even opened, a device's open being
// its driver's to act on), of at most maxReadFile bytes.
func readRegular(p string) ([]byte, error) {
	if fi, err := os.Lstat(p); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("not a regular file")}
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("not a regular file")}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxReadFile+1))
	if err == nil && len(b) > maxReadFile {
		return nil, &os.PathError{Op: "read", Path: p, Err: fmt.Errorf("larger than %d bytes", maxReadFile)}
	}
	return b, err
}
