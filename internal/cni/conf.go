package cni

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultDataDir is where berth-cni keeps its state when the
// configuration names no dataDir.
const DefaultDataDir = "/var/lib/berth-cni"

// netConf is the network configuration a runtime sends on stdin: the
// reference bridge plugin's keys with host-local IPAM, berth's dataDir,
// and what the runtime adds (runtimeConfig, args, prevResult, GC's valid
// attachments).
type netConf struct {
	CNIVersion       string          `json:"cniVersion"`
	Name             string          `json:"name"`
	Type             string          `json:"type"`
	Bridge           string          `json:"bridge"`
	IsGateway        bool            `json:"isGateway"`
	IsDefaultGateway bool            `json:"isDefaultGateway"`
	ForceAddress     bool            `json:"forceAddress"`
	IPMasq           bool            `json:"ipMasq"`
	IPMasqBackend    string          `json:"ipMasqBackend"`
	MTU              int             `json:"mtu"`
	HairpinMode      *bool           `json:"hairpinMode"`
	PromiscMode      bool            `json:"promiscMode"`
	Vlan             int             `json:"vlan"`
	VlanTrunk        json.RawMessage `json:"vlanTrunk"`
	MacSpoofChk      bool            `json:"macspoofchk"`
	EnableDAD        bool            `json:"enabledad"`
	DisableContIface bool            `json:"disableContainerInterface"`
	PortIsolation    bool            `json:"portIsolation"`
	DataDir          string          `json:"dataDir"`
	IPAM             ipamConf        `json:"ipam"`
	DNS              json.RawMessage `json:"dns"`
	Capabilities     map[string]bool `json:"capabilities"`
	RuntimeConfig    struct {
		PortMappings []portMapEntry `json:"portMappings"`
		Mac          string         `json:"mac"`
		IPs          []string       `json:"ips"`
	} `json:"runtimeConfig"`
	Args struct {
		CNI struct {
			IPs []string `json:"ips"`
			Mac string   `json:"mac"`
		} `json:"cni"`
	} `json:"args"`
	PrevResult       json.RawMessage `json:"prevResult"`
	ValidAttachments []Attachment    `json:"cni.dev/valid-attachments"`
}

// ipamConf is host-local's configuration: ranges (or the older single
// subnet form) and routes.
type ipamConf struct {
	Type       string       `json:"type"`
	Subnet     string       `json:"subnet"`
	RangeStart string       `json:"rangeStart"`
	RangeEnd   string       `json:"rangeEnd"`
	Gateway    string       `json:"gateway"`
	Ranges     [][]rangeDoc `json:"ranges"`
	Routes     []routeDoc   `json:"routes"`
	DataDir    string       `json:"dataDir"`
	ResolvConf string       `json:"resolvConf"`
}

// dnsConf is the spec's DNS type: a configuration's "dns", a result's.
type dnsConf struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// set is the bridge plugin's dnsConfSet: the configuration says
// something, so it wins over IPAM's resolvConf.
func (d dnsConf) set() bool {
	return d.Nameservers != nil || d.Search != nil || d.Options != nil || d.Domain != ""
}

type rangeDoc struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

type routeDoc struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// portMapEntry is one element of the portMappings capability, as the
// portmap plugin takes it.
type portMapEntry struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Attachment names one attachment GC must keep.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// Network is a configuration checked and with host-local's defaults
// filled in: what the plugin acts on.
type Network struct {
	Version          string
	Name             string
	Bridge           string
	IsGateway        bool
	IsDefaultGateway bool
	IPMasq           bool
	MTU              int
	DataDir          string
	RangeSets        [][]Range
	Routes           []Route
	DNS              dnsConf
	// ResolvConf is host-local's resolvConf: a file whose nameserver,
	// domain, search and options lines make ADD's DNS when DNS says
	// nothing.
	ResolvConf string
}

// Range is one host-local range: addresses Start..End of Subnet, Gateway
// (the bridge's address, never handed out) excepted.
type Range struct {
	Subnet     netip.Prefix
	Start, End netip.Addr
	Gateway    netip.Addr
}

// Route is a route the container gets; GW invalid means the gateway of
// its family.
type Route struct {
	Dst netip.Prefix
	GW  netip.Addr
}

// Request is what one ADD asks beyond the network: ports to publish, a MAC
// and addresses of the runtime's choosing.
type Request struct {
	Ports []PortMapping
	MAC   net.HardwareAddr
	IPs   []netip.Addr
}

