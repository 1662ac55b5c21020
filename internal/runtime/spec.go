package runtime

import (
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-net/berth/internal/container"
)

// InitPath is where --init's binary is bound in a container, as moby's
// docker-init.
const InitPath = "/sbin/docker-init"

// Spec is what a container runs.
type Spec struct {
	ID        string
	RootfsDir string   // the image's rootfs: the overlay's read-only lower layer
	Args      []string // the command, Args[0] looked up in PATH
	Env       []string // PATH, HOSTNAME, HOME (and TERM with Tty) are added when missing
	Cwd       string   // "" = "/"
	User      string   // "", "uid", "uid:gid", "name", "name:group", looked up in the image
	Hostname  string
	// Domainname is the container's NIS domain name (--domainname), set
	// as moby sets it: the kernel.domainname sysctl of its own UTS
	// namespace, which runc applies.
	Domainname string
	NetNSPath  string // the sandbox's netns path; "" = share the daemon's namespace (host network)
	// NetNSJoined says NetNSPath is another container's namespace
	// (--network container:X): its sysctls are that container's own.
	NetNSJoined bool
	Tty         bool
	ConsoleSize [2]uint // with Tty: the terminal's height and width at start; zero = unknown
	OpenStdin   bool
	// Files are bind-mounted: container path → host file (the daemon's
	// /etc/hosts, /etc/hostname, /etc/resolv.conf).
	Files map[string]string
	// ReadOnly mounts the root filesystem, and Files, read-only (--read-only).
	ReadOnly bool
	// Init is the host path of an init binary (tini) to run the command
	// under (--init): bound read-only at InitPath, as moby binds its
	// docker-init, with Args after "--"; "" runs the command as PID 1.
	Init string
	// CapAdd and CapDrop change Docker's default capability set
	// (--cap-add, --cap-drop; normalized, see container.Capabilities).
	CapAdd, CapDrop []string
	// Sysctls are set in the container's namespaces (--sysctl), over
	// berth's own defaults.
	Sysctls map[string]string
	// Mounts are the user's binds and tmpfs mounts (-v, --mount,
	// --tmpfs); one on a path of berth's own (a Files path, /dev/shm…)
	// takes its place, as in moby.
	Mounts []container.Mount
	// Log bounds the container's log (its driver's max-size and max-file).
	Log LogLimit
	// Resources are the container's limits (--memory, --cpus,
	// --pids-limit, --ulimit, --shm-size, --oom-score-adj), checked.
	Resources container.Resources
	// Security is --privileged and --security-opt.
	Security container.Security
	// GroupAdd are more groups for the process (--group-add): names
	// looked up in the container's /etc/group, or IDs.
	GroupAdd []string
	// Devices are --device's host nodes, DeviceCgroupRules
	// --device-cgroup-rule's permissions (checked).
	Devices           []container.DeviceMapping
	DeviceCgroupRules []string
	// PidNS and IpcNS are the container's PID and IPC namespaces: "" its
	// own, "host" the host's, or the path of one to join (another
	// container's). Shm is its /dev/shm: "" a tmpfs of its own, "none"
	// none, or a host directory bound there (the host's /dev/shm, a
	// shareable container's tmpfs). UTSHost shares the host's UTS
	// namespace; CgroupNS gives it a cgroup namespace of its own.
	PidNS, IpcNS, Shm string
	UTSHost, CgroupNS bool
	// Annotations go into the OCI spec as they are (--annotation), as
	// moby's WithAnnotations puts them.
	Annotations map[string]string
	// CgroupParent is the cgroup the container's goes under (the
	// container's --cgroup-parent, or the daemon's), checked
	// (CheckCgroupParent); "" is berth's own, /berth.
	CgroupParent string
}

