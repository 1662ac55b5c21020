package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
)

// extractor writes tar entries under one root directory. Every path is
// resolved with openat2(RESOLVE_IN_ROOT), the way the container will see
// it, so neither ".." nor a symlink planted by an earlier entry ("etc ->
// /etc", then "etc/passwd") can make a later entry land outside the root.
type extractor struct {
	root  *os.File
	size  int64
	count int
	// dirs get their times last: writing entries into a directory changes its mtime.
	dirs []dirTime
	// layer, while one layer of several is applied (docker load), holds
	// the paths that layer wrote: its whiteouts delete what earlier
	// layers made, and an entry may replace a whole directory.
	layer map[string]bool
	// noDevices refuses device and FIFO entries (docker load's outer
	// archive, whose files are only read).
	noDevices bool
	// noWhiteouts refuses character devices 0:0, which a tree laid over
	// another as overlayfs's upper layer reads as whiteouts (docker
	// build's ADD unpacks into one).
	noWhiteouts bool
	// dirSeen are the directories in dirs, so that an archive that names
	// one a million times keeps one entry.
	dirSeen map[string]int
}

type dirTime struct {
	rel   string
	mtime time.Time
}

func newExtractor(rootDir string) (*extractor, error) {
	f, err := os.OpenFile(rootDir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	return &extractor{root: f}, nil
}

func (x *extractor) Close() error { return x.root.Close() }

// extractAll reads every entry of tr into the root.
func (x *extractor) extractAll(tr *tar.Reader) error {
	if err := x.extractEntries(tr); err != nil {
		return err
	}
	return x.applyDirTimes()
}

// extractEntries reads every entry of tr into the root, leaving the
// directories' times for applyDirTimes.
func (x *extractor) extractEntries(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errdefs.Invalid("read archive: %w", err)
		}
		if err := x.extract(hdr, archiveReader{tr}); err != nil {
			return err
		}
		x.count++
	}
	return nil
}

// archiveReader marks read errors (a truncated archive) as the client's fault.
type archiveReader struct{ r io.Reader }

func (a archiveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = errdefs.Invalid("read archive: %w", err)
	}
	return n, err
}

// cleanRel turns an entry name into a path relative to the root. A leading
// "/" is dropped as tar does; a path that climbs out with ".." is refused.
func cleanRel(name string) (string, error) {
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errdefs.Invalid("archive entry %q points outside the root filesystem", name)
	}
	return rel, nil
}

func (x *extractor) extract(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanRel(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if x.noDevices {
			return errdefs.Invalid("archive entry %q is a device or a FIFO, which docker save never writes", hdr.Name)
		}
		if x.noWhiteouts && hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
			return errdefs.Invalid("archive entry %q is a character device 0:0, which would delete the image's file of that name", hdr.Name)
		}
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		return errdefs.Invalid("archive entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	if rel == "." {
		return x.setRoot(hdr)
	}
	if x.layer != nil {
		if done, err := x.whiteout(rel); done || err != nil {
			return err
		}
		x.layer[rel] = true
	}
	dir, base := path.Split(rel)
	parent, err := x.ensureDir(path.Clean("/" + dir)[1:])
	if err != nil {
		return fmt.Errorf("create parent of %q: %w", hdr.Name, err)
	}
	defer unix.Close(parent)
	made, err := x.create(parent, base, rel, hdr, r)
	if err != nil {
		return fmt.Errorf("extract %q: %w", hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil // a hard link shares the metadata of its target
	}
	return x.setMeta(parent, base, rel, hdr, made)
}

// create makes the entry; for a regular file it returns the file's
// identity (device and inode), which setMeta checks.
func (x *extractor) create(parent int, base, rel string, hdr *tar.Header, r io.Reader) (*unix.Stat_t, error) {
	if hdr.Typeflag == tar.TypeDir {
		return nil, ensureDirAt(parent, base)
	}
	remove := removeAt
	if x.layer != nil {
		remove = removeAllAt // a layer may put a file where a directory was
	}
	if err := remove(parent, base); err != nil {
		return nil, err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return x.writeFile(parent, base, r)
	case tar.TypeSymlink:
		return nil, unix.Symlinkat(hdr.Linkname, parent, base)
	case tar.TypeLink:
		return nil, x.link(parent, base, hdr.Linkname)
	default:
		return nil, mknodAt(parent, base, hdr)
	}
}

func (x *extractor) writeFile(parent int, base string, r io.Reader) (*unix.Stat_t, error) {
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), base)
	n, err := io.Copy(f, r)
	x.size += n
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	return &st, errors.Join(err, f.Close())
}

func (x *extractor) link(parent int, base, target string) error {
	rel, err := cleanRel(target)
	if err != nil {
		return err
	}
	if rel == "." {
		return errdefs.Invalid("hard link %q to the root directory", base)
	}
	dir, tbase := path.Split(rel)
	tparent, err := x.openInRoot(path.Clean("/" + dir)[1:])
	if errors.Is(err, unix.ENOENT) {
		return errdefs.Invalid("hard link target %q is not in the archive before the link", target)
	}
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	defer unix.Close(tparent)
	err = unix.Linkat(tparent, tbase, parent, base, 0)
	if errors.Is(err, unix.ENOENT) {
		return errdefs.Invalid("hard link target %q is not in the archive before the link", target)
	}
	return err
}

