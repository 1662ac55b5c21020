package api

import (
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/volume"
)

// propagations are the bind propagation modes moby's Linux parser takes.
var propagations = map[string]bool{"private": true, "rprivate": true, "slave": true, "rslave": true, "shared": true, "rshared": true}

// containerMounts reads a create's mounts as moby's parser does: -v
// (Binds) "host:container[:mode]", "name:container[:mode]" for a named
// volume and "/container" for an anonymous one, --mount (Mounts) of type
// bind, volume or tmpfs, --tmpfs (Tmpfs), and Config.Volumes (anonymous
// volumes where nothing else is mounted). --volumes-from's values are
// checked here (checkVolumesFrom) and resolved by the daemon, which copies
// the other containers' mounts where none of these is.
func containerMounts(c *ctypes.Config, hc *ctypes.HostConfig) ([]container.Mount, error) {
	if err := checkVolumesFrom(hc.VolumesFrom); err != nil {
		return nil, err
	}
	var out []container.Mount
	for _, raw := range hc.Binds {
		m, err := parseBind(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, spec := range hc.Mounts {
		m, err := parseMountSpec(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	dsts := make([]string, 0, len(hc.Tmpfs))
	for dst := range hc.Tmpfs {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		if err := validTarget(dst); err != nil {
			return nil, errdefs.Invalid("invalid tmpfs mount %q: %v", dst, err)
		}
		var opts []string
		if o := hc.Tmpfs[dst]; o != "" {
			opts = strings.Split(o, ",")
		}
		out = append(out, container.Mount{Type: container.MountTmpfs, Destination: path.Clean(dst), Options: opts, Flag: true})
	}
	seen := map[string]bool{}
	for _, m := range out {
		if seen[m.Destination] {
			return nil, errdefs.Invalid("Duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
	}
	// Config.Volumes (docker run -v /path, docker create's anonymous
	// volumes) are checked here; the daemon mounts them where nothing
	// else is, --volumes-from's copies included, with the image's
	// VOLUMEs, as moby's createContainerOSSpecificSettings.
	vols := make([]string, 0, len(c.Volumes))
	for dst := range c.Volumes {
		vols = append(vols, dst)
	}
	sort.Strings(vols)
	for _, dst := range vols {
		if err := validTarget(dst); err != nil {
			return nil, errdefs.Invalid("invalid volume specification: '%s': %v", dst, err)
		}
	}
	return out, nil
}

// checkVolumesFrom checks --volumes-from's values as moby's
// ParseVolumesFrom: "container[:mode]", the mode rw or ro and z or Z, no
// propagation and no nocopy (the mounts keep the other container's).
func checkVolumesFrom(specs []string) error {
	for _, spec := range specs {
		if spec == "" {
			return errdefs.Invalid("volumes-from specification cannot be an empty string")
		}
		_, mode, _ := strings.Cut(spec, ":")
		if mode == "" {
			continue
		}
		if !validMode(mode) || slices.ContainsFunc(strings.Split(mode, ","), func(o string) bool { return propagations[o] || o == "nocopy" }) {
			return errdefs.Invalid("invalid mode: %s", mode)
		}
	}
	return nil
}

// parseBind reads one -v value as moby's ParseMountRaw: a host path's
// bind, created at start when missing.
func parseBind(raw string) (container.Mount, error) {
	arr := strings.SplitN(raw, ":", 4)
	invalid := errdefs.Invalid("invalid volume specification: '%s'", raw)
	if arr[0] == "" {
		return container.Mount{}, invalid
	}
	var src, dst, mode string
	switch len(arr) {
	case 1:
		dst = arr[0] // an anonymous volume
	case 2:
		if validMode(arr[1]) {
			return container.Mount{}, invalid
		}
		src, dst = arr[0], arr[1]
	case 3:
		src, dst, mode = arr[0], arr[1], arr[2]
	default:
		return container.Mount{}, invalid
	}
	if !validMode(mode) {
		return container.Mount{}, errdefs.Invalid("invalid mode: %s", mode)
	}
	modes := strings.Split(mode, ",")
	if path.IsAbs(src) && slices.Contains(modes, "nocopy") {
		return container.Mount{}, errdefs.Invalid("invalid volume specification: '%s': invalid mount config for type \"bind\": field VolumeOptions must not be specified", raw)
	}
	if !path.IsAbs(src) { // a volume: named, or anonymous ("")
		if src != "" {
			if err := volume.CheckName(src); err != nil {
				return container.Mount{}, err
			}
		}
		if err := validTarget(dst); err != nil {
			return container.Mount{}, errdefs.Invalid("invalid volume specification: '%s': invalid mount config for type \"volume\": %v", raw, err)
		}
		return container.Mount{Type: container.MountVolume, Source: src, Destination: path.Clean(dst), Mode: mode,
			ReadOnly: slices.Contains(modes, "ro"), NoCopy: slices.Contains(modes, "nocopy")}, nil
	}
	if err := validTarget(dst); err != nil {
		return container.Mount{}, errdefs.Invalid("invalid volume specification: '%s': invalid mount config for type \"bind\": %v", raw, err)
	}
	m := container.Mount{Type: container.MountBind, Source: path.Clean(src), Destination: path.Clean(dst), Mode: mode,
		Propagation: "rprivate", CreateSource: true}
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "ro":
			m.ReadOnly = true
		case propagations[o]:
			if err := privateOnly(o); err != nil {
				return container.Mount{}, err
			}
			m.Propagation = o
		}
	}
	return m, nil
}

// privateOnly refuses the shared and slave propagations by name: they
// need the source shared and the container's root propagation set, which
// berth does not do.
func privateOnly(p string) error {
	if p == "private" || p == "rprivate" {
		return nil
	}
	return errdefs.Invalid("bind propagation %s is not supported by berth: binds are rprivate", p)
}

// validMode is moby's linuxValidMountMode: comma-separated, at most one
// of each kind (rw/ro, z/Z, a propagation, nocopy, a consistency).
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var counts [5]int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "rw" || o == "ro":
			counts[0]++
		case o == "z" || o == "Z":
			counts[1]++
		case propagations[o]:
			counts[2]++
		case o == "nocopy":
			counts[3]++
		case o == "consistent" || o == "cached" || o == "delegated" || o == "default":
			counts[4]++
		default:
			return false
		}
	}
	for _, n := range counts {
		if n > 1 {
			return false
		}
	}
	return true
}

// validTarget is moby's check of a mount's destination.
func validTarget(dst string) error {
	if dst == "" {
		return fmt.Errorf("field Target must not be empty")
	}
	if path.Clean(dst) == "/" {
		return fmt.Errorf("invalid specification: destination can't be '/'")
	}
	if !path.IsAbs(dst) {
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", dst)
	}
	return nil
}

// parseMountSpec reads one --mount as moby's validateMountConfig: a bind
// of a source that exists, or a tmpfs.
func parseMountSpec(spec mount.Mount) (container.Mount, error) {
	bad := func(format string, args ...any) error {
		return errdefs.Invalid("invalid mount config for type %q: %s", spec.Type, fmt.Sprintf(format, args...))
	}
	if err := validTarget(spec.Target); err != nil {
		return container.Mount{}, bad("%v", err)
	}
	switch spec.Type {
	case mount.TypeBind:
		if spec.Source == "" {
			return container.Mount{}, bad("field Source must not be empty")
		}
		if spec.VolumeOptions != nil {
			return container.Mount{}, bad("field VolumeOptions must not be specified")
		}
		if !path.IsAbs(spec.Source) {
			return container.Mount{}, bad("invalid mount path: '%s' mount path must be absolute", spec.Source)
		}
		m := container.Mount{Type: container.MountBind, Source: path.Clean(spec.Source), Destination: path.Clean(spec.Target),
			ReadOnly: spec.ReadOnly, Propagation: "rprivate"}
		if o := spec.BindOptions; o != nil {
			if o.Propagation != "" {
				if !propagations[string(o.Propagation)] {
					return container.Mount{}, bad("invalid propagation mode: %s", o.Propagation)
				}
				if err := privateOnly(string(o.Propagation)); err != nil {
					return container.Mount{}, err
				}
				m.Propagation = string(o.Propagation)
			}
			if o.NonRecursive || o.ReadOnlyNonRecursive || o.ReadOnlyForceRecursive {
				return container.Mount{}, errdefs.Invalid("bind-recursive options (--mount bind-recursive=…) are not supported by berth: binds are recursive, and read-only all the way down")
			}
			m.CreateSource = o.CreateMountpoint
		}
		if _, err := os.Stat(m.Source); err != nil && !m.CreateSource {
			return container.Mount{}, bad("bind source path does not exist: %s", spec.Source)
		}
		return m, nil
	case mount.TypeTmpfs:
		if spec.Source != "" {
			return container.Mount{}, bad("field Source must not be specified")
		}
		if spec.BindOptions != nil {
			return container.Mount{}, bad("field BindOptions must not be specified")
		}
		m := container.Mount{Type: container.MountTmpfs, Destination: path.Clean(spec.Target), ReadOnly: spec.ReadOnly}
		if o := spec.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return container.Mount{}, bad("invalid tmpfs size: %d", o.SizeBytes)
			}
			if o.SizeBytes > 0 {
				m.Options = append(m.Options, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				// The CLI sends the octal mode as it was typed (1777).
				m.Options = append(m.Options, "mode="+strconv.FormatUint(uint64(o.Mode)&0o7777, 8))
			}
			for _, opt := range o.Options { // moby's validateTmpfsOptions
				if len(opt) < 1 || len(opt) > 2 {
					return container.Mount{}, bad("invalid option array length")
				}
				if opt[0] != "exec" && opt[0] != "noexec" {
					return container.Mount{}, bad("invalid option: %s", opt[0])
				}
				m.Options = append(m.Options, strings.Join(opt, "="))
			}
		}
		return m, nil
	case mount.TypeVolume:
		if spec.BindOptions != nil {
			return container.Mount{}, bad("field BindOptions must not be specified")
		}
		if spec.Source != "" {
			if err := volume.CheckName(spec.Source); err != nil {
				return container.Mount{}, err
			}
		}
		m := container.Mount{Type: container.MountVolume, Source: spec.Source, Destination: path.Clean(spec.Target), ReadOnly: spec.ReadOnly}
		if o := spec.VolumeOptions; o != nil {
			if d := o.DriverConfig; d != nil && d.Name != "" && d.Name != "local" {
				return container.Mount{}, errdefs.Invalid("volume driver %q is not supported by berth: only \"local\"", d.Name)
			}
			if d := o.DriverConfig; d != nil && len(d.Options) > 0 {
				// As `docker volume create -o`: a tmpfs or device asked
				// for must not become a directory on disk unsaid.
				return container.Mount{}, errdefs.Invalid("local volume options (volume-opt=type=…, device=…) are not supported by berth")
			}
			if o.Subpath != "" {
				return container.Mount{}, errdefs.Invalid("volume subpaths (volume-subpath) are not supported by berth")
			}
			m.NoCopy, m.VolumeLabels = o.NoCopy, o.Labels
		}
		return m, nil
	case mount.TypeNamedPipe, mount.TypeCluster, "image":
		return container.Mount{}, errdefs.Invalid("%s mounts (--mount type=%s) are not supported by berth", spec.Type, spec.Type)
	}
	// Not a type moby knows: its validator's words.
	return container.Mount{}, errdefs.Invalid("invalid mount config for type %q: mount type unknown", spec.Type)
}
