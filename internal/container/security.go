package container

import (
	"fmt"
	"strconv"
	"strings"
)

// Security is how far a container is confined beyond its capabilities:
// --privileged, --security-opt, and the system paths hidden from it.
type Security struct {
	// Privileged gives the container every capability the daemon has,
	// the host's devices, /sys and its cgroups writable, and no seccomp
	// filter or masked paths (as Docker's --privileged).
	Privileged bool `json:"privileged,omitempty"`
	// Opts are --security-opt's values as given (inspect shows them).
	Opts []string `json:"opts,omitempty"`
	// NoNewPrivileges keeps setuid binaries and file capabilities from
	// raising the container's privileges.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Seccomp is "" for Docker's default profile (none for a privileged
	// container), SeccompBuiltin for that profile whatever the container
	// (moby refuses it for a privileged one), SeccompUnconfined for none,
	// or a profile of the user's own as JSON (the docker CLI reads
	// --security-opt seccomp=FILE and sends its contents).
	Seccomp string `json:"seccomp,omitempty"`
	// MaskedPaths and ReadonlyPaths, when set, are the paths hidden from
	// the container and made read-only in it in place of Docker's (nil:
	// Docker's, none for a privileged container), each on its own, as
	// moby's; --security-opt systempaths=unconfined, which the docker CLI
	// sends as two empty lists, clears both.
	MaskedPaths   *[]string `json:"maskedPaths,omitempty"`
	ReadonlyPaths *[]string `json:"readonlyPaths,omitempty"`
	// WritableCgroups mounts /sys/fs/cgroup read-write (privileged
	// containers have it anyway).
	WritableCgroups bool `json:"writableCgroups,omitempty"`
}

// SeccompUnconfined and SeccompBuiltin are --security-opt seccomp's names.
const (
	SeccompUnconfined = "unconfined"
	SeccompBuiltin    = "builtin"
)

// ParseSecurityOpts reads --security-opt values as moby's parseSecurityOpt
// does (key=value, or the deprecated key:value), in its words: a
// no-new-privileges flag, a seccomp profile, the cgroups' writability,
// and the AppArmor and SELinux settings a host without either takes as
// nothing (unconfined, label=disable); another AppArmor profile or SELinux
// label is refused, berth applying neither. (systempaths=unconfined is the
// docker CLI's: it sends empty path lists instead.)
func ParseSecurityOpts(opts []string) (Security, error) {
	s := Security{Opts: opts}
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			s.NoNewPrivileges = true
			continue
		case "writable-cgroups":
			s.WritableCgroups = true
			continue
		case "disable":
			continue // a bare label option
		}
		sep := "="
		if !strings.Contains(opt, "=") {
			sep = ":"
		}
		k, v, ok := strings.Cut(opt, sep)
		if !ok {
			return s, fmt.Errorf("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "no-new-privileges", "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, fmt.Errorf("invalid --security-opt 2: %q", opt)
			}
			if k == "no-new-privileges" {
				s.NoNewPrivileges = b
			} else {
				s.WritableCgroups = b
			}
		case "seccomp":
			s.Seccomp = v
		case "apparmor":
			if v != "unconfined" {
				return s, fmt.Errorf("--security-opt %s: berth applies no AppArmor profile (this option takes only apparmor=unconfined, which is what berth's containers are)", opt)
			}
		case "label":
			if v != "disable" {
				return s, fmt.Errorf("--security-opt %s: berth applies no SELinux labels (this option takes only label=disable, which is what berth's containers are)", opt)
			}
		default:
			return s, fmt.Errorf("invalid --security-opt 2: %q", opt)
		}
	}
	return s, nil
}

// Masked is the paths hidden from the container (see MaskedPaths).
func (s Security) Masked() []string { return s.systemPaths(s.MaskedPaths, DefaultMaskedPaths) }

// Readonly is the paths made read-only in the container.
func (s Security) Readonly() []string { return s.systemPaths(s.ReadonlyPaths, DefaultReadonlyPaths) }

// systemPaths is a list as given, none for a privileged container, else
// Docker's.
func (s Security) systemPaths(given *[]string, docker func() []string) []string {
	switch {
	case given != nil:
		return *given
	case s.Privileged:
		return nil
	}
	return docker()
}

// DefaultMaskedPaths are the paths Docker hides from a container that is
// not privileged (moby's default spec), DefaultReadonlyPaths those it
// makes read-only.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// Namespaces are the container's PID, IPC, UTS and cgroup namespace modes
// as moby names them (--pid, --ipc, --uts, --cgroupns): "" or "private"
// for its own, "host" for the host's, "container:<id>" for another
// container's (PID and IPC), "none" (IPC: no /dev/shm) and "shareable"
// (IPC: its own, which others may join).
type Namespaces struct {
	PidMode      string `json:"pidMode,omitempty"`
	IpcMode      string `json:"ipcMode,omitempty"`
	UTSMode      string `json:"utsMode,omitempty"`
	CgroupnsMode string `json:"cgroupnsMode,omitempty"`
}

// Namespace modes.
const (
	ModeHost      = "host"
	ModePrivate   = "private"
	ModeNone      = "none"
	ModeShareable = "shareable"
)

// SharedNamespace reports whether mode joins another container's
// namespace ("container:<ref>"), and names that container.
func SharedNamespace(mode string) (ref string, ok bool) { return strings.CutPrefix(mode, sharedPrefix) }

// CheckNamespaces checks the modes in moby's words (the modes' Valid and
// validateNetMode): hostname and domainname are the container's
// --hostname and --domainname (the host's UTS namespace takes neither;
// moby fails a --domainname there only at start, in runc's words).
func CheckNamespaces(ns Namespaces, hostname, domainname string) error {
	switch ref, shared := SharedNamespace(ns.PidMode); {
	case ns.PidMode == "", ns.PidMode == ModeHost, shared && ref != "":
	default:
		return fmt.Errorf("invalid PID mode: %v", ns.PidMode)
	}
	switch ref, shared := SharedNamespace(ns.IpcMode); {
	case ns.IpcMode == "", ns.IpcMode == ModeHost, ns.IpcMode == ModePrivate, ns.IpcMode == ModeNone,
		ns.IpcMode == ModeShareable, shared && ref != "":
	default:
		return fmt.Errorf("invalid IPC mode: %v", ns.IpcMode)
	}
	switch ns.UTSMode {
	case "":
	case ModeHost:
		if hostname != "" {
			return fmt.Errorf("conflicting options: hostname and the UTS mode")
		}
		if domainname != "" {
			return fmt.Errorf("conflicting options: domainname and the UTS mode")
		}
	default:
		return fmt.Errorf("invalid UTS mode: %v", ns.UTSMode)
	}
	switch ns.CgroupnsMode {
	case "", ModeHost, ModePrivate:
	default:
		return fmt.Errorf("invalid cgroup namespace mode: %v", ns.CgroupnsMode)
	}
	return nil
}
