package driverapi

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxIfNameLen is the longest interface name the kernel takes (IFNAMSIZ-1).
const MaxIfNameLen = 15

// CheckIfName is the one rule for a name berth gives a link (a bridge, a
// container's interface, a prefix with its number): the kernel's
// dev_valid_name (1 to 15 bytes, not "." or "..", no '/', ':' or white
// space), no '%' (a template the kernel would fill in), no control
// character or NUL, and not "all" or "default" (the sysctl directories
// of every interface), and no byte 0xA0, which the kernel's isspace (a
// Latin-1 table) counts as a space: it is in many UTF-8 characters ("à"
// is C3 A0). Other bytes, non-ASCII ones included, are the kernel's to
// take, as Docker passes such names on.
func CheckIfName(name string) error {
	bad := func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }
	if name == "" || len(name) > MaxIfNameLen || name == "." || name == ".." || name == "all" || name == "default" ||
		strings.ContainsAny(name, "/:%") || strings.ContainsFunc(name, bad) || strings.IndexByte(name, 0xa0) >= 0 {
		return fmt.Errorf("%q is not a valid interface name (1 to 15 bytes, no '/', ':', '%%', spaces or control characters, not all or default)", name)
	}
	return nil
}
