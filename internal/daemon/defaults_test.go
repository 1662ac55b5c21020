package daemon

import (
	"reflect"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/container"
)

// TestContainerDefaultsFromFile: the CIS Docker Benchmark's daemon.json
// (its keys berth has) starts berth, with dockerd's types for each key:
// default-ulimits as a map of go-units Ulimits, the rest as dockerd's.
func TestContainerDefaultsFromFile(t *testing.T) {
	cfg, err := parseDaemonArgs(t, `{
		"icc": false, "live-restore": true, "userland-proxy": false, "no-new-privileges": true,
		"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
		"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 32000}, "nproc": {"Hard": 2048, "Soft": 1024}},
		"default-shm-size": "128M", "init": true, "default-ipc-mode": "shareable", "default-cgroupns-mode": "host",
		"cgroup-parent": "/team"}`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CgroupParent != "/team" {
		t.Errorf("cgroup-parent: %q", cfg.CgroupParent)
	}
	def, err := cfg.containerDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := containerDefaults{
		ulimits:         []container.Ulimit{{Name: "nofile", Soft: 32000, Hard: 64000}, {Name: "nproc", Soft: 1024, Hard: 2048}},
		shmSize:         128 << 20,
		init:            true,
		noNewPrivileges: true,
		ipcMode:         "shareable",
		cgroupnsMode:    "host",
		stopTimeout:     10,
	}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("defaults %+v, want %+v", def, want)
	}

	for name, tc := range map[string]struct{ body, want string }{
		"an IPC mode that cannot be a default": {`{"default-ipc-mode": "host"}`, `IPC mode "host" is not supported as default value; use "shareable" or "private"`},
		"an unknown IPC mode":                  {`{"default-ipc-mode": "shared"}`, `default IPC mode setting (shared) is invalid; use "shareable" or "private"`},
		"an unknown cgroupns mode":             {`{"default-cgroupns-mode": "mine"}`, `invalid default cgroup namespace (mine): use "host" or "private"`},
		"a size that is none":                  {`{"default-shm-size": "lots"}`, `--default-shm-size: invalid size: 'lots'`},
		"an rlimit berth cannot set":           {`{"default-ulimits": {"nofiles": {"Hard": 1, "Soft": 1}}}`, `configuration file`},
		"a soft limit over the hard one":       {`{"default-ulimits": {"nofile": {"Hard": 1, "Soft": 2}}}`, `"default-ulimits": invalid argument "nofile=2:1" for "--default-ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1`},
		"a limit's unknown field":              {`{"default-ulimits": {"nofile": {"Max": 1}}}`, `configuration file`},
		"a relative cgroup parent":             {`{"cgroup-parent": "mine"}`, `--cgroup-parent "mine": berth takes an absolute cgroup path, such as /mygroup`},
		"a cgroup parent up the tree":          {`{"cgroup-parent": "/a/../b"}`, `--cgroup-parent "/a/../b": ".." is not a cgroup's name`},
	} {
		cfg, err := parseDaemonArgs(t, tc.body)
		if err == nil {
			_, err = cfg.containerDefaults()
		}
		if err == nil || !containsStr(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }

// TestAdaptCreateDefaults: each default applies only where the create
// says nothing, and --security-opt no-new-privileges in any form decides
// for itself.
func TestAdaptCreateDefaults(t *testing.T) {
	def := containerDefaults{shmSize: 1 << 20, noNewPrivileges: true, ipcMode: "shareable", cgroupnsMode: "host",
		ulimits: []container.Ulimit{{Name: "nofile", Soft: 1, Hard: 2}, {Name: "core", Soft: 0, Hard: 0}}, init: true}
	var cfg container.Config
	def.adaptCreate(&cfg, true)
	if cfg.Resources.ShmSize != 1<<20 || cfg.Namespaces.IpcMode != "shareable" || cfg.Namespaces.CgroupnsMode != "host" || !cfg.Security.NoNewPrivileges {
		t.Errorf("nothing given: %+v %+v %+v", cfg.Resources, cfg.Namespaces, cfg.Security)
	}
	for _, opt := range []string{"no-new-privileges=false", "no-new-privileges:false"} {
		own := container.Config{Resources: container.Resources{ShmSize: 5}, Namespaces: container.Namespaces{IpcMode: "private", CgroupnsMode: "private"},
			Security: container.Security{Opts: []string{opt}}}
		def.adaptCreate(&own, true)
		if own.Resources.ShmSize != 5 || own.Namespaces.IpcMode != "private" || own.Namespaces.CgroupnsMode != "private" || own.Security.NoNewPrivileges {
			t.Errorf("%s: the create's own were changed: %+v %+v %+v", opt, own.Resources, own.Namespaces, own.Security)
		}
	}
	// cgroup v1: a privileged container keeps the host's cgroup
	// namespace whatever the default (moby's adaptContainerSettings).
	priv := container.Config{Security: container.Security{Privileged: true}}
	(containerDefaults{cgroupnsMode: "private"}).adaptCreate(&priv, false)
	if priv.Namespaces.CgroupnsMode != "" {
		t.Errorf("privileged on cgroup v1: cgroupns %q, want it left to the host default", priv.Namespaces.CgroupnsMode)
	}
	for _, tc := range []struct {
		mode string
		v2   bool
		want bool
	}{{"", true, true}, {"", false, false}, {"host", true, false}, {"private", false, true}} {
		if got := (containerDefaults{cgroupnsMode: tc.mode}).cgroupnsPrivate(tc.v2); got != tc.want {
			t.Errorf("cgroupnsPrivate(%q, v2 %v) = %v, want %v", tc.mode, tc.v2, got, tc.want)
		}
	}
	got := def.withUlimits([]container.Ulimit{{Name: "NOFILE", Soft: 5, Hard: 6}})
	if want := []container.Ulimit{{Name: "NOFILE", Soft: 5, Hard: 6}, {Name: "core", Soft: 0, Hard: 0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("withUlimits = %v, want %v", got, want)
	}
	off, on := false, true
	if !def.initFor(nil) || def.initFor(&off) || !def.initFor(&on) || (containerDefaults{}).initFor(nil) {
		t.Error("initFor: the container's own --init must win, the daemon's fill in")
	}
}
