package driverapi

import "testing"

// TestCheckIfName: the kernel's rule for a new link's name, with control
// characters, '%' and the sysctl directories' names refused; non-ASCII
// names pass, as the kernel (and Docker) take them.
func TestCheckIfName(t *testing.T) {
	for _, ok := range []string{"eth0", "lan0", "wlanü", "br-ü", "x#y", "a.b-c_d", "123456789012345"} {
		if err := CheckIfName(ok); err != nil {
			t.Errorf("CheckIfName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "all", "default", "a/b", "a:b", "a b", "a\tb", "a\nb", "a\x00b", "x\x01y", "q%d",
		"1234567890123456", "\xff\xfe", "eà"} {
		if err := CheckIfName(bad); err == nil {
			t.Errorf("CheckIfName(%q) = nil, want an error", bad)
		}
	}
}
