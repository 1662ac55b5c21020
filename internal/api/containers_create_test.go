package api

import (
	"testing"

	ctypes "github.com/docker/docker/api/types/container"
	nettypes "github.com/docker/docker/api/types/network"

	"github.com/berth-net/berth/internal/container"
)

// TestNetworkDisabled: Config.NetworkDisabled gives the container no
// network (mode none, no endpoint), whatever the request's mode and
// endpoints say, and is kept for inspect; with the host's or another
// container's namespace it is refused. It was ignored: the container got
// the bridge.
func TestNetworkDisabled(t *testing.T) {
	req := ctypes.CreateRequest{
		Config:           &ctypes.Config{Image: "busybox", NetworkDisabled: true},
		HostConfig:       &ctypes.HostConfig{NetworkMode: "web"},
		NetworkingConfig: &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{"web": {Aliases: []string{"a"}}}},
	}
	cfg, err := createConfig(req, "1.51")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NetworkMode != "none" || len(cfg.Networks) != 1 || !cfg.NetworkDisabled {
		t.Errorf("NetworkDisabled: mode %q, networks %v, kept %v; want none alone", cfg.NetworkMode, cfg.Networks, cfg.NetworkDisabled)
	}
	if _, ok := cfg.Networks["none"]; !ok {
		t.Errorf("networks %v, want none", cfg.Networks)
	}
	if wireConfig(cfg).NetworkDisabled != true {
		t.Error("inspect does not show NetworkDisabled")
	}
	for _, mode := range []string{"host", "container:other"} {
		req.HostConfig = &ctypes.HostConfig{NetworkMode: ctypes.NetworkMode(mode)}
		req.NetworkingConfig = nil
		if _, err := createConfig(req, "1.51"); err == nil {
			t.Errorf("NetworkDisabled with network mode %s: no error", mode)
		}
	}
}

// TestNoOpValuesAccepted: values that name what berth does anyway pass,
// as moby accepts them (runc's containerd shim, the host's user
// namespace, the local volume driver); others are still refused.
func TestNoOpValuesAccepted(t *testing.T) {
	for _, hc := range []ctypes.HostConfig{
		{Runtime: "io.containerd.runc.v2"}, {Runtime: "runc"}, {UsernsMode: "host"}, {VolumeDriver: "local"},
	} {
		if err := unappliedHostConfig(&hc); err != nil {
			t.Errorf("%+v: %v", hc, err)
		}
	}
	for _, hc := range []ctypes.HostConfig{{Runtime: "kata"}, {UsernsMode: "private"}, {VolumeDriver: "nfs"}} {
		if err := unappliedHostConfig(&hc); err == nil {
			t.Errorf("%+v: accepted", hc)
		}
	}
}

// TestConfigVolumesShown: the request's Config.Volumes are kept for
// inspect (it showed null though the volumes were mounted).
func TestConfigVolumesShown(t *testing.T) {
	cfg, err := createConfig(ctypes.CreateRequest{Config: &ctypes.Config{Image: "busybox", Volumes: map[string]struct{}{"/b": {}, "/a": {}}}}, "1.51")
	if err != nil {
		t.Fatal(err)
	}
	got := wireConfig(cfg).Volumes
	if len(got) != 2 || got["/a"] != struct{}{} || got["/b"] != struct{}{} {
		t.Errorf("Config.Volumes = %v, want /a and /b", got)
	}
	if wireConfig(container.Config{}).Volumes != nil {
		t.Error("no volumes: want null, as moby")
	}
}
