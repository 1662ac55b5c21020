package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A container's /etc/resolv.conf, made as moby's libnetwork makes it
// (internal/resolvconf, v28): the host's file read line by line, the
// container's --dns, --dns-search and --dns-option put over it, then
// changed for the container's kind of network, and written in Docker's
// order (nameservers, search, options, the lines it did not know).
//
//   - host network, and none: the host's file as it is (with the
//     overrides); no change.
//   - the default bridge (no resolver): loopback and IPv6 servers dropped
//     (unreachable, and berth's bridge is IPv4-only); none left means
//     Google's two (forLegacy).
//   - a user-defined network: 127.0.0.11 only, every other server handed to
//     the resolver as an upstream, and ndots:0 unless a valid ndots is set
//     (forResolver).

// resolvConf is a parsed resolver configuration, with where its parts
// came from, which the file says in Docker's closing comments.
type resolvConf struct {
	nameservers []netip.Addr
	search      []string
	options     []string
	other       []string // lines of no known directive, copied as they are
	nsOverride  bool     // the nameservers are the container's --dns

	source          string   // the host file read
	searchOverride  bool     // --dns-search
	optionsOverride bool     // --dns-option
	invalid         []string // nameserver lines that were not addresses
	transform       string   // "legacy", "internal resolver", or none
	warnings        []string
	ext             []extServer // the servers the resolver forwards to
	ndotsFrom       string      // "host", "override", "internal", or none
}

// extServer is a server the resolver forwards to, from the host's
// namespace if hostLoopback (moby's ExtDNSEntry).
type extServer struct {
	addr         netip.Addr
	hostLoopback bool
}

func (e extServer) String() string {
	if e.hostLoopback {
		return "host(" + e.addr.String() + ")"
	}
	return e.addr.String()
}

// defaultNameservers are Docker's when no usable server is left.
var defaultNameservers = []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}

// defaultNameservers6 are added to defaultNameservers on a network with
// IPv6, as moby's defaultNSAddrs(true).
var defaultNameservers6 = []netip.Addr{netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("2001:4860:4860::8844")}

// parseResolvConf reads a resolv.conf as libnetwork's processLine does:
// "domain" is an old name for "search", the last search line wins,
// options add up, a nameserver that is not an address is skipped, and
// any other line is kept for the container.
func parseResolvConf(text, source string) resolvConf {
	rc := resolvConf{source: source}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0][0] == '#' || f[0][0] == ';' {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				if a, err := netip.ParseAddr(f[1]); err == nil {
					rc.nameservers = append(rc.nameservers, a)
				} else {
					rc.invalid = append(rc.invalid, f[1])
				}
			}
		case "domain", "search":
			if len(f) > 1 {
				rc.search = f[1:]
			}
		case "options":
			rc.options = append(rc.options, f[1:]...)
		default:
			rc.other = append(rc.other, line)
		}
	}
	if rc.ndotsSet() {
		rc.ndotsFrom = "host"
	}
	return rc
}

// withOverrides puts a container's --dns, --dns-search and --dns-option
// over rc. A search domain of "." means none (Docker's OverrideSearch).
func (rc resolvConf) withOverrides(dns, search, options []string) resolvConf {
	out := rc
	if len(dns) > 0 {
		out.nameservers, out.nsOverride = nil, true
		for _, s := range dns {
			if a, err := netip.ParseAddr(s); err == nil {
				out.nameservers = append(out.nameservers, a.Unmap())
			}
		}
	}
	if len(search) > 0 {
		out.search, out.searchOverride = nil, true
		for _, s := range search {
			if s != "." {
				out.search = append(out.search, s)
			}
		}
	}
	if len(options) > 0 {
		out.options, out.optionsOverride, out.ndotsFrom = slices.Clone(options), true, ""
		if out.ndotsSet() {
			out.ndotsFrom = "override"
		}
	}
	return out
}

