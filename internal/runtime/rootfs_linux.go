package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

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
