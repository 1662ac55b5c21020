package container

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// minMemory is moby's smallest memory limit (linuxMinMemory): not the
// kernel's, room for a container's start.
const minMemory = 6 << 20

// CheckResources applies moby's checks of a create's or an update's
// limits (verifyPlatformContainerResources, in its order and words) to r
// against what the host can apply (h): an error for a value Docker
// refuses, and a warning for each limit the host cannot apply, which is
// dropped from r. berth also refuses at create what Docker accepts there
// and fails at start: an unknown --ulimit, a soft limit over its hard
// one, negative CPU shares.
func CheckResources(r *Resources, h HostLimits, update bool) (warnings []string, err error) {
	warn := func(w string) { warnings = append(warnings, w) }
	if err := checkMemory(r, h, update, warn); err != nil {
		return warnings, err
	}
	if r.PidsLimit != nil && !h.Pids {
		if *r.PidsLimit > 0 {
			warn("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
		}
		r.PidsLimit = nil
	}
	if err := checkCPU(r, h, warn); err != nil {
		return warnings, err
	}
	if r.BlkioWeight > 0 && !h.BlkioWeight {
		warn("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return warnings, errors.New("Range of blkio weight is from 10 to 1000")
	}
	if r.ShmSize < 0 {
		return warnings, errors.New("SHM size can not be less than 0")
	}
	if r.OomScoreAdj < -1000 || r.OomScoreAdj > 1000 {
		return warnings, fmt.Errorf("Invalid value %d, range for oom score adj is [-1000, 1000]", r.OomScoreAdj)
	}
	return warnings, CheckUlimits(r.Ulimits)
}

func checkMemory(r *Resources, h HostLimits, update bool, warn func(string)) error {
	if r.Memory != 0 && r.Memory < minMemory {
		return errors.New("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && !h.Memory {
		warn("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.Memory, r.MemorySwap = 0, -1
	}
	if r.Memory > 0 && r.MemorySwap != -1 && !h.Swap {
		warn("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		r.MemorySwap = -1
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return errors.New("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 && !update {
		return errors.New("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && !h.Swappiness {
		warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
		r.MemorySwappiness = nil
	}
	if p := r.MemorySwappiness; p != nil && (*p < 0 || *p > 100) {
		return fmt.Errorf("Invalid value: %v, valid memory swappiness range is 0-100", *p)
	}
	if r.MemoryReservation > 0 && !h.Reservation {
		warn("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
		r.MemoryReservation = 0
	}
	if r.MemoryReservation > 0 && r.MemoryReservation < minMemory {
		return errors.New("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return errors.New("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.OomKillDisable && !h.OomKillDisable {
		warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
		r.OomKillDisable = false
	}
	if r.OomKillDisable && r.Memory == 0 {
		warn("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
	}
	return nil
}

func checkCPU(r *Resources, h HostLimits, warn func(string)) error {
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return errors.New("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return errors.New("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.NanoCPUs > 0 && !h.CPUCfs {
		return errors.New("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")
	}
	if r.NanoCPUs != 0 && (r.NanoCPUs < 0 || r.NanoCPUs > int64(h.NCPU)*1e9) {
		return fmt.Errorf("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", h.NCPU)
	}
	if r.CPUShares < 0 {
		return fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUShares > 0 && !h.CPUShares {
		warn("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
		r.CPUShares = 0
	}
	if (r.CPUPeriod != 0 || r.CPUQuota != 0) && !h.CPUCfs {
		warn("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
		r.CPUPeriod, r.CPUQuota = 0, 0
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return errors.New("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return errors.New("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if (r.CpusetCpus != "" || r.CpusetMems != "") && !h.Cpuset {
		warn("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
		r.CpusetCpus, r.CpusetMems = "", ""
	}
	if err := checkCpuset(r.CpusetCpus, h.Cpus, "cpus", "CPUs"); err != nil {
		return err
	}
	return checkCpuset(r.CpusetMems, h.Mems, "mems", "memory nodes")
}

// checkCpuset checks a --cpuset-cpus or --cpuset-mems list against the
// host's (moby compares the mems with the CPUs; berth with the nodes).
func checkCpuset(requested, available, what, nodes string) error {
	if requested == "" {
		return nil
	}
	want, err := ParseCpuList(requested)
	if err != nil {
		return fmt.Errorf("Invalid value %s for cpuset %s: %w", requested, what, err)
	}
	have, err := ParseCpuList(available)
	if err != nil {
		return nil // the host's list unreadable: leave it to the kernel
	}
	for n := range want {
		if !have[n] {
			return fmt.Errorf("Requested %s are not available - requested %s, available: %s", nodes, requested, available)
		}
	}
	return nil
}

// maxCpusetNode bounds a cpuset list's numbers (moby's defaultMaxCPUs).
const maxCpusetNode = 8192

// ParseCpuList reads a cpuset list such as "0-2,4" (moby's parseUintList).
func ParseCpuList(list string) (map[int]bool, error) {
	out := map[int]bool{}
	if list == "" {
		return out, nil
	}
	num := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid format: %s", list)
		}
		if n > maxCpusetNode {
			return 0, fmt.Errorf("value of out range, maximum is %d", maxCpusetNode)
		}
		return n, nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := num(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = num(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("invalid format: %s", list)
			}
		}
		for n := a; n <= b; n++ {
			out[n] = true
		}
	}
	return out, nil
}

// CheckUlimits refuses at create what runc would refuse at start (Docker
// checks the names only in its CLI, in go-units' words).
func CheckUlimits(uls []Ulimit) error {
	seen := map[string]bool{}
	for _, u := range uls {
		name := strings.ToLower(u.Name) // moby's RLIMIT_ + ToUpper(name)
		if !slices.Contains(ulimitNames, name) {
			return fmt.Errorf("invalid ulimit type: %s", u.Name)
		}
		if seen[name] {
			return fmt.Errorf("invalid ulimit: %s is given twice", u.Name)
		}
		seen[name] = true
		if u.Soft < -1 || u.Hard < -1 {
			return fmt.Errorf("invalid ulimit %s: a limit is -1 (unlimited) or not below 0: soft %d, hard %d", u.Name, u.Soft, u.Hard)
		}
		if u.Soft > u.Hard && u.Hard != -1 || u.Soft == -1 && u.Hard != -1 {
			return fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
		}
	}
	return nil
}

// AdaptResources are create's defaults (moby's adaptContainerSettings):
// a memory limit alone limits memory and swap together to twice it,
// where the host limits swap (CheckResources has set -1 where not).
func AdaptResources(r *Resources) {
	if r.Memory > 0 && r.MemorySwap == 0 {
		r.MemorySwap = doubled(r.Memory)
	}
}

// doubled is twice m, or -1 (unlimited) where that is past int64: moby's
// 2×Memory wraps to a negative there, which it then leaves unapplied.
func doubled(m int64) int64 {
	if m > math.MaxInt64/2 {
		return -1
	}
	return 2 * m
}

// ContainerUpdate is docker update's request: a restart policy (none:
// unchanged) and the limits to change (see Resources.Update).
type ContainerUpdate struct {
	RestartPolicy RestartPolicy
	Resources     Resources
}

// ConflictError is an update that contradicts the container's limits
// (moby's conflictingUpdateOptions, a 409).
type ConflictError struct{ msg string }

func (e ConflictError) Error() string { return e.msg }

// Update merges a checked update u into r, as moby's UpdateContainer: a
// field changes where u sets it (non-zero; PidsLimit non-nil). Only the
// cgroup limits change: swappiness, the OOM killer, ulimits, /dev/shm and
// the OOM score are the create's.
//
// Unlike Docker, a memory limit given to a container that had none (no
// swap limit recorded) gets swap limited to twice it, as at create, and
// one given to a container whose swap is unlimited keeps it so, where
// Docker refuses both until --memory-swap is given too.
func (r *Resources) Update(u Resources, hostSwap bool) error {
	conflict := func(m string) error { return ConflictError{"Conflicting options: " + m} }
	if u.NanoCPUs != 0 && r.CPUPeriod != 0 {
		return conflict("Nano CPUs cannot be updated as CPU Period has already been set")
	}
	if u.NanoCPUs != 0 && r.CPUQuota != 0 {
		return conflict("Nano CPUs cannot be updated as CPU Quota has already been set")
	}
	if u.CPUPeriod != 0 && r.NanoCPUs != 0 {
		return conflict("CPU Period cannot be updated as NanoCPUs has already been set")
	}
	if u.CPUQuota != 0 && r.NanoCPUs != 0 {
		return conflict("CPU Quota cannot be updated as NanoCPUs has already been set")
	}
	next := *r
	if u.Memory != 0 {
		switch {
		case u.MemorySwap != 0:
		case r.MemorySwap == 0 && hostSwap:
			next.MemorySwap = doubled(u.Memory)
		case r.MemorySwap == 0, r.MemorySwap == -1:
			next.MemorySwap = -1 // swap unlimited stays so (Docker refuses -1 too)
		case u.Memory > r.MemorySwap:
			return ConflictError{"Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"}
		}
		next.Memory = u.Memory
	}
	setIf := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	setIf(&next.MemorySwap, u.MemorySwap)
	setIf(&next.MemoryReservation, u.MemoryReservation)
	setIf(&next.NanoCPUs, u.NanoCPUs)
	setIf(&next.CPUPeriod, u.CPUPeriod)
	setIf(&next.CPUQuota, u.CPUQuota)
	setIf(&next.CPUShares, u.CPUShares)
	if u.CpusetCpus != "" {
		next.CpusetCpus = u.CpusetCpus
	}
	if u.CpusetMems != "" {
		next.CpusetMems = u.CpusetMems
	}
	if u.BlkioWeight != 0 {
		next.BlkioWeight = u.BlkioWeight
	}
	if u.PidsLimit != nil {
		v := max(*u.PidsLimit, 0)
		next.PidsLimit = &v
	}
	if next.Memory > 0 && next.MemorySwap > 0 && next.MemorySwap < next.Memory {
		return errors.New("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if next.Memory == 0 && next.MemorySwap > 0 {
		// runc could never start it (moby stores it, and the start fails).
		return errors.New("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	*r = next
	return nil
}

// CheckCgroupParent checks a --cgroup-parent: an absolute cgroup path,
// made of names a cgroup can have. berth's cgroups are cgroupfs ones, as
// dockerd's with its default driver; a relative parent, which runc would
// place under its own cgroup (per hierarchy on cgroup v1), is refused.
func CheckCgroupParent(p string) error {
	if p == "" {
		return nil
	}
	if !path.IsAbs(p) && strings.HasSuffix(p, ".slice") {
		return fmt.Errorf("--cgroup-parent %q: a systemd slice is a parent for dockerd's systemd cgroup driver; berth's cgroups are cgroupfs ones, under an absolute cgroup path such as /mygroup", p)
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("--cgroup-parent %q: berth takes an absolute cgroup path, such as /mygroup", p)
	}
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if name == "." || name == ".." || strings.ContainsAny(name, "\x00\n") {
			return fmt.Errorf("--cgroup-parent %q: %q is not a cgroup's name", p, name)
		}
	}
	return nil
}