// ExecSpec is a process to run in a running container.
type ExecSpec struct {
	Args []string
	// BaseEnv is the container's environment for the process and Env the
	// exec's own over it: the process gets PATH, HOSTNAME (TERM), them,
	// and HOME, as a container does (containerEnv), and nothing of what
	// the container's init got (moby builds an exec's so, with the links'
	// variables as they are then).
	Env     []string
	BaseEnv []string
	Cwd     string // "" = the container's
	User    string // "" = root
	Tty     bool
	// Nil streams are not attached. With Tty only Stdout is used.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	ConsoleSize    [2]uint // height, width; zero = unknown
	// Privileged gives the process the daemon's effective capabilities
	// (docker exec --privileged); the rest is the container's.
	Privileged bool
	// GroupAdd are the container's --group-add groups, which an exec's
	// user gets too.
	GroupAdd []string
	// OnStart, if set, is called once the process runs, with its host PID
	// and a function that resizes its terminal (a no-op without Tty): by
	// Exec itself, before it returns, at most once.
	OnStart func(pid int, resize func(h, w uint) error)
}

// ociVersion is the newest runtime-spec version runc 1.1 (Debian 12) knows.
const ociVersion = "1.0.2"

// defaultPath is the PATH a container gets when its environment has none, as in Docker.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cgroupParent is where container cgroups go (in every v1 hierarchy)
// unless the container or the daemon names a parent (--cgroup-parent).
const cgroupParent = "/berth"

// cgroupsPath is the cgroup path of container id under parent ("" for
// berth's own).
func cgroupsPath(parent, id string) string {
	if parent == "" {
		parent = cgroupParent
	}
	return path.Join("/", parent, id)
}

// maxNofile is the open files limit Docker gives containers.
const maxNofile = 1048576

// user is a resolved process identity.
type user struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string
}

// hostFacts are what a container's spec takes from the host: Docker's
// open files limit as the daemon may give it, the daemon's effective
// capabilities and the host's device nodes (a privileged container's), and
// the machine and kernel a seccomp profile's rules name.
type hostFacts struct {
	nofile  uint64
	caps    []string
	devices func() ([]specs.LinuxDevice, error)
	device  func(host, ctr string) ([]specs.LinuxDevice, error)
	arch    string
	kernel  string
}