func mknodAt(parent int, base string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	return unix.Mknodat(parent, base, mode, int(dev))
}

// setMeta gives the new entry its owner, then its mode (chown clears the
// set-id bits, so the mode comes second), its extended attributes and its
// times. All of it goes through one O_PATH descriptor of the entry, never
// through its name again: a container that shares a volume while berth
// fills it from an image could otherwise swap the file just written for a
// symlink to a host file, or for a file of its own, and have the image's
// owner and mode (root, setuid) set on that (QA round 27 and its review).
// A regular file must still be the one writeFile made (made); a swapped
// entry fails the extraction.
func (x *extractor) setMeta(parent int, base, rel string, hdr *tar.Header, made *unix.Stat_t) error {
	if hdr.Typeflag == tar.TypeSymlink {
		if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %q: %w", rel, err)
		}
		return setTimes(parent, base, hdr.ModTime)
	}
	fd, err := unix.Openat(parent, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK || (made != nil && (st.Dev != made.Dev || st.Ino != made.Ino)) {
		return errdefs.Conflict("%q was replaced while it was being written", rel)
	}
	if procDir < 0 {
		return errors.New("no /proc to set an entry's metadata through")
	}
	self := fmt.Sprintf("thread-self/fd/%d", fd) // names the pinned inode
	if err := unix.Fchownat(fd, "", hdr.Uid, hdr.Gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %q: %w", rel, err)
	}
	if err := unix.Fchmodat(procDir, self, uint32(hdr.Mode&0o7777), 0); err != nil {
		return fmt.Errorf("chmod %q: %w", rel, err)
	}
	if err := setXattrs("/proc/"+self, hdr); err != nil {
		return fmt.Errorf("set extended attributes of %q: %w", rel, err)
	}
	if hdr.Typeflag == tar.TypeDir {
		x.addDir(rel, hdr.ModTime)
		return nil
	}
	ts := mtimeSpec(hdr.ModTime)
	if err := unix.UtimesNanoAt(procDir, self, []unix.Timespec{ts, ts}, 0); err != nil { // the magic link followed to the inode
		return fmt.Errorf("set times of %q: %w", rel, err)
	}
	return nil
}

// procDir is the host's /proc, opened when the process starts, so that
// setMeta works from a thread with another root too; -1 if none.
var procDir = func() int {
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}()

// setXattrs restores the extended attributes tar keeps as PAX records
// (file capabilities such as ping's cap_net_raw among them) on the file
// at p, a /proc magic link to the pinned entry. They come after chown,
// which clears security.capability. There is no fsetxattr for an O_PATH
// descriptor, nor setxattrat before Linux 6.13.
// addDir records a directory's time, once per directory (the last
// header's).
func (x *extractor) addDir(rel string, mtime time.Time) {
	if i, ok := x.dirSeen[rel]; ok {
		x.dirs[i].mtime = mtime
		return
	}
	if x.dirSeen == nil {
		x.dirSeen = map[string]int{}
	}
	x.dirSeen[rel] = len(x.dirs)
	x.dirs = append(x.dirs, dirTime{rel: rel, mtime: mtime})
}

func setXattrs(p string, hdr *tar.Header) error {
	const prefix = "SCHILY.xattr."
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			// overlayfs's own (opaque, redirect…): an archive's would
			// change what a layer over the tree hides.
			continue
		}
		if err := unix.Setxattr(p, name, []byte(v), 0); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (x *extractor) setRoot(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return errdefs.Invalid("archive entry %q replaces the root directory", hdr.Name)
	}
	fd := int(x.root.Fd())
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown root: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod root: %w", err)
	}
	x.addDir(".", hdr.ModTime)
	return nil
}

// applyDirTimes gives the directories their times, in the order they
// came, so that a directory listed again (by a later layer) ends with its
// last time; setting a directory's times does not change its parent's.
// One that is no longer a directory (a symlink now, or gone) is skipped.
func (x *extractor) applyDirTimes() error {
	for _, d := range x.dirs {
		fd, err := x.openDirNoFollow(d.rel)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
			continue // replaced or deleted since, by a later entry or layer
		}
		if err != nil {
			return fmt.Errorf("set times of %q: %w", d.rel, err)
		}
		// "." relative to the directory's own O_PATH descriptor is the directory.
		err = setTimes(fd, ".", d.mtime)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("set times of %q: %w", d.rel, err)
		}
	}
	return nil
}

