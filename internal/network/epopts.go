package network

import (
	"fmt"
	"strings"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
)

// Endpoint driver options berth applies (docker run --network
// name=NET,driver-opt=…, docker network connect --driver-opt …), as
// libnetwork's netlabel names them.
const (
	// OptEndpointIfname is the interface's name in the container, in
	// place of the next ethN (Docker 28; Compose's interface_name).
	OptEndpointIfname = "com.docker.network.endpoint.ifname"
	// OptEndpointSysctls are sysctls of the interface, set before it
	// comes up: "net.ipv4.conf.IFNAME.log_martians=1,…", IFNAME standing
	// for its name (Docker 28).
	OptEndpointSysctls = "com.docker.network.endpoint.sysctls"
)

// endpointOptions reads the options above from an endpoint's driver
// options, checked: the name as the kernel takes it, the sysctls as
// moby's validateEndpointSettings does.
func endpointOptions(opts map[string]string) (ifname string, sysctls []string, err error) {
	if name, ok := opts[OptEndpointIfname]; ok {
		if err := driverapi.CheckIfName(name); err != nil { // the driver's own rule, checked at create
			return "", nil, errdefs.Invalid("invalid endpoint settings:\n%s: %w", OptEndpointIfname, err)
		}
		ifname = name
	}
	if list, ok := opts[OptEndpointSysctls]; ok {
		var errs []string
		for _, s := range strings.Split(list, ",") {
			if err := checkEndpointSysctl(s); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			sysctls = append(sysctls, s)
		}
		if len(errs) > 0 {
			return "", nil, errdefs.Invalid("invalid endpoint settings:\n%s", strings.Join(errs, "\n"))
		}
	}
	return ifname, sysctls, nil
}

// CheckEndpointOptions checks an endpoint's driver options as Join will
// (the API checks them at create, as moby's validateEndpointSettings).
func CheckEndpointOptions(opts map[string]string) error {
	_, _, err := endpointOptions(opts)
	return err
}

// disablesIPv6 reports whether sysctls turn IPv6 off on the interface:
// it then gets no IPv6 address, as moby drops the one an interface lost
// that way.
func disablesIPv6(sysctls []string) bool {
	off := false
	for _, s := range sysctls {
		key, value, _ := strings.Cut(s, "=")
		if parts := strings.SplitN(key, ".", 5); len(parts) == 5 && parts[1] == "ipv6" && parts[2] == "conf" && parts[4] == "disable_ipv6" {
			off = strings.TrimSpace(value) == "1"
		}
	}
	return off
}

// checkEndpointSysctl checks one "net.X.Y.IFNAME.Z=V" as moby does
// (X ipv4, ipv6 or mpls; "ifname" allowed too, the CLI lowers case).
func checkEndpointSysctl(s string) error {
	key, _, hasValue := strings.Cut(s, "=")
	parts := strings.SplitN(key, ".", 5)
	if !hasValue || len(parts) != 5 || parts[0] != "net" ||
		(parts[1] != "ipv4" && parts[1] != "ipv6" && parts[1] != "mpls") ||
		(parts[3] != "IFNAME" && parts[3] != "ifname") || parts[4] == "" {
		return fmt.Errorf("unrecognised network interface sysctl '%s'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'", s)
	}
	return nil
}