// ociSpec builds the container's config.json: Docker's defaults (mounts,
// masked paths, capabilities, rlimits, seccomp) around what s asks for.
func ociSpec(s Spec, u user, h hostFacts) (*specs.Spec, error) {
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNSPath}
	namespaces := []specs.LinuxNamespace{}
	for _, ns := range []struct {
		typ  specs.LinuxNamespaceType
		mode string
	}{{specs.PIDNamespace, s.PidNS}, {specs.IPCNamespace, s.IpcNS}} {
		switch ns.mode {
		case "":
			namespaces = append(namespaces, specs.LinuxNamespace{Type: ns.typ})
		case container.ModeHost:
		default:
			namespaces = append(namespaces, specs.LinuxNamespace{Type: ns.typ, Path: ns.mode})
		}
	}
	if !s.UTSHost {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
	if s.CgroupNS {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	sysctl := map[string]string{}
	if s.NetNSPath != "" {
		namespaces = append(namespaces, netns)
	}
	if s.NetNSPath != "" && !s.NetNSJoined {
		// Docker's: ping without CAP_NET_RAW, and low ports without
		// CAP_NET_BIND_SERVICE, in the container's own network namespace
		// (moby's NetworkMode.IsPrivate: not a joined one, whose owner's
		// settings, --sysctl given, they would undo at each start).
		sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
		sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
	}
	if s.Domainname != "" && !s.UTSHost { // never the host's
		sysctl["kernel.domainname"] = s.Domainname
	}
	maps.Copy(sysctl, s.Sysctls) // the user's win, as in moby's WithSysctls
	args := s.Args
	if s.Init != "" && s.PidNS == "" { // moby's: an init only in a PID namespace of its own
		args = append([]string{InitPath, "--"}, s.Args...)
	}
	sec := s.Security
	caps := container.Capabilities(s.CapAdd, s.CapDrop)
	if h.caps != nil {
		// --cap-add ALL is what the daemon has (moby's), and runc could
		// give no more.
		caps = slices.DeleteFunc(caps, func(c string) bool { return !slices.Contains(h.caps, c) })
	}
	if sec.Privileged {
		caps = h.caps // moby's: the daemon's own effective set; --cap-add/--cap-drop do not count
	}
	proc := processSpec(args, containerEnv(s, u), s.Cwd, s.Tty, u, rlimits(s.Resources, h.nofile), caps)
	if s.Tty && s.ConsoleSize[0] > 0 && s.ConsoleSize[1] > 0 {
		// moby's WithConsoleSize: the tty has the CLI's size from the
		// start (a program that reads it at once saw 0x0 until the CLI's
		// resize came).
		proc.ConsoleSize = &specs.Box{Height: s.ConsoleSize[0], Width: s.ConsoleSize[1]}
	}
	oomScoreAdj := s.Resources.OomScoreAdj
	proc.OOMScoreAdj = &oomScoreAdj
	proc.NoNewPrivileges = sec.NoNewPrivileges
	resources := LinuxResources(s.Resources)
	// Deny all devices; runc adds the standard ones (null, zero, tty, …).
	resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	linux := &specs.Linux{
		Namespaces:  namespaces,
		Sysctl:      sysctl,
		CgroupsPath: cgroupsPath(s.CgroupParent, s.ID),
		Resources:   resources,
	}
	linux.MaskedPaths, linux.ReadonlyPaths = sec.Masked(), sec.Readonly()
	if err := addDevices(linux, s, h); err != nil {
		return nil, err
	}
	seccomp, err := seccompSpec(sec, caps, h)
	if err != nil {
		return nil, err
	}
	linux.Seccomp = seccomp
	return &specs.Spec{
		Version:  ociVersion,
		Process:  proc,
		Root:     &specs.Root{Path: "rootfs", Readonly: s.ReadOnly},
		Hostname: hostnameIn(s),
		Mounts:   allMounts(s),
		Linux:    linux,
		// A copy: the spec is written to disk, and s's map is the container's.
		Annotations: maps.Clone(s.Annotations),
	}, nil
}

// hostnameIn is the hostname runc sets: none in the host's UTS namespace.
func hostnameIn(s Spec) string {
	if s.UTSHost {
		return ""
	}
	return s.Hostname
}

// addDevices gives the container its devices, as moby's WithDevices: a
// privileged one the host's and access to all, others each --device's
// nodes with its permissions and the --device-cgroup-rule ones.
func addDevices(linux *specs.Linux, s Spec, h hostFacts) error {
	res := linux.Resources
	if s.Security.Privileged {
		devs, err := h.devices()
		if err != nil {
			return fmt.Errorf("the host's devices for a privileged container: %w", err)
		}
		linux.Devices = devs
	}
	for _, dm := range s.Devices {
		if s.Security.Privileged && dm.PathOnHost == dm.PathInContainer {
			continue // there already
		}
		devs, err := h.device(dm.PathOnHost, dm.PathInContainer)
		if err != nil {
			return err
		}
		for _, d := range devs {
			linux.Devices = append(linux.Devices, d)
			if !s.Security.Privileged {
				res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &d.Major, Minor: &d.Minor, Access: dm.CgroupPermissions})
			}
		}
	}
	if s.Security.Privileged {
		res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"})
		return nil
	}
	for _, r := range s.DeviceCgroupRules {
		rule, err := container.ParseDeviceRule(r)
		if err != nil {
			return err
		}
		res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: rule.Type, Major: &rule.Major, Minor: &rule.Minor, Access: rule.Access})
	}
	return nil
}

// seccompSpec is the container's seccomp filter, as moby's WithSeccomp
// chooses it: none with seccomp=unconfined, none for a privileged
// container unless it names a profile (builtin: Docker's default, which
// moby refuses there), the user's profile, else Docker's default; the
// rules for the capabilities in its bounding set.
func seccompSpec(sec container.Security, caps []string, h hostFacts) (*specs.LinuxSeccomp, error) {
	switch {
	case sec.Seccomp == container.SeccompUnconfined:
		return nil, nil
	case sec.Privileged && sec.Seccomp == "":
		return nil, nil
	case sec.Seccomp == container.SeccompBuiltin:
	case sec.Seccomp != "":
		p, err := parseSeccompProfile([]byte(sec.Seccomp))
		if err != nil {
			return nil, err
		}
		return p.spec(caps, h.arch, h.kernel), nil
	}
	return defaultSeccomp().spec(caps, h.arch, h.kernel), nil
}

