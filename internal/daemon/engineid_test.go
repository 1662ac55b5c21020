package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/berth-net/berth/internal/container"
)

// TestEngineIDIsMadeOnceAndKept: the first start writes a random UUID,
// later ones read it back; the IPv6 pool is derived from it.
func TestEngineIDIsMadeOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "engine-id")
	id, err := loadEngineID(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("engine ID %q is not a version 4 UUID", id)
	}
	again, err := loadEngineID(path)
	if err != nil || again != id {
		t.Errorf("second load: %q, %v; want %q", again, err, id)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != id {
		t.Errorf("file holds %q (%v)", b, err)
	}
	other, _ := loadEngineID(filepath.Join(t.TempDir(), "engine-id"))
	if other == id {
		t.Errorf("two data-roots drew the same ID %q", id)
	}
}

// TestIPv6Disabled: the sysctls that take IPv6 away from a container's
// loopback (what moby's Sandbox.IPv6Enabled probes) turn its IPv6 off.
func TestIPv6Disabled(t *testing.T) {
	old := kernelIPv6
	t.Cleanup(func() { kernelIPv6 = old })
	kernelIPv6 = func() bool { return true }
	for _, tc := range []struct {
		sysctls map[string]string
		want    bool
	}{
		{nil, false},
		{map[string]string{"net.ipv6.conf.all.disable_ipv6": "1"}, true},
		{map[string]string{"net.ipv6.conf.lo.disable_ipv6": "1"}, true},
		{map[string]string{"net.ipv6.conf.all.disable_ipv6": "0"}, false},
		{map[string]string{"net.ipv6.conf.eth0.disable_ipv6": "1"}, false},
	} {
		c := &container.Container{Config: container.Config{Sysctls: tc.sysctls}}
		if got := ipv6Disabled(c); got != tc.want {
			t.Errorf("ipv6Disabled(%v) = %v, want %v", tc.sysctls, got, tc.want)
		}
	}
	// A kernel without IPv6 (ipv6.disable=1): no container has it.
	kernelIPv6 = func() bool { return false }
	if !ipv6Disabled(&container.Container{}) {
		t.Error("a kernel without IPv6: ipv6Disabled is false")
	}
}
