package api

import (
	"reflect"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/errdefs"
)

// hostConfigFlags names the docker run flag of the HostConfig fields berth
// does not apply, for the refusal's message.
var hostConfigFlags = map[string]string{
	"DeviceRequests": "--gpus", "UsernsMode": "--userns",
	"StorageOpt": "--storage-opt", "Runtime": "--runtime",
	"BlkioWeightDevice": "--blkio-weight-device", "BlkioDeviceReadBps": "--device-read-bps",
	"BlkioDeviceWriteBps": "--device-write-bps", "BlkioDeviceReadIOps": "--device-read-iops",
	"BlkioDeviceWriteIOps": "--device-write-iops", "VolumeDriver": "--volume-driver", "Isolation": "--isolation",
	"KernelMemoryTCP": "--kernel-memory-tcp", "CPURealtimePeriod": "--cpu-rt-period", "CPURealtimeRuntime": "--cpu-rt-runtime",
}

// hostConfigApplied are the HostConfig fields berth applies, or refuses
// with a message of its own (checkCreate), or that carry nothing to apply
// (the CLI's --cidfile, the terminal's size).
var hostConfigApplied = map[string]bool{
	"Binds": true, "ContainerIDFile": true, "NetworkMode": true, "PortBindings": true, "RestartPolicy": true,
	"AutoRemove": true, "VolumesFrom": true, "ConsoleSize": true, "CapAdd": true, "CapDrop": true, "DNS": true,
	"DNSOptions": true, "DNSSearch": true, "ExtraHosts": true, "PublishAllPorts": true, "ReadonlyRootfs": true,
	"Sysctls": true, "Mounts": true, "Links": true, "LogConfig": true, "Tmpfs": true, "Init": true, "Annotations": true,
	"CgroupParent": true,
	// The limits (resources.go), checked by the daemon against the host's cgroups.
	"Memory": true, "MemorySwap": true, "MemoryReservation": true, "MemorySwappiness": true, "OomKillDisable": true,
	"NanoCPUs": true, "CPUShares": true, "CPUPeriod": true, "CPUQuota": true, "CpusetCpus": true, "CpusetMems": true,
	"PidsLimit": true, "BlkioWeight": true, "Ulimits": true, "ShmSize": true, "OomScoreAdj": true,
	// --privileged and --security-opt (securityOf).
	"Privileged": true, "SecurityOpt": true, "MaskedPaths": true, "ReadonlyPaths": true, "GroupAdd": true,
	"Devices": true, "DeviceCgroupRules": true,
	"PidMode": true, "IpcMode": true, "UTSMode": true, "CgroupnsMode": true,
}

// unappliedHostConfig refuses any HostConfig setting berth would
// otherwise ignore: a container that looked --read-only or --cap-drop ALL
// but was not is worse than one refused. Settings whose value is what
// berth does anyway (an IPC namespace of its own, Docker's /dev/shm size,
// runc) pass; the log options are checked by CheckLogConfig.
func unappliedHostConfig(hc *ctypes.HostConfig) error {
	var found error
	walkFields(reflect.ValueOf(withoutDefaults(*hc)), func(name string, v reflect.Value) bool {
		if hostConfigApplied[name] || isZeroSetting(v) {
			return true
		}
		flag := hostConfigFlags[name]
		if flag == "" {
			flag = "HostConfig." + name
		}
		found = errdefs.Invalid("%s (HostConfig.%s) is not supported by berth", flag, name)
		return false
	})
	return found
}

// withoutDefaults returns hc with the settings whose value is what berth
// does anyway cleared.
func withoutDefaults(hc ctypes.HostConfig) ctypes.HostConfig {
	// Values that name what berth does anyway, as moby accepts them:
	// runc by its containerd shim's name too, the host's user namespace
	// (no remapping), the local volume driver.
	if hc.Runtime == "runc" || hc.Runtime == "io.containerd.runc.v2" {
		hc.Runtime = ""
	}
	if hc.UsernsMode == "host" {
		hc.UsernsMode = ""
	}
	if hc.VolumeDriver == "local" {
		hc.VolumeDriver = ""
	}
	if hc.Isolation == "default" {
		hc.Isolation = ""
	}
	// Dropped with a warning, as moby drops them (discardedResources).
	hc.KernelMemory, hc.CPUPercent = 0, 0
	return hc
}

// walkFields calls fn with each field of struct v, embedded structs'
// fields included, until fn returns false.
func walkFields(v reflect.Value, fn func(name string, f reflect.Value) bool) bool {
	t := v.Type()
	for i := range t.NumField() {
		sf, f := t.Field(i), v.Field(i)
		if sf.Anonymous && f.Kind() == reflect.Struct {
			if !walkFields(f, fn) {
				return false
			}
			continue
		}
		if !fn(sf.Name, f) {
			return false
		}
	}
	return true
}

// isZeroSetting reports whether v sets nothing: the zero value, an empty
// slice or map, or a pointer to a zero value (clients send
// "OomKillDisable": false and "PidsLimit": 0 for "unset").
func isZeroSetting(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Pointer:
		return v.IsNil() || isZeroSetting(v.Elem())
	case reflect.Struct:
		ok := true
		walkFields(v, func(_ string, f reflect.Value) bool {
			ok = isZeroSetting(f)
			return ok
		})
		return ok
	}
	return v.IsZero()
}