// processSpec is the process part of a spec, shared by Start and Exec
// (an exec gets the container's capability set).
func processSpec(args, env []string, cwd string, tty bool, u user, rlimits []specs.POSIXRlimit, capSet []string) *specs.Process {
	if cwd == "" {
		cwd = "/"
	}
	caps := &specs.LinuxCapabilities{Bounding: capSet}
	// As Docker: a non-root user keeps the bounding set but starts with no
	// effective or permitted capabilities.
	if u.UID == 0 {
		caps.Effective, caps.Permitted = capSet, capSet
	}
	return &specs.Process{
		Terminal: tty,
		User: specs.User{
			UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids,
		},
		Args:         args,
		Env:          env,
		Cwd:          cwd,
		Capabilities: caps,
		Rlimits:      rlimits,
	}
}

// rlimits are the process's rlimits: Docker's open files limit (nofile)
// and the container's --ulimit ones over it, sorted by type as moby's
// WithRlimits sorts them.
func rlimits(r container.Resources, nofile uint64) []specs.POSIXRlimit {
	out := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}
	for _, ul := range r.Ulimits {
		rl := specs.POSIXRlimit{Type: ul.RlimitType(), Hard: uint64(ul.Hard), Soft: uint64(ul.Soft)}
		if i := slices.IndexFunc(out, func(o specs.POSIXRlimit) bool { return o.Type == rl.Type }); i >= 0 {
			out[i] = rl
			continue
		}
		out = append(out, rl)
	}
	slices.SortFunc(out, func(a, b specs.POSIXRlimit) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// LinuxResources are r's cgroup settings as runc takes them, in the spec
// and in `runc update --resources` (moby's getMemoryResources,
// getCPUResources, getPidsLimit and WithResources).
func LinuxResources(r container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = &r.Memory
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = &r.MemoryReservation
	}
	if r.MemorySwap > 0 { // -1 (unlimited) is what a cgroup has unset
		mem.Swap = &r.MemorySwap
	}
	if p := r.MemorySwappiness; p != nil && *p >= 0 {
		v := uint64(*p)
		mem.Swappiness = &v
	}
	if r.OomKillDisable {
		mem.DisableOOMKiller = &r.OomKillDisable
	}
	if *mem != (specs.LinuxMemory{}) {
		out.Memory = mem
	}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares > 0 {
		v := uint64(r.CPUShares)
		cpu.Shares = &v
	}
	if period, quota := r.CFS(); period != 0 || quota != 0 {
		if period != 0 {
			v := uint64(period)
			cpu.Period = &v
		}
		if quota != 0 {
			cpu.Quota = &quota
		}
	}
	if *cpu != (specs.LinuxCPU{}) {
		out.CPU = cpu
	}
	if p := r.PidsLimit; p != nil {
		// 0 is unlimited, which runc takes as -1 (and an update needs).
		limit := max(*p, -1)
		if limit == 0 {
			limit = -1
		}
		out.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if r.BlkioWeight > 0 {
		out.BlockIO = &specs.LinuxBlockIO{Weight: &r.BlkioWeight}
	}
	return out
}

// containerEnv is the process's environment in Docker's order (moby's
// CreateDaemonEnvironment): PATH, HOSTNAME and, for a tty, TERM, then
// s.Env (the links' variables, then the container's own, then an exec's,
// unmerged), each in turn replacing a variable of the same name where it
// stands or, bare, removing it (container.MergeEnv); then the user's HOME when
// s.Env has none, which runc adds in Docker.
func containerEnv(s Spec, u user) []string {
	env := []string{defaultPath}
	if s.Hostname != "" {
		env = append(env, "HOSTNAME="+s.Hostname)
	}
	if s.Tty {
		env = append(env, "TERM=xterm")
	}
	env = container.MergeEnv(env, s.Env)
	return addEnvDefault(env, "HOME="+u.Home)
}

func addEnvDefault(env []string, kv string) []string {
	key, _, _ := strings.Cut(kv, "=")
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return env
		}
	}
	return append(env, kv)
}