// PortMapping is one published port of the request (the container's
// address is filled in once it is known).
type PortMapping struct {
	HostIP        netip.Addr `json:"hostIP,omitzero"`
	HostPort      uint16     `json:"hostPort"`
	ContainerPort uint16     `json:"containerPort"`
	Protocol      string     `json:"protocol"`
}

// TableName is the nftables table (family inet) of berth-cni's default
// data directory; TableNameFor names the others'.
const TableName = "berth-cni"

// TableNameFor is the table of the networks whose state is in dataDir:
// each data directory has its own lock and state, so each has its own
// table, and no call rebuilds another directory's rules from a state that
// does not hold them.
func TableNameFor(dataDir string) string {
	if dataDir == DefaultDataDir {
		return TableName
	}
	sum := sha256.Sum256([]byte(dataDir))
	return TableName + "-" + hex.EncodeToString(sum[:4])
}

// parseConf decodes stdin for the commands that take a configuration.
func parseConf(stdin []byte) (*netConf, error) {
	var c netConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, &Error{Code: CodeDecodeFailure, Msg: "failed to decode network configuration", Details: err.Error()}
	}
	if err := checkVersion(c.CNIVersion); err != nil {
		return nil, err
	}
	return &c, nil
}

// network checks c and fills in the defaults, as the bridge plugin and
// host-local do.
func (c *netConf) network() (*Network, error) {
	if c.Name == "" {
		return nil, errorf(CodeInvalidConfig, "network configuration has no name")
	}
	if !validID(c.Name, false) {
		return nil, errorf(CodeInvalidConfig, "network name %q may hold only letters, digits, '_', '.' and '-'", c.Name)
	}
	if err := c.unsupported(); err != nil {
		return nil, err
	}
	n := &Network{
		Version: cmp.Or(c.CNIVersion, "0.1.0"), Name: c.Name, Bridge: c.Bridge, IsGateway: c.IsGateway || c.IsDefaultGateway,
		IsDefaultGateway: c.IsDefaultGateway, IPMasq: c.IPMasq, MTU: c.MTU, DataDir: c.DataDir, ResolvConf: c.IPAM.ResolvConf,
	}
	if len(c.DNS) > 0 && string(c.DNS) != "null" {
		// Checked here, as the bridge plugin's loadNetConf does: a
		// malformed one echoed into ADD's result failed the runtime's
		// parse after the interface, address and rules were made.
		if err := json.Unmarshal(c.DNS, &n.DNS); err != nil {
			return nil, &Error{Code: CodeDecodeFailure, Msg: "dns: not a DNS configuration (nameservers, domain, search, options)", Details: err.Error()}
		}
	}
	if n.Bridge == "" {
		n.Bridge = "cni0" // the bridge plugin's default
	}
	if err := validIfName(n.Bridge); err != nil {
		return nil, errorf(CodeInvalidConfig, "bridge: %s", err.(*Error).Msg)
	}
	if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
		return nil, errorf(CodeInvalidConfig, "mtu %d is outside 68-65535", n.MTU)
	}
	if n.DataDir == "" {
		n.DataDir = c.IPAM.DataDir // host-local's, as a drop-in reads it
	}
	if n.DataDir == "" {
		n.DataDir = DefaultDataDir
	}
	if !filepath.IsAbs(n.DataDir) {
		return nil, errorf(CodeInvalidConfig, "dataDir %q is not an absolute path", n.DataDir)
	}
	n.DataDir = filepath.Clean(n.DataDir)
	if n.ResolvConf != "" && !filepath.IsAbs(n.ResolvConf) {
		return nil, errorf(CodeInvalidConfig, "ipam: resolvConf %q is not an absolute path", n.ResolvConf)
	}
	var err error
	if n.RangeSets, err = c.IPAM.rangeSets(); err != nil {
		return nil, err
	}
	for _, r := range c.IPAM.Routes {
		rt, err := r.route()
		if err != nil {
			return nil, err
		}
		n.Routes = append(n.Routes, rt)
	}
	return n, nil
}

