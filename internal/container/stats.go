package container

import (
	"bufio"
	"strconv"
	"strings"
	"time"
)

// Stats is one sample of a running container's resource use, what docker
// stats shows: read from its cgroup and, for the network, from its
// network namespace (see runtime.Stats).
type Stats struct {
	Read     time.Time
	CPU      CPUStats
	Memory   MemoryStats
	IOBytes  []BlkioEntry // bytes read and written, per device
	IOOps    []BlkioEntry // requests, per device
	Pids     PidsStats
	Networks map[string]NetStats // by interface name, lo left out
}

// CPUStats are nanoseconds: the container's total, in the kernel and in
// user mode, per CPU (cgroup v1 only); the host's total (System, what
// docker stats divides by) and how many CPUs it has online; and the CFS
// quota's throttling.
type CPUStats struct {
	Total, Kernel, User uint64
	PerCPU              []uint64
	System              uint64
	Online              uint32
	Periods, Throttled  uint64
	ThrottledTime       uint64
}

// MemoryStats are bytes; Stats is the cgroup's memory.stat as it is
// (docker stats subtracts inactive_file, or v1's total_inactive_file).
type MemoryStats struct {
	Usage, MaxUsage, Failcnt, Limit uint64
	Stats                           map[string]uint64
}

// BlkioEntry is one device's count of one operation.
type BlkioEntry struct {
	Major, Minor uint64
	Op           string
	Value        uint64
}

// PidsStats are the cgroup's process count and limit (0: none).
type PidsStats struct{ Current, Limit uint64 }

// NetStats are an interface's counters, as /proc/net/dev has them.
type NetStats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// userHZ is the unit of /proc/stat and cpuacct.stat: the kernel's
// USER_HZ, 100 on every Linux architecture Docker runs on.
const userHZ = 100

// ParseKV reads "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
func ParseKV(text string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// ParseUintOrMax reads a cgroup value file: a number, or "max" (no
// limit), which reads as 0.
func ParseUintOrMax(text string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(text), 10, 64)
	return n
}

// ParseProcStat reads /proc/stat as moby's getSystemCPUUsage: the host's
// CPU time in nanoseconds (the first line's user, nice, system, idle,
// iowait, irq and softirq) and the number of CPUs it lists.
func ParseProcStat(text string) (systemNS uint64, online uint32) {
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		if fields[0] != "cpu" {
			online++
			continue
		}
		var ticks uint64
		for _, f := range fields[1:min(len(fields), 8)] {
			n, _ := strconv.ParseUint(f, 10, 64)
			ticks += n
		}
		systemNS = ticks * uint64(time.Second) / userHZ
	}
	return systemNS, online
}

// ParseNetDev reads /proc/net/dev: every interface but lo.
func ParseNetDev(text string) map[string]NetStats {
	out := map[string]NetStats{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = NetStats{RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]}
	}
	return out
}

// ParseBlkioV1 reads a cgroup v1 blkio file ("8:0 Read 1234" lines; the
// "Total" line left out).
func ParseBlkioV1(text string) []BlkioEntry {
	var out []BlkioEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		major, minor, ok := parseDevice(f[0])
		v, err := strconv.ParseUint(f[2], 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, BlkioEntry{Major: major, Minor: minor, Op: f[1], Value: v})
	}
	return out
}

// ParseIOStatV2 reads cgroup v2's io.stat ("8:0 rbytes=1 wbytes=2 rios=3
// wios=4 ..."): bytes and requests, as "read" and "write" entries per
// device, as moby reports them on cgroup v2.
func ParseIOStatV2(text string) (bytes, ops []BlkioEntry) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		major, minor, ok := parseDevice(f[0])
		if !ok {
			continue
		}
		kv := map[string]uint64{}
		for _, p := range f[1:] {
			k, v, _ := strings.Cut(p, "=")
			kv[k], _ = strconv.ParseUint(v, 10, 64)
		}
		entry := func(op string, v uint64) BlkioEntry { return BlkioEntry{Major: major, Minor: minor, Op: op, Value: v} }
		bytes = append(bytes, entry("read", kv["rbytes"]), entry("write", kv["wbytes"]))
		ops = append(ops, entry("read", kv["rios"]), entry("write", kv["wios"]))
	}
	return bytes, ops
}

func parseDevice(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.ParseUint(a, 10, 64)
	minor, err2 := strconv.ParseUint(b, 10, 64)
	return major, minor, err1 == nil && err2 == nil
}

// ParseProcCgroup reads /proc/PID/cgroup: the cgroup v2 path (the "0::"
// line) and the v1 path of each controller.
func ParseProcCgroup(text string) (v2 string, v1 map[string]string) {
	v1 = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1[strings.TrimPrefix(c, "name=")] = parts[2]
		}
	}
	return v2, v1
}
