package container

import (
	"fmt"
	"strings"
)

// Resources are a container's limits: the cgroup ones (docker run's
// --memory, --cpus, --pids-limit …) and the process ones (--ulimit,
// --oom-score-adj, --shm-size), as the user gave them. Zero is "not set"
// for each but the pointers, where nil is.
type Resources struct {
	// Memory is the memory limit in bytes; MemorySwap the limit of memory
	// and swap together (-1: swap unlimited; 0: twice Memory where the
	// kernel limits swap, as moby); MemoryReservation the soft limit.
	Memory            int64 `json:"memory,omitempty"`
	MemorySwap        int64 `json:"memorySwap,omitempty"`
	MemoryReservation int64 `json:"memoryReservation,omitempty"`
	// MemorySwappiness is 0–100, nil for the host's.
	MemorySwappiness *int64 `json:"memorySwappiness,omitempty"`
	// OomKillDisable keeps the kernel's OOM killer off the container's
	// processes (cgroup v1 only): at its limit a process waits for memory.
	OomKillDisable bool `json:"oomKillDisable,omitempty"`
	// NanoCPUs is --cpus in billionths of a CPU; CPUPeriod and CPUQuota
	// are the CFS period and quota in µs (either, not both, with NanoCPUs).
	NanoCPUs  int64 `json:"nanoCpus,omitempty"`
	CPUPeriod int64 `json:"cpuPeriod,omitempty"`
	CPUQuota  int64 `json:"cpuQuota,omitempty"`
	CPUShares int64 `json:"cpuShares,omitempty"`
	// CpusetCpus and CpusetMems are lists such as "0-2,4".
	CpusetCpus string `json:"cpusetCpus,omitempty"`
	CpusetMems string `json:"cpusetMems,omitempty"`
	// PidsLimit bounds the container's tasks: nil is not set, 0 unlimited
	// (what an update to "unlimited" leaves, as in moby).
	PidsLimit   *int64 `json:"pidsLimit,omitempty"`
	BlkioWeight uint16 `json:"blkioWeight,omitempty"`
	// Ulimits are the container's rlimits over the daemon's defaults.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	// ShmSize is /dev/shm's size in bytes, 0 for Docker's 64 MiB.
	ShmSize     int64 `json:"shmSize,omitempty"`
	OomScoreAdj int   `json:"oomScoreAdj,omitempty"`
}

// DefaultShmSize is Docker's /dev/shm size.
const DefaultShmSize = 64 << 20

// Ulimit is one --ulimit: name=soft[:hard].
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// ulimitNames are the rlimits --ulimit takes (go-units' ulimitNameMapping).
var ulimitNames = []string{
	"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue",
	"nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// RlimitType is u's name as the OCI spec has it: RLIMIT_NOFILE (moby
// takes any case).
func (u Ulimit) RlimitType() string { return "RLIMIT_" + strings.ToUpper(u.Name) }

// ShmBytes is /dev/shm's size.
func (r Resources) ShmBytes() int64 {
	if r.ShmSize == 0 {
		return DefaultShmSize
	}
	return r.ShmSize
}

// cfsPeriod is the CFS period --cpus is applied with, moby's.
const cfsPeriod = 100000

// CFS is the CFS period and quota in µs the container gets: --cpus as a
// quota over a 100 ms period, or --cpu-period and --cpu-quota; 0 for
// what is not set.
func (r Resources) CFS() (period, quota int64) {
	if r.NanoCPUs > 0 {
		return cfsPeriod, r.NanoCPUs * cfsPeriod / 1e9
	}
	return r.CPUPeriod, r.CPUQuota
}

// String is a short form for logs.
func (u Ulimit) String() string { return fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard) }

// HostLimits are the limits the host's cgroups can apply (moby's
// pkg/sysinfo): what a container's Resources are checked against.
type HostLimits struct {
	CgroupV2 bool
	// Memory: memory.limit_in_bytes (v1) or the memory controller (v2);
	// Swap: memory.memsw.* or memory.swap.max; the others likewise.
	Memory, Swap, Reservation, Swappiness, OomKillDisable bool
	CPUCfs, CPUShares, Cpuset, Pids, BlkioWeight          bool
	// Cpus and Mems are the CPUs and memory nodes containers may use
	// ("0-3", "0"); NCPU the CPUs online.
	Cpus, Mems string
	NCPU       int
}