// forLegacy is rc for a network without a resolver (the default bridge),
// as moby's TransformForLegacyNw: servers a container cannot reach
// (loopback ones, and IPv6 ones unless the network has IPv6) are
// dropped, unless the user chose them with --dns.
func (rc resolvConf) forLegacy(ipv6 bool) resolvConf {
	out := rc
	out.transform = "legacy"
	if rc.nsOverride {
		return out
	}
	out.nameservers = nil
	for _, a := range rc.nameservers {
		if !a.IsLoopback() && (a.Is4() || ipv6) {
			out.nameservers = append(out.nameservers, a)
		}
	}
	if len(out.nameservers) == 0 {
		out.nameservers = slices.Clone(defaultNameservers)
		if ipv6 {
			out.nameservers = append(out.nameservers, defaultNameservers6...)
		}
		out.warnings = append(slices.Clip(out.warnings), "Used default nameservers.")
	}
	return out
}

// ndotsSet reports whether rc sets ndots at all: then the resolver does
// not forward a single-label name it does not know (moby's ndotsSet).
func (rc resolvConf) ndotsSet() bool {
	return slices.ContainsFunc(rc.options, func(o string) bool {
		k, _, _ := strings.Cut(o, ":")
		return k == "ndots"
	})
}

// forResolver is rc for a container served by the resolver at ns, and the
// servers the resolver forwards to: those of rc (loopback ones included:
// the resolver reaches them from the host), none when there are none (the
// resolver answers SERVFAIL, as Docker's does with no external servers;
// Google's two are the default bridge's only), and never ns itself asked
// from the container (--dns 127.0.0.11), where it is the resolver: each
// forward came back as a new query, about a thousand deep (moby's
// resolver skips its own address the same way). An ndots that is not a
// number of zero or more is dropped, and ndots:0 added when none is left.
func (rc resolvConf) forResolver(ns netip.Addr) (resolvConf, []netip.Addr) {
	var upstreams []netip.Addr
	for _, a := range rc.nameservers {
		if rc.nsOverride && a == ns {
			continue
		}
		upstreams = append(upstreams, a)
	}
	out := rc
	out.nameservers = []netip.Addr{ns}
	out.transform, out.ext = "internal resolver", nil
	for _, a := range upstreams {
		out.ext = append(out.ext, extServer{addr: a, hostLoopback: !rc.nsOverride})
	}
	if len(out.ext) == 0 {
		out.warnings = append(slices.Clip(out.warnings), "NO EXTERNAL NAMESERVERS DEFINED")
	}
	out.options = nil
	for _, o := range rc.options {
		if k, v, _ := strings.Cut(o, ":"); k == "ndots" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				continue
			}
		}
		out.options = append(out.options, o)
	}
	if !out.ndotsSet() {
		out.options = append(out.options, "ndots:0")
		out.ndotsFrom = "internal"
	}
	return out, upstreams
}

// resolvHeader opens every resolv.conf Docker writes.
const resolvHeader = `# Generated by Docker Engine.
# This file can be edited; Docker Engine will not make further changes once it
# has been modified.`

// String is the file as Docker 28 writes it (libnetwork's Generate with
// comments): its header, the directives in Docker's order, the lines it
// did not know, then where it all came from.
func (rc resolvConf) String() string {
	var b strings.Builder
	b.WriteString(resolvHeader + "\n\n")
	for _, a := range rc.nameservers {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	if len(rc.search) > 0 {
		b.WriteString("search " + strings.Join(rc.search, " ") + "\n")
	}
	if len(rc.options) > 0 {
		b.WriteString("options " + strings.Join(rc.options, " ") + "\n")
	}
	for _, l := range rc.other {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n# Based on host file: '" + rc.source + "'")
	if rc.transform != "" {
		b.WriteString(" (" + rc.transform + ")")
	}
	b.WriteString("\n")
	for _, w := range rc.warnings {
		b.WriteString("# " + w + "\n")
	}
	if len(rc.ext) > 0 {
		fmt.Fprintf(&b, "# ExtServers: %v\n", rc.ext)
	}
	if len(rc.invalid) > 0 {
		fmt.Fprintf(&b, "# Invalid nameservers: %v\n", rc.invalid)
	}
	var overrides []string
	for _, o := range []struct {
		set  bool
		name string
	}{{rc.nsOverride, "nameservers"}, {rc.searchOverride, "search"}, {rc.optionsOverride, "options"}} {
		if o.set {
			overrides = append(overrides, o.name)
		}
	}
	fmt.Fprintf(&b, "# Overrides: %v\n", overrides)
	if rc.ndotsFrom != "" {
		b.WriteString("# Option ndots from: " + rc.ndotsFrom + "\n")
	}
	return b.String()
}
