package runtime

import (
	"errors"
	"io/fs"
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
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		rel := strings.TrimPrefix(p, upper)
		if rel == "" {
			return nil
		}
		if d.Type()&fs.ModeCharDevice != 0 {
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil && st.Rdev == 0 {
				out = append(out, container.Change{Path: rel, Kind: container.ChangeDeleted})
				return nil
			}
		}
		kind := container.ChangeAdded
		if inLower(lower, rel) || inLower(r.initLayer(), rel) {
			kind = container.ChangeModified
		}
		out = append(out, container.Change{Path: rel, Kind: kind})
		if d.IsDir() && kind == container.ChangeModified && opaque(p) {
			out = append(out, hidden(lower, upper, rel)...)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b container.Change) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}

// inLower says whether the lower layer dir has rel.
func inLower(dir, rel string) bool {
	_, err := os.Lstat(filepath.Join(dir, rel))
	return err == nil
}

// opaque reports whether the upper directory at p hides the image's
// (overlayfs's opaque xattr).
func opaque(p string) bool {
	buf := make([]byte, 8)
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, name, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// hidden lists as deleted the entries of the image's directory rel that
// the opaque upper directory does not have.
func hidden(lower, upper, rel string) []container.Change {
	ents, err := os.ReadDir(filepath.Join(lower, rel))
	if err != nil {
		return nil
	}
	var out []container.Change
	for _, e := range ents {
		if _, err := os.Lstat(filepath.Join(upper, rel, e.Name())); errors.Is(err, os.ErrNotExist) {
			out = append(out, container.Change{Path: filepath.Join(rel, e.Name()), Kind: container.ChangeDeleted})
		}
	}
	return out
}