// unsupported refuses the bridge plugin's settings berth-cni does not
// apply: a network that looked VLAN-tagged or spoof-checked but was not is
// worse than one refused.
func (c *netConf) unsupported() error {
	bad := func(key string) error {
		return errorf(CodeUnsupportedField, "%q is not supported by berth-cni; remove it from network %q", key, c.Name)
	}
	switch {
	case c.Vlan != 0:
		return bad("vlan")
	case len(c.VlanTrunk) > 0 && string(c.VlanTrunk) != "null":
		return bad("vlanTrunk")
	case c.MacSpoofChk:
		return bad("macspoofchk")
	case c.EnableDAD:
		return bad("enabledad")
	case c.DisableContIface:
		return bad("disableContainerInterface")
	case c.PortIsolation:
		return bad("portIsolation")
	case c.PromiscMode:
		return bad("promiscMode")
	case c.HairpinMode != nil && !*c.HairpinMode:
		// berth puts every port in hairpin mode, so that a container
		// reaches its own published port.
		return bad("hairpinMode: false")
	case c.IPMasqBackend != "" && c.IPMasqBackend != "nftables":
		return bad("ipMasqBackend: " + c.IPMasqBackend)
	case c.IPAM.Type != "host-local" && c.IPAM.Type != "berth":
		return errorf(CodeInvalidConfig, "ipam type %q is not supported by berth-cni, which allocates addresses itself: use \"host-local\" with its ranges", c.IPAM.Type)
	}
	return nil
}

// rangeSets is host-local's Canonicalize: the old single-subnet form or
// "ranges", each range with its defaults, no two ranges overlapping.
func (i ipamConf) rangeSets() ([][]Range, error) {
	docs := i.Ranges
	if i.Subnet != "" {
		if len(docs) > 0 {
			return nil, errorf(CodeInvalidConfig, "ipam: give either subnet or ranges, not both")
		}
		docs = [][]rangeDoc{{{Subnet: i.Subnet, RangeStart: i.RangeStart, RangeEnd: i.RangeEnd, Gateway: i.Gateway}}}
	}
	if len(docs) == 0 {
		return nil, errorf(CodeInvalidConfig, "ipam: no subnet or ranges to allocate from")
	}
	var sets [][]Range
	var all []Range
	seen4, seen6 := false, false
	for si, doc := range docs {
		if len(doc) == 0 {
			return nil, errorf(CodeInvalidConfig, "ipam: range set %d is empty", si)
		}
		var set []Range
		for _, d := range doc {
			r, err := d.canonical()
			if err != nil {
				return nil, err
			}
			if len(set) > 0 && set[0].Subnet.Addr().Is4() != r.Subnet.Addr().Is4() {
				return nil, errorf(CodeInvalidConfig, "ipam: range set %d mixes IPv4 and IPv6", si)
			}
			if len(set) > 0 && (set[0].Subnet != r.Subnet || set[0].Gateway != r.Gateway) {
				// The bridge has one address of each family, the
				// firewall one subnet: a second subnet would have
				// neither a gateway nor masquerade.
				return nil, errorf(CodeUnsupportedField, "ipam: the ranges of range set %d must share one subnet and gateway (berth-cni's bridge has one address per family)", si)
			}
			for _, o := range all {
				if o.Subnet.Overlaps(r.Subnet) && rangesOverlap(o, r) {
					return nil, errorf(CodeInvalidConfig, "ipam: range %s overlaps range %s", r, o)
				}
			}
			set = append(set, r)
			all = append(all, r)
		}
		// berth's driver gives a container one address of each family.
		is4 := set[0].Subnet.Addr().Is4()
		if is4 && seen4 || !is4 && seen6 {
			return nil, errorf(CodeUnsupportedField, "ipam: berth-cni takes one range set per address family (a container gets one address of each)")
		}
		seen4, seen6 = seen4 || is4, seen6 || !is4
		sets = append(sets, set)
	}
	return sets, nil
}

func (r Range) String() string { return fmt.Sprintf("%s-%s", r.Start, r.End) }

func rangesOverlap(a, b Range) bool {
	return !(a.End.Less(b.Start) || b.End.Less(a.Start))
}

