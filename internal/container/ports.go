package container

import (
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// ParsePortKey reads a PortBindings key: "80/tcp", "53/udp", or "80" and
// "80/" (tcp, as in Docker). berth publishes tcp and udp only.
func ParsePortKey(k string) (port uint16, proto string, err error) {
	p, proto, _ := strings.Cut(k, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, perr := strconv.ParseUint(p, 10, 16)
	if perr != nil || n == 0 {
		return 0, "", errdefs.Invalid("invalid port %q: want PORT/PROTO", k)
	}
	if proto != "tcp" && proto != "udp" {
		return 0, "", errdefs.Invalid("publishing %s ports is not supported by berth: use tcp or udp", proto)
	}
	return uint16(n), proto, nil
}

// ParseHostPorts reads a binding's HostPort: "" or "0" (an ephemeral
// port, returned as 0, 0, as Docker takes both), "8080", or "8000-9000"
// (a range to pick from).
func ParseHostPorts(s string) (start, end uint16, err error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last := first
	var err2 error
	if isRange {
		last, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return 0, 0, errdefs.Invalid("invalid host port %q: want a port or a range like 8000-9000", s)
	}
	return uint16(first), uint16(last), nil
}
