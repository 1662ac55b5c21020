package runtime

import (
	"errors"
	"os"
	"path"
	"slices"

	"golang.org/x/sys/unix"
)

// walkEntry is one entry walkTree found: its path from the tree's root
// ("/a/b"), its lstat, and, for a directory, a descriptor of it (valid
// during the call only).
type walkEntry struct {
	rel    string
	st     unix.Stat_t
	dir    int // -1 if not a directory
	parent int // the directory the entry is in (valid during the call only)
}

// walkTree calls fn for every entry under the directory root, parents
// before children, names in order, through descriptors: each directory is
// opened from its parent's descriptor with O_NOFOLLOW, so an entry a
// container swaps for a symlink while the daemon walks its upper directory
// is never followed out of the tree (filepath.WalkDir opens each directory
// by its path name, and a directory swapped for a symlink to / between
// its listing and its opening had the daemon walk the host's root: QA
// round 27's review). A root that does not exist is an empty tree.
func walkTree(root string, fn func(e walkEntry) error) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	return walkDir(fd, "/", fn)
}

// walkDir walks the directory open as fd (which it closes), named rel.
func walkDir(fd int, rel string, fn func(e walkEntry) error) error {
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	if errors.Is(err, unix.ENOENT) {
		f.Close()
		return nil // removed meanwhile
	}
	if err != nil {
		f.Close()
		return err
	}
	slices.Sort(names)
	defer f.Close()
	for _, name := range names {
		e := walkEntry{rel: path.Join(rel, name), dir: -1, parent: fd}
		if err := unix.Fstatat(fd, name, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone meanwhile
		}
		if e.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := fn(e); err != nil {
				return err
			}
			continue
		}
		child, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // swapped or gone meanwhile: not followed
		}
		e.dir = child
		if err := fn(e); err != nil {
			unix.Close(child)
			return err
		}
		if err := walkDir(child, e.rel, fn); err != nil {
			return err
		}
	}
	return nil
}
