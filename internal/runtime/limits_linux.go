package runtime

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/container"
)

// HostLimits finds which limits the host's cgroups can apply, by the files
// their controllers offer (moby's pkg/sysinfo does the same): cgroup v2
// where /sys/fs/cgroup is the unified hierarchy, else v1's hierarchies.
func HostLimits(parent string) container.HostLimits {
	h := container.HostLimits{NCPU: runtime.NumCPU()}
	exists := func(p ...string) bool {
		_, err := os.Stat(filepath.Join(append([]string{cgroupRoot}, p...)...))
		return err == nil
	}
	read := func(p ...string) string {
		b, _ := os.ReadFile(filepath.Join(append([]string{cgroupRoot}, p...)...))
		return strings.TrimSpace(string(b))
	}
	if exists("cgroup.controllers") {
		h.CgroupV2 = true
		ctrl := strings.Fields(read("cgroup.controllers"))
		has := func(c string) bool { return slices.Contains(ctrl, c) }
		h.Memory, h.Reservation = has("memory"), has("memory")
		// memory.swap.max is in every non-root cgroup where the kernel
		// accounts swap, the root has none: moby looks in the daemon's
		// own; berth also in its containers' parents (the daemon's
		// --cgroup-parent, berth's /berth).
		h.Swap = has("memory") && (exists(ownCgroupV2(), "memory.swap.max") || exists(cgroupParent, "memory.swap.max") ||
			parent != "" && exists(parent, "memory.swap.max"))
		h.CPUCfs, h.CPUShares, h.Pids, h.BlkioWeight = has("cpu"), has("cpu"), has("pids"), has("io")
		if has("cpuset") {
			h.Cpuset, h.Cpus, h.Mems = true, read("cpuset.cpus.effective"), read("cpuset.mems.effective")
		}
		return h
	}
	h.Memory = exists("memory", "memory.limit_in_bytes")
	h.Swap = exists("memory", "memory.memsw.limit_in_bytes")
	h.Reservation = exists("memory", "memory.soft_limit_in_bytes")
	h.Swappiness = exists("memory", "memory.swappiness")
	h.OomKillDisable = exists("memory", "memory.oom_control")
	h.CPUCfs = exists("cpu", "cpu.cfs_quota_us")
	h.CPUShares = exists("cpu", "cpu.shares")
	h.Pids = exists("pids")
	h.BlkioWeight = exists("blkio", "blkio.weight") || exists("blkio", "blkio.bfq.weight")
	if exists("cpuset", "cpuset.cpus") {
		h.Cpuset, h.Cpus, h.Mems = true, read("cpuset", "cpuset.cpus"), read("cpuset", "cpuset.mems")
	}
	return h
}

// ownCgroupV2 is the daemon's cgroup in the unified hierarchy ("0::/x").
func ownCgroupV2() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	v2, _ := container.ParseProcCgroup(string(b))
	if v2 == "" {
		return "/"
	}
	return v2
}
