package container

import (
	"fmt"
	"slices"
	"strings"
)

// AllCapabilities is the --cap-add/--cap-drop word for every capability.
const AllCapabilities = "ALL"

// DefaultCapabilities is Docker's default capability set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// knownCapabilities are Linux's capabilities, 0 to 40, in number order.
var knownCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapabilitiesIn are the capabilities of a capability mask (a process's
// CapEff), by name: what a privileged container gets, as moby's
// GetAllCapabilities takes the daemon's own effective set.
func CapabilitiesIn(mask uint64) []string {
	var out []string
	for i, c := range knownCapabilities {
		if mask&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// NormalizeCapabilities is moby's NormalizeLegacyCapabilities: names in
// upper case with the CAP_ prefix ("net_admin" is CAP_NET_ADMIN), "ALL"
// kept, unknown names refused.
func NormalizeCapabilities(caps []string) ([]string, error) {
	var out []string
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != AllCapabilities && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if c != AllCapabilities && !slices.Contains(knownCapabilities, c) {
			return nil, fmt.Errorf("unknown capability: %q", c)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Capabilities is the set a container's processes get, as moby's
// TweakCapabilities makes it from normalized --cap-add and --cap-drop:
// "ALL" added gives every capability but those dropped; "ALL" dropped
// gives only those added; otherwise Docker's defaults less the dropped,
// plus the added.
func Capabilities(add, drop []string) []string {
	var caps []string
	switch {
	case len(add) == 0 && len(drop) == 0:
		return slices.Clone(DefaultCapabilities)
	case slices.Contains(add, AllCapabilities):
		for _, c := range knownCapabilities {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		return caps
	case slices.Contains(drop, AllCapabilities):
		return slices.Clone(add)
	}
	for _, c := range DefaultCapabilities {
		if !slices.Contains(drop, c) {
			caps = append(caps, c)
		}
	}
	for _, c := range add {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// namespacedSysctls are the sysctls outside net. and fs.mqueue. that a
// container may set, as the docker CLI's ValidateSysctl lists them.
var namespacedSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// CheckSysctl refuses a --sysctl key that is not namespaced (it would
// change the host), in the docker CLI's words, and a net. key for a
// container on the host network, in runc's.
func CheckSysctl(key string, hostNetwork bool) error {
	net := strings.HasPrefix(key, "net.")
	if !net && !strings.HasPrefix(key, "fs.mqueue.") && !slices.Contains(namespacedSysctls, key) {
		return fmt.Errorf("sysctl '%s' is not allowed", key)
	}
	if net && hostNetwork {
		return fmt.Errorf("sysctl %q not allowed in host network namespace", key)
	}
	return nil
}

// CheckSysctlIPC refuses an IPC sysctl (kernel.msg*, kernel.sem,
// kernel.shm*, fs.mqueue.*) for a container in the host's IPC namespace
// (--ipc host), in runc's words: it would be the host's.
func CheckSysctlIPC(key string, hostIPC bool) error {
	if hostIPC && !strings.HasPrefix(key, "net.") {
		return fmt.Errorf("sysctl %q is not allowed in the hosts ipc namespace", key)
	}
	return nil
}