// openDirNoFollow is openInRoot, failing (ENOTDIR) when rel's last
// element is a symlink.
func (x *extractor) openDirNoFollow(rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(int(x.root.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// openInRoot opens rel as a directory, resolved as if the root were "/".
func (x *extractor) openInRoot(rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(int(x.root.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// ensureDir opens rel, creating it and its missing parents (mode 0755) for
// archives that list files before, or without, their directories.
func (x *extractor) ensureDir(rel string) (int, error) {
	fd, err := x.openInRoot(rel)
	if err == nil || !errors.Is(err, unix.ENOENT) || rel == "" {
		return fd, err
	}
	dir, base := path.Split(rel)
	parent, err := x.ensureDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1, err
	}
	err = ensureDirAt(parent, base)
	unix.Close(parent)
	if err != nil {
		return -1, err
	}
	return x.openInRoot(rel)
}

// ensureDirAt makes base a directory, keeping one that is already there
// (archives list a directory again to set its metadata).
func ensureDirAt(parent int, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil
	}
	if err := removeAt(parent, base); err != nil {
		return err
	}
	return unix.Mkdirat(parent, base, 0o755)
}

// removeAt deletes whatever is at base so a later entry can replace it; a
// missing entry is fine, a non-empty directory is not.
func removeAt(parent int, base string) error {
	err := unix.Unlinkat(parent, base, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("replace %q: %w", base, err)
	}
	return nil
}

func setTimes(dirfd int, base string, mtime time.Time) error {
	ts := mtimeSpec(mtime)
	return unix.UtimesNanoAt(dirfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// mtimeSpec is an entry's modification time for utimensat; none is the epoch.
func mtimeSpec(mtime time.Time) unix.Timespec {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	return unix.NsecToTimespec(mtime.UnixNano())
}

// The whiteouts of a layer (the OCI image spec's, which docker save
// writes): ".wh.NAME" deletes NAME, and ".wh..wh..opq" in a directory
// deletes what earlier layers put in it.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// whiteout applies rel if it is a whiteout entry, and says so.
func (x *extractor) whiteout(rel string) (bool, error) {
	dir, base := path.Split(rel)
	if !strings.HasPrefix(base, whiteoutPrefix) {
		return false, nil
	}
	if base != whiteoutOpaque && strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix) {
		return true, nil // AUFS's own metadata (.wh..wh.plnk…), skipped as moby does
	}
	if name := strings.TrimPrefix(base, whiteoutPrefix); name == "" || name == "." || name == ".." {
		return true, errdefs.Invalid("archive entry %q is not a valid whiteout", rel)
	}
	dir = strings.TrimSuffix(dir, "/")
	parent, err := x.openInRoot(dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return true, nil // nothing there to hide
	}
	if err != nil {
		return true, err
	}
	defer unix.Close(parent)
	if base != whiteoutOpaque {
		return true, removeAllAt(parent, strings.TrimPrefix(base, whiteoutPrefix))
	}
	return true, x.opaque(parent, dir)
}

// opaque removes from the directory dir (open as fd) what this layer did
// not write, all the way down, as moby's UnpackLayer does: a directory
// this layer wrote keeps what it wrote in it, and loses the rest.
func (x *extractor) opaque(fd int, dir string) error {
	d, err := openDirAt(fd, ".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		rel := path.Join(dir, n)
		if !x.layer[rel] {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
			continue
		}
		sub, err := openDirAt(fd, n)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue // a file or a link this layer wrote
		}
		if err != nil {
			return err
		}
		err = x.opaque(int(sub.Fd()), rel)
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// openDirAt opens base in parent as a directory to read, never through
// a symlink.
func openDirAt(parent int, base string) (*os.File, error) {
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), base), nil
}

// removeAllAt deletes base in parent and, for a directory, all in it,
// never following a symlink; a missing base is fine.
func removeAllAt(parent int, base string) error {
	err := unix.Unlinkat(parent, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	d, err := openDirAt(parent, base)
	if err != nil {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(int(d.Fd()), n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(parent, base, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	return nil
}

// ExtractTree unpacks the tar stream r into the directory dir, as an
// import unpacks an image (docker's volume copy-up uses it: the image's
// files at a volume's path into a new volume).
func ExtractTree(r io.Reader, dir string) error {
	x, err := newExtractor(dir)
	if err != nil {
		return err
	}
	defer x.Close()
	return x.extractAll(tar.NewReader(r))
}

// ExtractArchive unpacks the tar archive in r, plain or compressed as
// docker import's may be (gzip, bzip2, xz, zstd), into the directory dir
// (docker build's context, and ADD of a local archive, which passes
// noWhiteouts: it unpacks into a layer); it stops when ctx ends.
func ExtractArchive(ctx context.Context, r io.Reader, dir string, noWhiteouts bool) error {
	src, closeSrc, err := Decompressed(ctx, r)
	if err != nil {
		return err
	}
	defer closeSrc()
	x, err := newExtractor(dir)
	if err != nil {
		return err
	}
	defer x.Close()
	x.noWhiteouts = noWhiteouts
	if err := x.extractAll(tar.NewReader(src)); err != nil {
		return err
	}
	if IsCompressed(src) {
		return DrainTail(src)
	}
	return nil
}