// canonical parses one range and fills host-local's defaults: the gateway
// is the subnet's first address, the range runs from the first address
// to the last (the IPv4 broadcast excluded).
func (d rangeDoc) canonical() (Range, error) {
	sub, err := netip.ParsePrefix(d.Subnet)
	if err != nil {
		return Range{}, errorf(CodeInvalidConfig, "ipam: invalid subnet %q", d.Subnet)
	}
	sub = sub.Masked()
	host := sub.Addr().BitLen() - sub.Bits()
	if host < 2 {
		return Range{}, errorf(CodeInvalidConfig, "ipam: network %s too small to allocate from", sub)
	}
	first := sub.Addr().Next()
	last := lastAddr(sub)
	if sub.Addr().Is4() {
		last = last.Prev() // the broadcast
	}
	r := Range{Subnet: sub, Start: first, End: last, Gateway: first}
	parse := func(what, s string, into *netip.Addr) error {
		if s == "" {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !sub.Contains(a) {
			return errorf(CodeInvalidConfig, "ipam: %s %q is not an address in %s", what, s, sub)
		}
		*into = a
		return nil
	}
	if err := parse("rangeStart", d.RangeStart, &r.Start); err != nil {
		return r, err
	}
	if err := parse("rangeEnd", d.RangeEnd, &r.End); err != nil {
		return r, err
	}
	if err := parse("gateway", d.Gateway, &r.Gateway); err != nil {
		return r, err
	}
	if r.End.Less(r.Start) {
		return r, errorf(CodeInvalidConfig, "ipam: rangeEnd %s is before rangeStart %s", r.End, r.Start)
	}
	return r, nil
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (r routeDoc) route() (Route, error) {
	dst, err := netip.ParsePrefix(r.Dst)
	if err != nil {
		return Route{}, errorf(CodeInvalidConfig, "ipam: route destination %q is not a prefix", r.Dst)
	}
	rt := Route{Dst: dst.Masked()}
	if r.GW != "" {
		if rt.GW, err = netip.ParseAddr(r.GW); err != nil || rt.GW.Is4() != dst.Addr().Is4() {
			return Route{}, errorf(CodeInvalidConfig, "ipam: route gateway %q is not an address of the destination's family", r.GW)
		}
	}
	return rt, nil
}

// request reads what the runtime asks of this ADD: the portMappings
// capability, and a MAC and addresses from runtimeConfig or CNI_ARGS/args.
func (c *netConf) request(env Env) (Request, error) {
	var q Request
	for _, p := range c.RuntimeConfig.PortMappings {
		m, err := p.mapping()
		if err != nil {
			return q, err
		}
		q.Ports = append(q.Ports, m)
	}
	mac := c.RuntimeConfig.Mac
	if mac == "" {
		mac = c.Args.CNI.Mac
	}
	if mac == "" {
		mac = env.Args["MAC"]
	}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			return q, errorf(CodeInvalidConfig, "mac %q is not a unicast Ethernet address", mac)
		}
		q.MAC = hw
	}
	ips := c.RuntimeConfig.IPs
	if len(ips) == 0 {
		ips = c.Args.CNI.IPs
	}
	if len(ips) == 0 && env.Args["IP"] != "" {
		ips = strings.Split(env.Args["IP"], ",")
	}
	for _, s := range ips {
		s, _, _ = strings.Cut(s, "/") // "10.1.0.5/24" as the ips capability may give it
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return q, errorf(CodeInvalidConfig, "requested IP %q is not an address", s)
		}
		if a = a.Unmap(); !slices.Contains(q.IPs, a) {
			// Podman's reload passes the --ip address and the one it
			// recorded, the same twice; host-local keys them in a map.
			q.IPs = append(q.IPs, a)
		}
	}
	return q, nil
}

func (p portMapEntry) mapping() (PortMapping, error) {
	m := PortMapping{Protocol: strings.ToLower(p.Protocol)}
	if m.Protocol == "" {
		m.Protocol = "tcp"
	}
	if m.Protocol != "tcp" && m.Protocol != "udp" {
		return m, errorf(CodeInvalidConfig, "portMappings: protocol %q is not tcp or udp (berth-cni publishes no sctp)", p.Protocol)
	}
	if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
		return m, errorf(CodeInvalidConfig, "portMappings: ports %d:%d are not both in 1-65535", p.HostPort, p.ContainerPort)
	}
	m.HostPort, m.ContainerPort = uint16(p.HostPort), uint16(p.ContainerPort)
	if p.HostIP != "" {
		a, err := netip.ParseAddr(p.HostIP)
		if err != nil {
			return m, errorf(CodeInvalidConfig, "portMappings: hostIP %q is not an address", p.HostIP)
		}
		if !a.IsUnspecified() {
			m.HostIP = a.Unmap()
		}
	}
	return m, nil
}

// readResolvConf reads a resolv.conf as host-local's parseResolvConf does:
// every nameserver, the last domain, the last search list, every option.
func readResolvConf(path string) (dnsConf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return dnsConf{}, errorf(CodeIOFailure, "ipam: resolvConf: %v", err)
	}
	var d dnsConf
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			d.Nameservers = append(d.Nameservers, f[1])
		case "domain":
			d.Domain = f[1]
		case "search":
			d.Search = f[1:]
		case "options":
			d.Options = append(d.Options, f[1:]...)
		}
	}
	return d, nil
}
