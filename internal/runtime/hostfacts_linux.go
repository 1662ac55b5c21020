package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
)

// hostFactsNow are the facts a container's spec takes from the host, as
// they are now.
func (r *Runtime) hostFactsNow() hostFacts {
	h := hostFacts{nofile: r.nofile, caps: effectiveCaps(), devices: hostDevices, device: devicesFromPath, arch: runtime.GOARCH}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		h.kernel = unix.ByteSliceToString(uts.Release[:])
	}
	return h
}

// EffectiveCapabilities are the daemon's effective capabilities: all a
// container may get (a privileged one gets them all, as moby's
// GetAllCapabilities).
func EffectiveCapabilities() []string { return effectiveCaps() }

func effectiveCaps() []string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil
			}
			return container.CapabilitiesIn(mask)
		}
	}
	return nil
}

// skippedDevDirs are the directories of /dev whose nodes a privileged
// container does not get from the host (containerd's HostDevices): its
// own pts, shm and mqueue are mounted there.
var skippedDevDirs = []string{"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}

// hostDevices are the host's block and character devices under /dev, as a
// privileged container gets them (containerd's HostDevices): the host's
// paths, numbers, modes and owners.
func hostDevices() ([]specs.LinuxDevice, error) {
	var devs []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			if p != "/dev" && slices.Contains(skippedDevDirs, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "console" {
			return nil
		}
		dev, ok := deviceAt(p)
		if ok {
			devs = append(devs, dev)
		}
		return nil
	})
	return devs, err
}

// deviceAt is the block or character device node at p, not following a
// symlink.
func deviceAt(p string) (specs.LinuxDevice, bool) {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil {
		return specs.LinuxDevice{}, false
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFCHR:
		typ = "c"
	default:
		return specs.LinuxDevice{}, false
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: p, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid}, true
}

// devicesFromPath are the device nodes a --device names (moby's
// DevicesFromPath): the node at host (a symlink followed), or every node
// under a directory, each at its path under ctr in the container.
func devicesFromPath(host, ctr string) ([]specs.LinuxDevice, error) {
	resolved := host
	if fi, err := os.Lstat(host); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if p, err := filepath.EvalSymlinks(host); err == nil {
			resolved = p
		}
	}
	if dev, ok := deviceAt(resolved); ok {
		dev.Path = ctr
		return []specs.LinuxDevice{dev}, nil
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", host, errors.Unwrap(err))
	}
	var devs []specs.LinuxDevice
	if fi.IsDir() {
		filepath.WalkDir(resolved, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if dev, ok := deviceAt(p); ok {
				dev.Path = filepath.Join(ctr, strings.TrimPrefix(p, resolved))
				devs = append(devs, dev)
			}
			return nil
		})
	}
	if len(devs) == 0 {
		return nil, fmt.Errorf("error gathering device information while adding custom device %q: not a device node", host)
	}
	return devs, nil
}
