package cni

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestStateOfAnotherBootIsDropped: the records of attachments made before
// the machine booted again (no runtime DELs them) are dropped when the
// state is read: they held addresses and host ports and refused the same
// container ID's ADD until a GC.
func TestStateOfAnotherBootIsDropped(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot_id")
	old := bootIDPath
	bootIDPath = boot
	t.Cleanup(func() { bootIDPath = old })
	setBoot := func(id string) {
		if err := os.WriteFile(boot, []byte(id+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sd, err := openStateDir(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer sd.close()

	setBoot("first")
	s, err := sd.load()
	if err != nil {
		t.Fatal(err)
	}
	last := netip.MustParseAddr("10.88.0.7")
	s.Attachments[Key("n", "c1", "eth0")] = &Attached{Network: "n", ContainerID: "c1", IfName: "eth0", Done: true,
		Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}}
	s.Networks["n"] = NetworkRule{Bridge: "cni0"}
	s.Last["n/0"] = last
	if err := sd.save(s); err != nil {
		t.Fatal(err)
	}
	if s, err = sd.load(); err != nil || len(s.Attachments) != 1 {
		t.Fatalf("same boot: %d attachments, %v", len(s.Attachments), err)
	}

	setBoot("second")
	s, err = sd.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Attachments) != 0 || len(s.Networks) != 0 || !s.TableDirty || s.BootID != "second" {
		t.Errorf("after a reboot: %d attachments, %d networks, table dirty %v, boot %q", len(s.Attachments), len(s.Networks), s.TableDirty, s.BootID)
	}
	if s.Last["n/0"] != last {
		t.Errorf("the address rotation was lost: %v", s.Last)
	}
}
