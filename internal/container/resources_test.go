package container

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func p64(v int64) *int64 { return &v }

// v1Host is this project's VMs: cgroup v1 with every controller but a
// blkio weight, two CPUs, one memory node.
var v1Host = HostLimits{Memory: true, Swap: true, Reservation: true, Swappiness: true, OomKillDisable: true,
	CPUCfs: true, CPUShares: true, Cpuset: true, Pids: true, Cpus: "0-1", Mems: "0", NCPU: 2}

// TestCheckResourcesRefuses: moby's messages for what Docker refuses,
// and berth's for what runc would refuse only at start.
func TestCheckResourcesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Resources
		want string
	}{
		{"memory under 6MB", Resources{Memory: 4 << 20}, "Minimum memory limit allowed is 6MB"},
		{"swap under memory", Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{"swap without memory", Resources{MemorySwap: 64 << 20}, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{"swappiness", Resources{MemorySwappiness: p64(101)}, "Invalid value: 101, valid memory swappiness range is 0-100"},
		{"reservation under 6MB", Resources{MemoryReservation: 1 << 20}, "Minimum memory reservation allowed is 6MB"},
		{"reservation over memory", Resources{Memory: 64 << 20, MemoryReservation: 128 << 20}, "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{"cpus and period", Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{"cpus and quota", Resources{NanoCPUs: 1e9, CPUQuota: 100000}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{"cpus over the host's", Resources{NanoCPUs: 3e9}, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{"negative shares", Resources{CPUShares: -1}, "invalid CPU shares (-1): value must be a positive integer"},
		{"period", Resources{CPUPeriod: 999}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{"quota", Resources{CPUQuota: 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{"cpuset format", Resources{CpusetCpus: "0-a"}, "Invalid value 0-a for cpuset cpus: invalid format: 0-a"},
		{"cpuset not there", Resources{CpusetCpus: "0,3"}, "Requested CPUs are not available - requested 0,3, available: 0-1"},
		{"mems not there", Resources{CpusetMems: "1"}, "Requested memory nodes are not available - requested 1, available: 0"},
		{"shm", Resources{ShmSize: -1}, "SHM size can not be less than 0"},
		{"oom score", Resources{OomScoreAdj: 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
		{"ulimit name", Resources{Ulimits: []Ulimit{{Name: "nofiles", Soft: 1, Hard: 1}}}, "invalid ulimit type: nofiles"},
		{"ulimit soft over hard", Resources{Ulimits: []Ulimit{{Name: "nofile", Soft: 20, Hard: 10}}}, "ulimit soft limit must be less than or equal to hard limit: 20 > 10"},
		{"ulimit below -1", Resources{Ulimits: []Ulimit{{Name: "nofile", Soft: -5, Hard: 10}}}, "invalid ulimit nofile: a limit is -1 (unlimited) or not below 0: soft -5, hard 10"},
		{"ulimit twice", Resources{Ulimits: []Ulimit{{Name: "nofile", Soft: 1, Hard: 1}, {Name: "NOFILE", Soft: 2, Hard: 2}}}, "invalid ulimit: NOFILE is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			_, err := CheckResources(&r, v1Host, false)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckResourcesDropsWhatTheHostCannot: each limit a host lacks is
// dropped with moby's warning; the rest passes as given.
func TestCheckResourcesDropsWhatTheHostCannot(t *testing.T) {
	r := Resources{Memory: 64 << 20, MemorySwappiness: p64(10), OomKillDisable: true, CPUShares: 512,
		PidsLimit: p64(10), BlkioWeight: 300, CpusetCpus: "0"}
	v2 := HostLimits{CgroupV2: true, Memory: true, Reservation: true, CPUCfs: true, CPUShares: true, Pids: true, NCPU: 2}
	warnings, err := CheckResources(&r, v2, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
		"Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
		"Your kernel does not support OomKillDisable. OomKillDisable discarded.",
		"Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
		"Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	kept := Resources{Memory: 64 << 20, MemorySwap: -1, CPUShares: 512, PidsLimit: p64(10)}
	if diff := cmp.Diff(kept, r); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}

	r = Resources{OomKillDisable: true}
	warnings, _ = CheckResources(&r, v1Host, false)
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "OOM killer is disabled for the container, but no memory limit is set") {
		t.Errorf("--oom-kill-disable without -m: warnings %q", warnings)
	}
}

// TestCheckResourcesTakesUlimitsInAnyCase: moby builds RLIMIT_ + the
// name in upper case, so NOFILE is nofile.
func TestCheckResourcesTakesUlimitsInAnyCase(t *testing.T) {
	r := Resources{Ulimits: []Ulimit{{Name: "NOFILE", Soft: 10, Hard: 10}}}
	if _, err := CheckResources(&r, v1Host, false); err != nil {
		t.Fatal(err)
	}
	if got := r.Ulimits[0].RlimitType(); got != "RLIMIT_NOFILE" {
		t.Errorf("RlimitType = %q", got)
	}
}

func TestAdaptResourcesDoublesSwap(t *testing.T) {
	r := Resources{Memory: 64 << 20}
	AdaptResources(&r)
	if r.MemorySwap != 128<<20 {
		t.Errorf("MemorySwap = %d, want twice the memory", r.MemorySwap)
	}
	r = Resources{Memory: 1 << 62}
	AdaptResources(&r)
	if r.MemorySwap != -1 {
		t.Errorf("MemorySwap = %d for a memory limit whose double is past int64, want -1", r.MemorySwap)
	}
	r = Resources{Memory: 64 << 20, MemorySwap: -1}
	AdaptResources(&r)
	if r.MemorySwap != -1 {
		t.Errorf("MemorySwap = %d, want -1 kept", r.MemorySwap)
	}
}

func TestResourcesUpdate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		have, upd Resources
		want      Resources
		conflict  string
	}{
		{"memory to a container without one", Resources{}, Resources{Memory: 64 << 20},
			Resources{Memory: 64 << 20, MemorySwap: 128 << 20}, ""},
		{"memory on a host without swap limits", Resources{}, Resources{Memory: 64 << 20},
			Resources{Memory: 64 << 20, MemorySwap: -1}, ""},
		{"swap without memory", Resources{}, Resources{MemorySwap: 64 << 20},
			Resources{}, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{"memory within the swap limit", Resources{Memory: 64 << 20, MemorySwap: 128 << 20}, Resources{Memory: 96 << 20},
			Resources{Memory: 96 << 20, MemorySwap: 128 << 20}, ""},
		{"memory over the swap limit", Resources{Memory: 64 << 20, MemorySwap: 128 << 20}, Resources{Memory: 256 << 20},
			Resources{}, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"},
		{"memory and swap", Resources{Memory: 64 << 20, MemorySwap: 128 << 20}, Resources{Memory: 256 << 20, MemorySwap: 512 << 20},
			Resources{Memory: 256 << 20, MemorySwap: 512 << 20}, ""},
		{"unlimited swap stays", Resources{Memory: 64 << 20, MemorySwap: -1}, Resources{Memory: 256 << 20},
			Resources{Memory: 256 << 20, MemorySwap: -1}, ""},
		{"reservation over the memory limit (the kernel takes it, as moby)", Resources{Memory: 48 << 20, MemorySwap: 96 << 20}, Resources{MemoryReservation: 100 << 20},
			Resources{Memory: 48 << 20, MemorySwap: 96 << 20, MemoryReservation: 100 << 20}, ""},
		{"cpus over a quota", Resources{CPUQuota: 50000}, Resources{NanoCPUs: 1e9},
			Resources{}, "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"},
		{"quota over cpus", Resources{NanoCPUs: 1e9}, Resources{CPUQuota: 50000},
			Resources{}, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"},
		{"pids unlimited", Resources{PidsLimit: p64(10)}, Resources{PidsLimit: p64(-1)},
			Resources{PidsLimit: p64(0)}, ""},
		{"what is not given stays", Resources{CPUShares: 512, PidsLimit: p64(10), OomScoreAdj: 5}, Resources{CpusetCpus: "1"},
			Resources{CPUShares: 512, PidsLimit: p64(10), OomScoreAdj: 5, CpusetCpus: "1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.have
			err := r.Update(tc.upd, tc.name != "memory on a host without swap limits")
			if tc.conflict != "" {
				var ce ConflictError
				if (!errors.As(err, &ce) && tc.name != "swap without memory") || err == nil || !strings.HasSuffix(err.Error(), tc.conflict) {
					t.Fatalf("got %v, want conflict %q", err, tc.conflict)
				}
				if diff := cmp.Diff(tc.have, r); diff != "" {
					t.Errorf("a refused update changed the limits (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, r); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCpuList(t *testing.T) {
	got, err := ParseCpuList("0,3-4,7")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]bool{0: true, 3: true, 4: true, 7: true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"a", "2-1", "1-", "-1", "9000"} {
		if _, err := ParseCpuList(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestCheckCgroupParent: absolute cgroup paths only, of names a cgroup
// can have.
func TestCheckCgroupParent(t *testing.T) {
	for p, ok := range map[string]bool{"": true, "/mygroup": true, "/a/b.slice/c": true, "/": true,
		"mygroup": false, "a/b": false, "/a/../b": false, "/a/./b": false, "/a\nb": false} {
		if err := CheckCgroupParent(p); (err == nil) != ok {
			t.Errorf("CheckCgroupParent(%q) = %v, want ok %v", p, err, ok)
		}
	}
}
