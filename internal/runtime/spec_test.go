package runtime

import (
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-net/berth/internal/container"
)

func ptr[T any](v T) *T { return &v }

// testHost is a fixed host for specs: a privileged container gets all its
// capabilities and its two devices.
var testHost = hostFacts{
	nofile: 20000, arch: "amd64", kernel: "6.1.0-test",
	caps: container.CapabilitiesIn(1<<41 - 1), // every capability
	devices: func() ([]specs.LinuxDevice, error) {
		mode, zero := os.FileMode(0o666), uint32(0)
		return []specs.LinuxDevice{
			{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &zero, GID: &zero},
			{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0, FileMode: &mode, UID: &zero, GID: &zero},
		}, nil
	},
	device: func(host, ctr string) ([]specs.LinuxDevice, error) {
		mode, zero := os.FileMode(0o660), uint32(0)
		major := map[string]int64{"/dev/fuse": 10, "/dev/loop0": 7}[host]
		return []specs.LinuxDevice{{Path: ctr, Type: "c", Major: major, Minor: 1, FileMode: &mode, UID: &zero, GID: &zero}}, nil
	},
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", p, diff)
	}
}

func TestOCISpecGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		spec Spec
		user user
	}{
		{"config-netns.golden.json", Spec{
			ID: "c1", Args: []string{"sh", "-c", "echo hi"}, Env: []string{"A=1", "PATH=/bin"},
			Hostname: "c1host", NetNSPath: "/run/berth/netns/abc",
			Files: map[string]string{"/etc/resolv.conf": "/data/c1/resolv.conf", "/etc/hosts": "/data/c1/hosts"},
		}, user{Home: "/root", AdditionalGids: []uint32{0}}},
		{"config-host-tty-user.golden.json", Spec{
			ID: "c2", Args: []string{"top"}, Cwd: "/srv", Tty: true, Hostname: "c2host", Init: "/usr/bin/tini-static",
		}, user{UID: 33, GID: 33, AdditionalGids: []uint32{33, 100}, Home: "/var/www"}},
		// --read-only, --sysctl (one over berth's default), --cap-drop ALL --cap-add NET_ADMIN, --domainname.
		{"config-readonly-sysctl-caps.golden.json", Spec{
			ID: "c3", Args: []string{"sh"}, Hostname: "c3host", Domainname: "example.org", NetNSPath: "/run/berth/netns/def",
			Files:    map[string]string{"/etc/hosts": "/data/c3/hosts"},
			ReadOnly: true, CapAdd: []string{"CAP_NET_ADMIN"}, CapDrop: []string{"ALL"},
			Sysctls: map[string]string{"net.ipv4.tcp_keepalive_time": "100", "net.ipv4.ip_unprivileged_port_start": "1024"},
		}, user{Home: "/root"}},
		// -m 64m --memory-swap 128m --memory-reservation 32m --memory-swappiness 10 --cpus 1.5
		// --cpu-shares 512 --cpuset-cpus 0 --pids-limit 100 --ulimit nofile=100:200 --ulimit nproc=50
		// --shm-size 1g --oom-score-adj 500.
		{"config-resources.golden.json", Spec{
			ID: "c4", Args: []string{"sh"}, Hostname: "c4host", NetNSPath: "/run/berth/netns/ghi",
			Resources: container.Resources{
				Memory: 64 << 20, MemorySwap: 128 << 20, MemoryReservation: 32 << 20, MemorySwappiness: ptr[int64](10),
				NanoCPUs: 1.5e9, CPUShares: 512, CpusetCpus: "0", PidsLimit: ptr[int64](100),
				Ulimits: []container.Ulimit{{Name: "nproc", Soft: 50, Hard: 50}, {Name: "nofile", Soft: 100, Hard: 200}},
				ShmSize: 1 << 30, OomScoreAdj: 500,
			},
		}, user{Home: "/root"}},
		// --privileged --security-opt no-new-privileges.
		{"config-privileged.golden.json", Spec{
			ID: "c5", Args: []string{"sh"}, Hostname: "c5host", NetNSPath: "/run/berth/netns/jkl", CapDrop: []string{"CAP_CHOWN"},
			Security: container.Security{Privileged: true, NoNewPrivileges: true, Seccomp: ""},
		}, user{Home: "/root"}},
		// --device /dev/fuse --device /dev/loop0:/dev/xvda:r --device-cgroup-rule 'c 1:* rw'.
		{"config-devices.golden.json", Spec{
			ID: "c7", Args: []string{"sh"}, Hostname: "c7host", NetNSPath: "/run/berth/netns/pqr",
			Devices: []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/loop0", PathInContainer: "/dev/xvda", CgroupPermissions: "r"}},
			DeviceCgroupRules: []string{"c 1:* rw"},
		}, user{Home: "/root"}},
		// --security-opt seccomp=unconfined --security-opt systempaths=unconfined --security-opt writable-cgroups=true.
		{"config-unconfined.golden.json", Spec{
			ID: "c6", Args: []string{"sh"}, Hostname: "c6host", NetNSPath: "/run/berth/netns/mno",
			Security: container.Security{Seccomp: container.SeccompUnconfined, MaskedPaths: &[]string{}, ReadonlyPaths: &[]string{}, WritableCgroups: true},
		}, user{Home: "/root"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			spec, err := ociSpec(tc.spec, tc.user, testHost)
			if err != nil {
				t.Fatal(err)
			}
			// The seccomp filter has tests of its own (seccomp_test.go).
			if tc.spec.Security.Privileged || tc.spec.Security.Seccomp != "" {
				if spec.Linux.Seccomp != nil {
					t.Errorf("a privileged or unconfined container has a seccomp filter")
				}
			} else if spec.Linux.Seccomp == nil || spec.Linux.Seccomp.DefaultAction != specs.ActErrno {
				t.Errorf("no default seccomp filter: %+v", spec.Linux.Seccomp)
			}
			spec.Linux.Seccomp = nil
			b, err := json.MarshalIndent(spec, "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, append(b, '\n'))
		})
	}
}

