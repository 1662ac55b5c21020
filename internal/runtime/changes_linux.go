package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
)

// Changes lists what container id changed in its root file system against
// the image's tree at lower and the init layer (docker diff), from its
// overlay upper directory: a whiteout (a 0:0 character device) is a
// deletion, an entry a lower layer has a change, any other an addition; an opaque directory
// also deletes every entry of the image's that it does not have. Sorted
// by path, as moby's changes are. A container that never started has
// none.
func (r *Runtime) Changes(id, lower string) ([]container.Change, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	upper := r.upperDir(id)
	var out []container.Change
	err := walkTree(upper, func(e walkEntry) error {
		rel := e.rel
		if e.st.Mode&unix.S_IFMT == unix.S_IFCHR && e.st.Rdev == 0 {
			out = append(out, container.Change{Path: rel, Kind: container.ChangeDeleted})
			return nil
		}
		kind := container.ChangeAdded
		if inLower(lower, rel) || inLower(r.initLayer(), rel) {
			kind = container.ChangeModified
		}
		out = append(out, container.Change{Path: rel, Kind: kind})
		if e.dir >= 0 && kind == container.ChangeModified && opaque(e.dir) {
			out = append(out, hidden(lower, upper, rel)...)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b container.Change) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}

// inLower says whether the lower layer dir has rel.
func inLower(dir, rel string) bool {
	fd, err := openBeneath(dir, rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// openBeneath opens rel inside the tree dir without following a symlink
// on the way (a trailing one is opened itself with O_PATH|O_NOFOLLOW), as
// overlayfs looks through its lower layer. A path name built from the
// container's upper directory and looked up on the host followed the
// image's symlinks out of the tree (`/y -> /`): docker diff listed host
// directories (QA round 27).
func openBeneath(dir, rel string, flags uint64) (int, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	return unix.Openat2(root, strings.TrimPrefix(rel, "/"), &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
}

// opaque reports whether the upper directory at p hides the image's
// (overlayfs's opaque xattr). berth mounts without userxattr, so only the
// trusted one counts: user.overlay.opaque is what a container may set on
// any directory of its own, and means nothing to the kernel here.
func opaque(dir int) bool {
	buf := make([]byte, 8)
	n, err := unix.Fgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// hidden lists as deleted the entries of the image's directory rel that
// the opaque upper directory does not have.
func hidden(lower, upper, rel string) []container.Change {
	fd, err := openBeneath(lower, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil // not a directory of the image's (a symlink there is not looked through)
	}
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil
	}
	slices.Sort(names)
	var out []container.Change
	for _, name := range names {
		if !inLower(upper, filepath.Join(rel, name)) { // in the upper directory, looked up the same way
			out = append(out, container.Change{Path: filepath.Join(rel, name), Kind: container.ChangeDeleted})
		}
	}
	return out
}
