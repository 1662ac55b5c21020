package container

import (
	"fmt"
	"regexp"
	"strconv"
)

// DeviceMapping is one --device: a host device node (or a directory of
// them) made in the container, with the device cgroup's permissions
// ("rwm" by default, as the docker CLI sends it).
type DeviceMapping struct {
	PathOnHost        string `json:"pathOnHost"`
	PathInContainer   string `json:"pathInContainer"`
	CgroupPermissions string `json:"cgroupPermissions"`
}

// DeviceRule is one --device-cgroup-rule, parsed: a device type (a: all,
// b: block, c: character), major and minor numbers (-1: any) and access.
type DeviceRule struct {
	Type         string
	Major, Minor int64
	Access       string
}

// deviceRuleRE is moby's rule syntax: "c 1:3 mr", "a *:* rwm".
var deviceRuleRE = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// ParseDeviceRule reads a --device-cgroup-rule in moby's words
// (AppendDevicePermissionsFromCgroupRules); berth checks it at create.
func ParseDeviceRule(rule string) (DeviceRule, error) {
	m := deviceRuleRE.FindStringSubmatch(rule)
	if m == nil {
		return DeviceRule{}, fmt.Errorf("invalid device cgroup rule format: '%s'", rule)
	}
	num := func(s, which string) (int64, error) {
		if s == "*" {
			return -1, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid %s value in device cgroup rule format: '%s'", which, rule)
		}
		return n, nil
	}
	major, err := num(m[2], "major")
	if err != nil {
		return DeviceRule{}, err
	}
	minor, err := num(m[3], "minor")
	if err != nil {
		return DeviceRule{}, err
	}
	return DeviceRule{Type: m[1], Major: major, Minor: minor, Access: m[4]}, nil
}

// CheckDeviceMapping checks a --device as the daemon receives it (the
// docker CLI has checked its syntax): absolute paths and r, w, m access.
func CheckDeviceMapping(d DeviceMapping) error {
	if d.PathOnHost == "" || d.PathOnHost[0] != '/' {
		return fmt.Errorf("%s is not an absolute path", d.PathOnHost)
	}
	if d.PathInContainer == "" || d.PathInContainer[0] != '/' {
		return fmt.Errorf("%s is not an absolute path", d.PathInContainer)
	}
	seen := map[rune]bool{}
	for _, c := range d.CgroupPermissions {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return fmt.Errorf("bad mode specified: %s", d.CgroupPermissions)
		}
		seen[c] = true
	}
	if len(d.CgroupPermissions) == 0 {
		return fmt.Errorf("bad mode specified: %s", d.CgroupPermissions)
	}
	return nil
}