func TestAddEnvDefault(t *testing.T) {
	got := addEnvDefault([]string{"PATH=/x"}, defaultPath)
	if diff := cmp.Diff([]string{"PATH=/x"}, got); diff != "" {
		t.Errorf("an existing PATH was replaced (-want +got):\n%s", diff)
	}
}

// A container that joins another's network namespace (--network
// container:X) leaves that namespace's sysctls alone, as moby's
// NetworkMode.IsPrivate: Docker's two defaults go into a namespace of the
// container's own only (they reset the owner's --sysctl at each start).
func TestJoinedNetnsKeepsItsOwnersSysctls(t *testing.T) {
	own, err := ociSpec(Spec{ID: "c8", Args: []string{"sh"}, NetNSPath: "/run/berth/netns/own"}, user{Home: "/root"}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if own.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" || own.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Errorf("own namespace: sysctls %v, want Docker's two", own.Linux.Sysctl)
	}
	joined, err := ociSpec(Spec{ID: "c9", Args: []string{"sh"}, NetNSPath: "/proc/123/ns/net", NetNSJoined: true}, user{Home: "/root"}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"net.ipv4.ip_unprivileged_port_start", "net.ipv4.ping_group_range"} {
		if v, ok := joined.Linux.Sysctl[k]; ok {
			t.Errorf("joined namespace: %s=%s set", k, v)
		}
	}
}

// TestAnnotationsInSpec: --annotation's keys and values go into the OCI
// spec as they are (moby's WithAnnotations), a copy of the container's.
func TestAnnotationsInSpec(t *testing.T) {
	ann := map[string]string{"com.example.team": "net", "org.opencontainers.image.title": "web"}
	spec, err := ociSpec(Spec{ID: "c10", Args: []string{"sh"}, Annotations: ann}, user{Home: "/root"}, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(spec.Annotations, ann) {
		t.Errorf("annotations %v, want %v", spec.Annotations, ann)
	}
	spec.Annotations["x"] = "y"
	if _, ok := ann["x"]; ok {
		t.Error("the spec shares the container's map")
	}
	if spec, _ := ociSpec(Spec{ID: "c11", Args: []string{"sh"}}, user{Home: "/root"}, testHost); spec.Annotations != nil {
		t.Errorf("annotations without --annotation: %v", spec.Annotations)
	}
}

// TestCgroupPaths: a container's cgroup is under its parent (berth's
// /berth by default), and the runtime finds it again from the bundle it
// was started with; a bundle that is gone or names another container's
// cgroup gives the default.
func TestCgroupPaths(t *testing.T) {
	id := strings.Repeat("cd", 32)
	spec, err := ociSpec(Spec{ID: id, Args: []string{"sh"}, CgroupParent: "/team/web"}, user{Home: "/root"}, testHost)
	if err != nil || spec.Linux.CgroupsPath != "/team/web/"+id {
		t.Fatalf("cgroupsPath %q, %v", spec.Linux.CgroupsPath, err)
	}
	if spec, _ := ociSpec(Spec{ID: id, Args: []string{"sh"}}, user{Home: "/root"}, testHost); spec.Linux.CgroupsPath != "/berth/"+id {
		t.Errorf("default cgroupsPath %q", spec.Linux.CgroupsPath)
	}
	r := &Runtime{cfg: Config{BundleDir: t.TempDir(), DataDir: t.TempDir()}}
	if got := r.CgroupPath(id); got != "/berth/"+id {
		t.Errorf("without a bundle: %q", got)
	}
	// The bundle gone (released while the cgroup was busy): what the
	// start recorded beside the upper directory.
	os.MkdirAll(r.dataDir(id), 0o700)
	if err := os.WriteFile(filepath.Join(r.dataDir(id), cgroupFile), []byte("/team/old/"+id), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := r.CgroupPath(id); got != "/team/old/"+id {
		t.Errorf("from the start's record: %q", got)
	}
	write := func(cg string) {
		t.Helper()
		os.MkdirAll(r.bundle(id), 0o700)
		b, _ := json.Marshal(map[string]any{"linux": map[string]any{"cgroupsPath": cg}})
		if err := os.WriteFile(filepath.Join(r.bundle(id), "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("/team/web/" + id)
	if got := r.CgroupPath(id); got != "/team/web/"+id {
		t.Errorf("from the bundle: %q", got)
	}
	write("/team/web/other")
	if got := r.CgroupPath(id); got != "/team/old/"+id {
		t.Errorf("a bundle naming another cgroup: %q, want the start's record", got)
	}
}