// shmOption is /dev/shm's size option: 65536k for Docker's 64 MiB.
func shmOption(bytes int64) string {
	if bytes%1024 == 0 {
		return "size=" + strconv.FormatInt(bytes/1024, 10) + "k"
	}
	return "size=" + strconv.FormatInt(bytes, 10)
}

func defaultMounts(shmSize int64) []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", shmOption(shmSize)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// allMounts are the container's mounts: Docker's defaults and berth's
// files, less those the user's take the place of, then the user's, the
// shallower first (moby's sortMounts), so that one inside another's
// destination is mounted after it.
//
// berth's files go with the user's mounts, so that a user mount on /etc
// comes first and the files over it, as moby appends its network files
// to the mounts it sorts; a user mount on /dev drops Docker's mounts
// under it (oci_linux.go's rule).
func allMounts(s Spec) []specs.Mount {
	user := map[string]bool{}
	for _, m := range s.Mounts {
		user[m.Destination] = true
	}
	var out []specs.Mount
	for _, m := range defaultMounts(s.Resources.ShmBytes()) {
		if user[m.Destination] || user["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		if m.Destination == "/dev/shm" && s.Shm != "" {
			if s.Shm == container.ModeNone {
				continue // --ipc none: no /dev/shm, as moby
			}
			// The host's or a shareable container's, as moby binds it.
			m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: s.Shm, Options: []string{"rbind", "rprivate"}}
		}
		// moby's withMounts: a privileged container's /sys and cgroups
		// are writable, and --security-opt writable-cgroups=true makes
		// the cgroups so.
		if m.Destination == "/sys" && s.Security.Privileged ||
			m.Type == "cgroup" && (s.Security.Privileged || s.Security.WritableCgroups) {
			m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
		}
		out = append(out, m)
	}
	var rest []specs.Mount
	for _, m := range s.Mounts {
		rest = append(rest, userMount(m))
	}
	for _, m := range fileMounts(s.Files, s.ReadOnly) {
		if !user[m.Destination] {
			rest = append(rest, m)
		}
	}
	if s.Init != "" {
		rest = append(rest, specs.Mount{Destination: InitPath, Type: "bind", Source: s.Init, Options: []string{"bind", "ro"}})
	}
	sort.SliceStable(rest, func(i, j int) bool {
		return strings.Count(path.Clean(rest[i].Destination), "/") < strings.Count(path.Clean(rest[j].Destination), "/")
	})
	return append(out, rest...)
}

// userMount is m as runc mounts it: a bind recursive with its
// propagation, a tmpfs with Docker's noexec, nosuid and nodev unless the
// user's options say otherwise.
func userMount(m container.Mount) specs.Mount {
	if m.Type == container.MountTmpfs {
		opts := []string{"noexec", "nosuid", "nodev"}
		for _, o := range m.Options {
			if neg, ok := map[string]string{"exec": "noexec", "suid": "nosuid", "dev": "nodev"}[o]; ok {
				opts = slices.DeleteFunc(opts, func(x string) bool { return x == neg })
				continue
			}
			if !slices.Contains(opts, o) {
				opts = append(opts, o)
			}
		}
		if m.ReadOnly && !slices.Contains(opts, "ro") {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts}
	}
	prop := m.Propagation
	if prop == "" {
		prop = "rprivate"
	}
	opts := []string{"rbind", prop}
	if m.ReadOnly {
		// Read-only all the way down (runc's "rro", mount_setattr), as
		// moby's default since v25: a mount under the source stays
		// read-only in the container too.
		opts = append(opts, "rro")
	}
	return specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts}
}

// fileMounts bind-mounts host files (the daemon's /etc/hosts and friends)
// into the container, in a stable order; read-only with a read-only root,
// as Docker's.
func fileMounts(files map[string]string, readOnly bool) []specs.Mount {
	dsts := make([]string, 0, len(files))
	for dst := range files {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	var ms []specs.Mount
	for _, dst := range dsts {
		opts := []string{"rbind", "rprivate"}
		if readOnly {
			opts = append(opts, "ro")
		}
		ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: files[dst], Options: opts})
	}
	return ms
}
