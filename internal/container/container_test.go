package container

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSharedNetns(t *testing.T) {
	for _, tc := range []struct {
		mode, ref string
		ok        bool
	}{
		{"container:db", "db", true},
		{SharedNetnsMode("0123abcd"), "0123abcd", true},
		{"container:", "", true},
		{"container", "container", false},
		{"bridge", "bridge", false},
		{"web", "web", false},
	} {
		if ref, ok := SharedNetns(tc.mode); ref != tc.ref || ok != tc.ok {
			t.Errorf("SharedNetns(%q) = %q, %v; want %q, %v", tc.mode, ref, ok, tc.ref, tc.ok)
		}
	}
}

func TestNetnsPath(t *testing.T) {
	own := &Container{Config: Config{NetworkMode: "bridge"}, State: State{SandboxKey: "/run/berth/netns/a", JoinedNetns: "/stale"}}
	if got := own.NetnsPath(); got != "/run/berth/netns/a" {
		t.Errorf("own sandbox: NetnsPath = %q, want the sandbox key", got)
	}
	shared := &Container{Config: Config{NetworkMode: "container:a"}, State: State{JoinedNetns: "/run/berth/netns/a"}}
	if got := shared.NetnsPath(); got != "/run/berth/netns/a" {
		t.Errorf("shared: NetnsPath = %q, want the joined namespace", got)
	}
	// A chain: a container joined to one that shares a host-network
	// container's namespace is on the host network too ("").
	hostShared := &Container{Config: Config{NetworkMode: "container:h"}}
	if got := hostShared.NetnsPath(); got != "" {
		t.Errorf("shared with a host-network container: NetnsPath = %q, want \"\"", got)
	}
}

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"A=1", "B=2", "C"}, []string{"B=3", "D=4", "C=5"})
	if diff := cmp.Diff([]string{"A=1", "B=3", "C=5", "D=4"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A bare key unsets, as moby's ReplaceOrAppendEnvValues: docker run
	// -e HOSTNAME (not exported where the client runs) drops HOSTNAME, and
	// a bare key that base lacks goes nowhere (runc is not handed "X").
	base := []string{"PATH=/bin", "HOSTNAME=h", "TERM=xterm"}
	got = MergeEnv(base, []string{"HOSTNAME", "X", "E=", "TERM"})
	if diff := cmp.Diff([]string{"PATH=/bin", "E="}, got); diff != "" {
		t.Errorf("bare keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PATH=/bin", "HOSTNAME=h", "TERM=xterm"}, base); diff != "" {
		t.Errorf("base changed (-want +got):\n%s", diff)
	}
}
