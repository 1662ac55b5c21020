package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime/image"
)

// userIn resolves a --user value against the container's /etc/passwd and
// /etc/group, read from its mounted root filesystem.
func userIn(rootfs, spec string, groupAdd []string) (user, error) {
	passwd, err := readInRoot(rootfs, "etc/passwd")
	if err != nil {
		return user{}, err
	}
	group, err := readInRoot(rootfs, "etc/group")
	if err != nil {
		return user{}, err
	}
	return resolveUser(spec, passwd, group, groupAdd)
}

// readInRoot reads rel inside root with symlinks resolved as the container
// sees them (openat2 RESOLVE_IN_ROOT), so an image cannot make the daemon
// read a host file. A missing file reads as empty; anything but a regular
// file is refused, opened without blocking: a FIFO the container put at
// /etc/passwd would hang the request that reads it.
func readInRoot(root, rel string) ([]byte, error) {
	dir, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("open root filesystem %q: %w", root, err)
	}
	defer dir.Close()
	// Never opened unless it is a regular file (image.OpenRegularIn): an
	// open of a device node the container made (it has CAP_MKNOD, and the
	// overlay is not nodev) reaches its driver from the host, outside the
	// container's device cgroup (QA round 27).
	fd, err := image.OpenRegularIn(dir, rel)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if errors.Is(err, image.ErrNotRegular) {
		return nil, fmt.Errorf("read %q in %q: not a regular file", rel, root)
	}
	if err != nil {
		return nil, fmt.Errorf("open %q in %q: %w", rel, root, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	// /etc/passwd is small; a limit keeps a hostile image from filling memory.
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// CheckUser says whether user (an exec's -u) resolves in container id's
// /etc/passwd and /etc/group as the exec would resolve it, with the
// container's --group-add groups.
func (r *Runtime) CheckUser(id, user string, groupAdd []string) error {
	_, err := userIn(r.rootfs(id), user, groupAdd)
	return err
}

// CheckWorkdir refuses a working directory (--workdir, the image's
// WORKDIR) that a new container on the image whose root filesystem is
// lower would find as something other than a directory, in moby's words
// (container.SetupWorkingDirectory, at create): runc would fail its start
// with "mkdir /etc/passwd: not a directory", and the container would be
// left. The overlay is not mounted for this: the path is looked up in the
// init layer (which lies over the image's: its /etc/hosts is a file), then
// in the image, without following symlinks, so that only an answer the
// merged view must give is taken. A path through a symlink, or through
// something the init layer hides, is left to the check at start, which
// looks at the mounted view; a missing directory is no error (runc makes
// it).
func (r *Runtime) CheckWorkdir(lower, cwd string) error {
	if cwd == "" {
		return nil
	}
	rel := path.Clean("/" + cwd)
	for _, root := range []string{r.initLayer(), lower} {
		isDir, found, err := dirIn(root, rel, false)
		switch {
		case err != nil:
			return nil // a symlink on the way, or a layer that cannot be read: the start's check decides
		case found && isDir:
			return nil
		case found:
			return errNotWorkdir(cwd)
		}
	}
	return nil
}

// checkWorkdirIn is CheckWorkdir in a container's mounted root filesystem,
// at start (moby checks again there: the container may have put a file
// at its working directory since), symlinks followed as the container
// sees them. The error is the spec's (invalid): the start gives it bare,
// as moby's createSpec does.
func checkWorkdirIn(rootfs, cwd string) error {
	if cwd == "" {
		return nil
	}
	if isDir, found, err := dirIn(rootfs, path.Clean("/"+cwd), true); err == nil && found && !isDir {
		return errdefs.WithKind(errdefs.KindInvalid, errNotWorkdir(cwd))
	}
	return nil
}

func errNotWorkdir(cwd string) error {
	return fmt.Errorf("Cannot mkdir: %s is not a directory", cwd) // moby's words, capital and all
}

// dirIn looks rel up inside root (openat2 RESOLVE_IN_ROOT: nothing leads
// out), following symlinks as the container would when follow is set,
// and refusing them (ELOOP) when not, and says whether it is there and a
// directory; a component on the way that is not a directory counts as not
// found, as moby's check does (its Stat fails, and the mkdir's own error
// is given).
func dirIn(root, rel string, follow bool) (isDir, found bool, err error) {
	dir, err := os.Open(root)
	if err != nil {
		return false, false, err
	}
	defer dir.Close()
	resolve := uint64(unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS)
	if !follow {
		resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, true, nil
}
