package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Stats samples the resource use of the container whose init is pid:
// its cgroup's files (found through /proc/PID/cgroup, cgroup v2 where
// the host has the unified hierarchy alone, else v1), the host's
// /proc/stat, and /proc/PID/net/dev (the container's network namespace).
// A process that is gone is errdefs.NotFound.
func (r *Runtime) Stats(pid int) (container.Stats, error) {
	s := container.Stats{Read: time.Now().UTC()}
	proc := "/proc/" + strconv.Itoa(pid)
	cg, err := os.ReadFile(proc + "/cgroup")
	if errors.Is(err, os.ErrNotExist) {
		return s, errdefs.NotFound("process %d is gone", pid)
	}
	if err != nil {
		return s, fmt.Errorf("stats of process %d: %w", pid, err)
	}
	v2, v1 := container.ParseProcCgroup(string(cg))
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil && v2 != "" {
		statsV2(&s, filepath.Join(cgroupRoot, v2))
	} else {
		statsV1(&s, v1)
	}
	if s.Memory.Limit == 0 {
		s.Memory.Limit = HostMemory() // no limit: the host's memory, as docker stats shows it
	}
	stat, _ := os.ReadFile("/proc/stat")
	s.CPU.System, s.CPU.Online = container.ParseProcStat(string(stat))
	if dev, err := os.ReadFile(proc + "/net/dev"); err == nil {
		s.Networks = container.ParseNetDev(string(dev))
	}
	return s, nil
}

func statsV2(s *container.Stats, dir string) {
	read := func(name string) string { b, _ := os.ReadFile(filepath.Join(dir, name)); return string(b) }
	cpu := container.ParseKV(read("cpu.stat"))
	s.CPU.Total, s.CPU.User, s.CPU.Kernel = cpu["usage_usec"]*1000, cpu["user_usec"]*1000, cpu["system_usec"]*1000
	s.CPU.Periods, s.CPU.Throttled, s.CPU.ThrottledTime = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	s.Memory.Usage = container.ParseUintOrMax(read("memory.current"))
	s.Memory.Limit = container.ParseUintOrMax(read("memory.max"))
	s.Memory.Stats = container.ParseKV(read("memory.stat"))
	s.IOBytes, s.IOOps = container.ParseIOStatV2(read("io.stat"))
	s.Pids = container.PidsStats{Current: container.ParseUintOrMax(read("pids.current")), Limit: container.ParseUintOrMax(read("pids.max"))}
}

func statsV1(s *container.Stats, paths map[string]string) {
	read := func(controller, name string) string {
		p, ok := paths[controller]
		if !ok {
			return ""
		}
		b, _ := os.ReadFile(filepath.Join(cgroupRoot, controller, p, name))
		return string(b)
	}
	s.CPU.Total = container.ParseUintOrMax(read("cpuacct", "cpuacct.usage"))
	acct := container.ParseKV(read("cpuacct", "cpuacct.stat"))
	s.CPU.User, s.CPU.Kernel = acct["user"]*uint64(time.Second)/100, acct["system"]*uint64(time.Second)/100 // USER_HZ
	for _, f := range strings.Fields(read("cpuacct", "cpuacct.usage_percpu")) {
		n, _ := strconv.ParseUint(f, 10, 64)
		s.CPU.PerCPU = append(s.CPU.PerCPU, n)
	}
	throttle := container.ParseKV(read("cpu", "cpu.stat"))
	s.CPU.Periods, s.CPU.Throttled, s.CPU.ThrottledTime = throttle["nr_periods"], throttle["nr_throttled"], throttle["throttled_time"]
	s.Memory.Usage = container.ParseUintOrMax(read("memory", "memory.usage_in_bytes"))
	s.Memory.MaxUsage = container.ParseUintOrMax(read("memory", "memory.max_usage_in_bytes"))
	s.Memory.Failcnt = container.ParseUintOrMax(read("memory", "memory.failcnt"))
	if limit := container.ParseUintOrMax(read("memory", "memory.limit_in_bytes")); limit < HostMemory() {
		s.Memory.Limit = limit // v1's "no limit" is a page-rounded 2^63
	}
	s.Memory.Stats = container.ParseKV(read("memory", "memory.stat"))
	s.IOBytes = container.ParseBlkioV1(read("blkio", "blkio.throttle.io_service_bytes_recursive"))
	s.IOOps = container.ParseBlkioV1(read("blkio", "blkio.throttle.io_serviced_recursive"))
	s.Pids = container.PidsStats{Current: container.ParseUintOrMax(read("pids", "pids.current")), Limit: container.ParseUintOrMax(read("pids", "pids.max"))}
}

// HostMemory is the machine's memory in bytes (sysinfo's totalram), 0
// if unknown: docker info's MemTotal, and docker stats's limit of a
// container without one.
func HostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// UpperSize is the size of what container id wrote to its root file
// system (its overlay upper directory), as moby's directory.Size counts
// it: the sizes of everything but directories, a file with several links
// once; 0 for a container that never started.
func (r *Runtime) UpperSize(id string) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	var size int64
	seen := map[uint64]bool{}
	// Through descriptors, never following what the container swaps in
	// meanwhile (walkTree); a container never started has no upper directory.
	err := walkTree(r.upperDir(id), func(e walkEntry) error {
		if e.dir >= 0 {
			return nil
		}
		if e.st.Nlink > 1 {
			if seen[e.st.Ino] {
				return nil
			}
			seen[e.st.Ino] = true
		}
		size += e.st.Size
		return nil
	})
	return size, err
}
