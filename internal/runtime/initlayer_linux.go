package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// initEntries are Docker's init layer (moby's daemon/initlayer): what
// every container finds whatever its image has — mount points for the
// files and file systems the runtime mounts, /.dockerenv (which programs
// look for to know they run in a container), and /etc/mtab as a link to
// /proc/mounts. A value is "dir", "file" or a symlink's target.
var initEntries = map[string]string{
	"/dev/pts":         "dir",
	"/dev/shm":         "dir",
	"/proc":            "dir",
	"/sys":             "dir",
	"/.dockerenv":      "file",
	"/etc/resolv.conf": "file",
	"/etc/hosts":       "file",
	"/etc/hostname":    "file",
	"/dev/console":     "file",
	"/etc/mtab":        "/proc/mounts",
}

// initLayer is the directory of the init layer, the lower layer every
// container's overlay has over its image's: one for all containers, as
// its contents are the same for each (Docker makes one per container).
func (r *Runtime) initLayer() string {
	return filepath.Join(filepath.Dir(filepath.Clean(r.cfg.DataDir)), "init-layer")
}

// ensureInitLayer makes the init layer if it is missing or incomplete:
// directories 0755, empty files 0755 (as moby's), the link. It is built
// beside its place and renamed into it, so that an overlay never gets a
// half-made one.
func (r *Runtime) ensureInitLayer() error {
	dir := r.initLayer()
	if initLayerComplete(dir) {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".init-layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	paths := make([]string, 0, len(initEntries))
	for p := range initEntries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(tmp, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		switch kind := initEntries[p]; kind {
		case "dir":
			err = os.Mkdir(full, 0o755)
		case "file":
			var f *os.File
			if f, err = os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755); err == nil {
				err = errors.Join(f.Chmod(0o755), f.Close())
			}
		default:
			err = os.Symlink(kind, full)
		}
		if err != nil {
			return fmt.Errorf("init layer %s: %w", p, err)
		}
	}
	// A stale, incomplete one (from an older berth) goes first; an
	// overlay mounted on it keeps its own reference.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil && !initLayerComplete(dir) {
		return fmt.Errorf("install the init layer: %w", err) // not another runtime's, just made
	}
	return nil
}

// initLayerComplete says whether dir has every init entry.
func initLayerComplete(dir string) bool {
	for p := range initEntries {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}
