package api

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/berth-net/berth/internal/version"
)

// ping answers HEAD and GET /_ping with the headers the docker client reads
// to negotiate (Api-Version) and to learn the OS and swarm state.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write([]byte("OK"))
}

// versionBackend is a Backend that describes itself for /version apart
// from /info (the daemon's metrics time the two apart, as dockerd's).
type versionBackend interface {
	VersionInfo(ctx context.Context) (SystemInfo, error)
}

// getVersion describes berth itself; a failing Backend costs only the
// kernel and runc versions, so docker version keeps working for diagnosis.
func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	describe := s.backend.SystemInfo
	if vb, ok := s.backend.(versionBackend); ok {
		describe = vb.VersionInfo
	}
	info, err := describe(r.Context())
	if err != nil {
		s.log.Warn("version: system info unavailable", "err", err)
	}
	v := types.Version{
		Version:       version.Version,
		APIVersion:    version.APIVersion,
		MinAPIVersion: version.MinAPIVersion,
		GitCommit:     version.Commit(),
		BuildTime:     version.Built(),
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: info.KernelVersion,
	}
	v.Platform.Name = "berth"
	v.Components = []types.ComponentVersion{{
		Name:    "Engine",
		Version: version.Version,
		Details: map[string]string{
			"ApiVersion":    version.APIVersion,
			"MinAPIVersion": version.MinAPIVersion,
			"GitCommit":     version.Commit(),
			"BuildTime":     version.Built(),
			"GoVersion":     runtime.Version(),
			"Os":            runtime.GOOS,
			"Arch":          runtime.GOARCH,
			"KernelVersion": info.KernelVersion,
			"Experimental":  "false",
		},
	}}
	if info.RuncVersion != "" {
		v.Components = append(v.Components, types.ComponentVersion{
			Name: "runc", Version: info.RuncVersion,
		})
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) error {
	si, err := s.backend.SystemInfo(r.Context())
	if err != nil {
		return err
	}
	info := systemInfo(si)
	if versionBefore(r, "1.49") {
		info.FirewallBackend = nil // moby's getInfo: new in API 1.49
	}
	return writeJSON(w, http.StatusOK, info)
}

// systemInfo reports what berth knows and leaves the rest at its zero
// value rather than inventing it; swarm is always inactive.
func systemInfo(si SystemInfo) system.Info {
	return system.Info{
		ID:                si.ID,
		Name:              si.Name,
		Containers:        si.Containers,
		ContainersRunning: si.Running,
		ContainersPaused:  si.Paused,
		ContainersStopped: si.Stopped,
		Images:            si.Images,
		Driver:            "overlayfs",
		DriverStatus:      [][2]string{},
		Plugins: system.PluginsInfo{
			Volume:  []string{"local"},
			Network: []string{"bridge", "host", "null"},
			Log:     []string{"json-file", "local"}, // and none, which moby does not list either
		},
		InitBinary:     "docker-init",
		CgroupVersion:  si.CgroupVersion,
		MemoryLimit:    si.Limits.Memory,
		SwapLimit:      si.Limits.Swap,
		OomKillDisable: si.Limits.OomKillDisable,
		CPUCfsPeriod:   si.Limits.CPUCfs,
		CPUCfsQuota:    si.Limits.CPUCfs,
		CPUShares:      si.Limits.CPUShares,
		CPUSet:         si.Limits.Cpuset,
		PidsLimit:      si.Limits.Pids,
		IPv4Forwarding: true,
		// Containers keep running while the daemon stops or restarts and
		// are adopted again, which is what live-restore means in Docker.
		LiveRestoreEnabled:  true,
		SystemTime:          time.Now().Format(time.RFC3339Nano),
		LoggingDriver:       loggingDriver(si.LoggingDriver),
		Debug:               si.Debug,
		CgroupDriver:        "cgroupfs",
		KernelVersion:       si.KernelVersion,
		OperatingSystem:     si.OperatingSystem,
		OSType:              "linux",
		Architecture:        si.Architecture,
		NCPU:                si.NCPU,
		MemTotal:            si.MemTotal,
		DockerRootDir:       si.DataRoot,
		ServerVersion:       version.Version,
		Runtimes:            map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
		DefaultRuntime:      "runc",
		Swarm:               swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		RuncCommit:          system.Commit{ID: si.RuncVersion},
		SecurityOptions:     securityOptions(si),
		FirewallBackend:     firewallBackend(si),
		Labels:              append([]string{}, si.Labels...),
		Warnings:            append([]string{}, si.Warnings...),
		DefaultAddressPools: addressPools(si.AddressPools),
	}
}

// securityOptions are docker info's, as moby's fillSecurityOptions
// words them: every container gets Docker's default seccomp profile
// unless --security-opt says otherwise, on cgroup v2 a cgroup namespace
// of its own unless --cgroupns (or the daemon's default) says otherwise,
// and no new privileges with the daemon's --no-new-privileges.
func securityOptions(si SystemInfo) []string {
	opts := []string{"name=seccomp,profile=builtin"}
	if si.CgroupnsPrivate {
		opts = append(opts, "name=cgroupns")
	}
	if si.NoNewPrivileges {
		opts = append(opts, "name=no-new-privileges")
	}
	return opts
}

// firewallBackend is docker info's Firewall Backend: berth's rules are
// nftables' (one inet table), "+firewalld" with the time of its last
// reload while firewalld runs beside it, and EnableUserlandProxy when the
// proxy is on, as moby's FirewallBackend (Docker 29.5 and later).
func firewallBackend(si SystemInfo) *system.FirewallInfo {
	fi := &system.FirewallInfo{Driver: "nftables"}
	if si.Firewalld {
		fi.Driver += "+firewalld"
		if !si.FirewalldReloadedAt.IsZero() {
			fi.Info = append(fi.Info, [2]string{"ReloadedAt", si.FirewalldReloadedAt.Format(time.RFC3339)})
		}
	}
	if si.UserlandProxy {
		fi.Info = append(fi.Info, [2]string{"EnableUserlandProxy", "true"})
	}
	return fi
}

func loggingDriver(d string) string {
	if d == "" {
		return "json-file"
	}
	return d
}

func addressPools(pools []AddressPool) []system.NetworkAddressPool {
	var out []system.NetworkAddressPool
	for _, p := range pools {
		out = append(out, system.NetworkAddressPool{Base: p.Base, Size: p.Size})
	}
	return out
}

func goarch() string { return runtime.GOARCH }
