package daemon

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/container"
	"github.com/docker/go-units"
)

// containerDefaults are dockerd's options that say what a container gets
// where its create says nothing, applied where moby applies them: the
// /dev/shm size, IPC and cgroup namespace modes at create
// (adaptContainerSettings: inspect shows them), no-new-privileges at
// create unless --security-opt names it (parseSecurityOpt), the rlimits
// at each start and in inspect (mergeUlimits: the container's own
// first), and the init at each start for a container that left --init
// unset, and the wait of a stop that gives no timeout. They are the CIS Docker Benchmark's daemon.json keys among
// others, so a hardened daemon.json starts berth as it starts dockerd.
type containerDefaults struct {
	ulimits         []container.Ulimit
	shmSize         int64 // 0: Docker's 64 MiB
	init            bool
	noNewPrivileges bool
	ipcMode         string // "": private
	cgroupnsMode    string // "": private on cgroup v2, host on v1
	stopTimeout     int    // seconds a stop waits without --stop-timeout
}

// containerDefaults checks the options in dockerd's words.
func (cfg *Config) containerDefaults() (containerDefaults, error) {
	def := containerDefaults{init: cfg.Init, noNewPrivileges: cfg.NoNewPrivileges, stopTimeout: cfg.DefaultStopTimeout}
	if cfg.DefaultStopTimeout < 0 {
		return def, fmt.Errorf("invalid default stop timeout: %d", cfg.DefaultStopTimeout) // moby's Validate
	}
	if err := container.CheckUlimits(cfg.DefaultUlimits); err != nil {
		return def, fmt.Errorf("--default-ulimit: %w", err)
	}
	def.ulimits = slices.Clone(cfg.DefaultUlimits)
	if err := container.CheckCgroupParent(cfg.CgroupParent); err != nil {
		return def, err
	}
	if cfg.DefaultShmSize != "" {
		n, err := units.RAMInBytes(cfg.DefaultShmSize)
		if err != nil {
			return def, fmt.Errorf("--default-shm-size: %w", err)
		}
		if n <= 0 {
			return def, fmt.Errorf("--default-shm-size: %s: the size must be positive", cfg.DefaultShmSize)
		}
		def.shmSize = n
	}
	switch m := cfg.DefaultIpcMode; m {
	case "", container.ModePrivate, container.ModeShareable:
		def.ipcMode = m
	case container.ModeHost, container.ModeNone:
		return def, fmt.Errorf(`IPC mode "%s" is not supported as default value; use "shareable" or "private"`, m)
	default:
		return def, fmt.Errorf(`default IPC mode setting (%s) is invalid; use "shareable" or "private"`, m)
	}
	switch m := cfg.DefaultCgroupnsMode; m {
	case "", container.ModePrivate, container.ModeHost:
		def.cgroupnsMode = m
	default:
		return def, fmt.Errorf(`invalid default cgroup namespace (%s): use "host" or "private"`, m)
	}
	return def, nil
}

// adaptCreate applies the create-time defaults to cfg; on cgroup v1 a
// privileged container keeps the host's cgroup namespace whatever the
// default, as moby's adaptContainerSettings has it.
func (def containerDefaults) adaptCreate(cfg *container.Config, cgroupV2 bool) {
	if cfg.Resources.ShmSize == 0 {
		cfg.Resources.ShmSize = def.shmSize
	}
	if cfg.Namespaces.IpcMode == "" {
		cfg.Namespaces.IpcMode = def.ipcMode
	}
	if cfg.Namespaces.CgroupnsMode == "" && (cgroupV2 || !cfg.Security.Privileged) {
		cfg.Namespaces.CgroupnsMode = def.cgroupnsMode
	}
	if def.noNewPrivileges && !namesNoNewPrivileges(cfg.Security.Opts) {
		cfg.Security.NoNewPrivileges = true
	}
}

// namesNoNewPrivileges says whether --security-opt decides
// no-new-privileges itself (no-new-privileges, =true or =false).
func namesNoNewPrivileges(opts []string) bool {
	for _, o := range opts {
		if o == "no-new-privileges" || strings.HasPrefix(o, "no-new-privileges=") || strings.HasPrefix(o, "no-new-privileges:") {
			return true
		}
	}
	return false
}

// withUlimits is the container's rlimits followed by each default it
// does not set itself.
func (def containerDefaults) withUlimits(own []container.Ulimit) []container.Ulimit {
	out := slices.Clone(own)
	for _, d := range def.ulimits {
		if !slices.ContainsFunc(own, func(u container.Ulimit) bool { return strings.EqualFold(u.Name, d.Name) }) {
			out = append(out, d)
		}
	}
	return out
}

// cgroupnsPrivate says whether containers get a cgroup namespace of
// their own unless --cgroupns says otherwise: the default's mode, else
// private on cgroup v2 and host on v1 (docker info's name=cgroupns).
func (def containerDefaults) cgroupnsPrivate(cgroupV2 bool) bool {
	if def.cgroupnsMode == "" {
		return cgroupV2
	}
	return def.cgroupnsMode == container.ModePrivate
}

// initFor says whether a container runs under an init: its --init, or
// the daemon's where it left it unset.
func (def containerDefaults) initFor(own *bool) bool {
	if own != nil {
		return *own
	}
	return def.init
}

// labelsValue is the daemon's --label KEY=VALUE, checked as dockerd's
// ValidateLabel checks it.
type labelsValue struct{ labels *[]string }

func (v *labelsValue) Type() string   { return "stringArray" } // a list in daemon.json, as --dns
func (v *labelsValue) String() string { return strings.Join(*v.labels, ",") }

func (v *labelsValue) Set(value string) error {
	if !strings.Contains(value, "=") {
		return fmt.Errorf("bad attribute format: %s", value)
	}
	*v.labels = append(*v.labels, value)
	return nil
}

// ulimitsValue is --default-ulimit NAME=SOFT[:HARD], as dockerd's
// NamedUlimitOpt reads it (go-units' ParseUlimit); a name given again
// replaces the earlier one.
type ulimitsValue struct{ uls *[]container.Ulimit }

func (v *ulimitsValue) Type() string { return "ulimit" }

func (v *ulimitsValue) String() string {
	var s []string
	for _, u := range *v.uls {
		s = append(s, u.Name+"="+strconv.FormatInt(u.Soft, 10)+":"+strconv.FormatInt(u.Hard, 10))
	}
	return strings.Join(s, " ")
}

func (v *ulimitsValue) Set(value string) error {
	u, err := units.ParseUlimit(value)
	if err != nil {
		return err
	}
	ul := container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard}
	*v.uls = slices.DeleteFunc(*v.uls, func(o container.Ulimit) bool { return o.Name == ul.Name })
	*v.uls = append(*v.uls, ul)
	return nil
}
