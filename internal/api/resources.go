package api

import (
	"path"
	"slices"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// resourcesOf is berth's form of a create's or update's limits; the
// daemon checks them against what the host's cgroups can do
// (container.CheckResources).
func resourcesOf(r ctypes.Resources, shmSize int64, oomScoreAdj int) container.Resources {
	out := container.Resources{
		Memory: r.Memory, MemorySwap: r.MemorySwap, MemoryReservation: r.MemoryReservation,
		NanoCPUs: r.NanoCPUs, CPUPeriod: r.CPUPeriod, CPUQuota: r.CPUQuota, CPUShares: r.CPUShares,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, BlkioWeight: r.BlkioWeight,
		ShmSize: shmSize, OomScoreAdj: oomScoreAdj,
	}
	if p := r.MemorySwappiness; p != nil && *p != -1 { // -1: the docker CLI's "not set"
		v := *p
		out.MemorySwappiness = &v
	}
	out.OomKillDisable = r.OomKillDisable != nil && *r.OomKillDisable
	if r.PidsLimit != nil && *r.PidsLimit > 0 { // 0 and -1: unlimited, as not set
		v := *r.PidsLimit
		out.PidsLimit = &v
	}
	for _, u := range r.Ulimits {
		if u != nil {
			out.Ulimits = append(out.Ulimits, container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
		}
	}
	return out
}

// discardedResources are moby's warnings for the limits it drops rather
// than refuses: the kernel memory limit (which its router zeroes without a
// word from API 1.42 on; the kernel deprecated it) and a CPU percent
// (Windows only).
func discardedResources(r ctypes.Resources, apiVersion string) []string {
	var warnings []string
	if r.KernelMemory > 0 && lessThan(apiVersion, "1.42") {
		warnings = append(warnings, "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	if r.CPUPercent > 0 {
		warnings = append(warnings, "linux does not support CPU percent. Percent discarded.")
	}
	return warnings
}

// resourcesView is HostConfig's limits as moby shows them: 0 for what is
// not set, Docker's /dev/shm size, PidsLimit and MemorySwappiness null
// when not set, OomKillDisable false unless set, Ulimits [] (what the
// docker CLI sends) when there are none.
func resourcesView(hc *ctypes.HostConfig, r container.Resources) {
	hc.Memory, hc.MemorySwap, hc.MemoryReservation = r.Memory, r.MemorySwap, r.MemoryReservation
	hc.NanoCPUs, hc.CPUPeriod, hc.CPUQuota, hc.CPUShares = r.NanoCPUs, r.CPUPeriod, r.CPUQuota, r.CPUShares
	hc.CpusetCpus, hc.CpusetMems, hc.BlkioWeight = r.CpusetCpus, r.CpusetMems, r.BlkioWeight
	hc.ShmSize, hc.OomScoreAdj = r.ShmBytes(), r.OomScoreAdj
	if r.MemorySwappiness != nil {
		v := *r.MemorySwappiness
		hc.MemorySwappiness = &v
	}
	oomKillDisable := r.OomKillDisable
	hc.OomKillDisable = &oomKillDisable
	if r.PidsLimit != nil {
		v := *r.PidsLimit
		hc.PidsLimit = &v
	}
	hc.Ulimits = []*ctypes.Ulimit{}
	for _, u := range r.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &ctypes.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
}

// securityOf is berth's form of --privileged, --security-opt and the
// system paths (the docker CLI sends --security-opt systempaths=unconfined
// as empty MaskedPaths and ReadonlyPaths; each list is kept on its own, as
// moby keeps it).
func securityOf(hc *ctypes.HostConfig) (container.Security, error) {
	sec, err := container.ParseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return sec, errdefs.Invalid("%w", err)
	}
	sec.Privileged = hc.Privileged
	if hc.MaskedPaths != nil {
		paths := slices.Clone(hc.MaskedPaths)
		sec.MaskedPaths = &paths
	}
	if hc.ReadonlyPaths != nil {
		paths := slices.Clone(hc.ReadonlyPaths)
		sec.ReadonlyPaths = &paths
	}
	for _, p := range append(slices.Clone(hc.MaskedPaths), hc.ReadonlyPaths...) {
		if !path.IsAbs(p) {
			return sec, errdefs.Invalid("invalid system path %q: not an absolute path", p)
		}
	}
	return sec, nil
}

// securityView is HostConfig's security settings as moby shows them: the
// options as given, and the masked and read-only paths the container gets
// (null when privileged, as given when set).
func securityView(hc *ctypes.HostConfig, sec container.Security) {
	hc.Privileged, hc.SecurityOpt = sec.Privileged, sec.Opts
	hc.MaskedPaths, hc.ReadonlyPaths = sec.Masked(), sec.Readonly()
}

// devicesOf are --device and --device-cgroup-rule, checked (moby checks
// the rules only at start).
func devicesOf(hc *ctypes.HostConfig) ([]container.DeviceMapping, []string, error) {
	var devs []container.DeviceMapping
	for _, d := range hc.Devices {
		dm := container.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions}
		if dm.PathInContainer == "" {
			dm.PathInContainer = dm.PathOnHost
		}
		if dm.CgroupPermissions == "" {
			dm.CgroupPermissions = "rwm"
		}
		if err := container.CheckDeviceMapping(dm); err != nil {
			return nil, nil, errdefs.Invalid("%w", err)
		}
		devs = append(devs, dm)
	}
	for _, r := range hc.DeviceCgroupRules {
		if _, err := container.ParseDeviceRule(r); err != nil {
			return nil, nil, errdefs.Invalid("%w", err)
		}
	}
	return devs, slices.Clone(hc.DeviceCgroupRules), nil
}

// devicesView is HostConfig.Devices and DeviceCgroupRules as given.
func devicesView(hc *ctypes.HostConfig, devs []container.DeviceMapping, rules []string) {
	hc.Devices = []ctypes.DeviceMapping{}
	for _, d := range devs {
		hc.Devices = append(hc.Devices, ctypes.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	hc.DeviceCgroupRules = rules
}

// namespacesOf are --pid, --ipc, --uts and --cgroupns as given.
func namespacesOf(hc *ctypes.HostConfig) container.Namespaces {
	return container.Namespaces{PidMode: string(hc.PidMode), IpcMode: string(hc.IpcMode),
		UTSMode: string(hc.UTSMode), CgroupnsMode: string(hc.CgroupnsMode)}
}
