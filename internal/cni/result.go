package cni

import (
	"encoding/json"
	"net/netip"
)

// Result is an ADD's result (SPEC.md, "ADD Success"), in the form of the
// specification's latest version; encode writes it in the version the
// configuration asked for.
type Result struct {
	Interfaces []Interface
	IPs        []IPConfig
	Routes     []Route
	DNS        dnsConf
}

// Interface is one interface the plugin made or used; Sandbox is set for
// the container's.
type Interface struct {
	Name    string
	MAC     string
	Sandbox string
}

// IPConfig is one address, with the index in Interfaces of the interface
// that has it.
type IPConfig struct {
	Address   netip.Prefix
	Gateway   netip.Addr
	Interface int
}

type ifaceJSON struct {
	Name    string `json:"name"`
	MAC     string `json:"mac,omitempty"`
	Sandbox string `json:"sandbox,omitempty"`
}

type ipJSON struct {
	Version   string `json:"version,omitempty"` // 0.3.x and 0.4.0 only
	Interface *int   `json:"interface,omitempty"`
	Address   string `json:"address"`
	Gateway   string `json:"gateway,omitempty"`
}

type routeJSON struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

type resultJSON struct {
	CNIVersion string          `json:"cniVersion"`
	Interfaces []ifaceJSON     `json:"interfaces,omitempty"`
	IPs        []ipJSON        `json:"ips,omitempty"`
	Routes     []routeJSON     `json:"routes,omitempty"`
	DNS        json.RawMessage `json:"dns,omitempty"`
}

// ip020JSON is one family's address in a 0.1.0 or 0.2.0 result.
type ip020JSON struct {
	IP      string      `json:"ip"`
	Gateway string      `json:"gateway,omitempty"`
	Routes  []routeJSON `json:"routes,omitempty"`
}

type result020JSON struct {
	CNIVersion string          `json:"cniVersion"`
	IP4        *ip020JSON      `json:"ip4,omitempty"`
	IP6        *ip020JSON      `json:"ip6,omitempty"`
	DNS        json.RawMessage `json:"dns,omitempty"`
}

// encode020 is r in the form of 0.1.0 and 0.2.0, as the reference
// plugins' types/020 convert it: the first address of each family, with
// the routes of that family, and no interfaces.
func (r *Result) encode020(v string, dns json.RawMessage) ([]byte, error) {
	out := result020JSON{CNIVersion: v, DNS: dns}
	for _, ip := range r.IPs {
		j := &ip020JSON{IP: ip.Address.String()}
		if ip.Gateway.IsValid() {
			j.Gateway = ip.Gateway.String()
		}
		for _, rt := range r.Routes {
			if rt.Dst.Addr().Is4() == ip.Address.Addr().Is4() {
				jr := routeJSON{Dst: rt.Dst.String()}
				if rt.GW.IsValid() {
					jr.GW = rt.GW.String()
				}
				j.Routes = append(j.Routes, jr)
			}
		}
		switch {
		case ip.Address.Addr().Is4() && out.IP4 == nil:
			out.IP4 = j
		case !ip.Address.Addr().Is4() && out.IP6 == nil:
			out.IP6 = j
		}
	}
	return json.MarshalIndent(out, "", "    ")
}

// encode writes r as version v: before 1.0.0 each address carries its
// family as "version"; before 0.3.0 it is another form (encode020).
func (r *Result) encode(v string) ([]byte, error) {
	dns, err := json.Marshal(r.DNS)
	if err != nil {
		return nil, err
	}
	out := resultJSON{CNIVersion: v, DNS: dns}
	if !atLeast(v, "0.3.0") {
		return r.encode020(v, out.DNS)
	}
	for _, i := range r.Interfaces {
		out.Interfaces = append(out.Interfaces, ifaceJSON(i))
	}
	for _, ip := range r.IPs {
		j := ipJSON{Address: ip.Address.String(), Interface: &ip.Interface}
		if ip.Gateway.IsValid() {
			j.Gateway = ip.Gateway.String()
		}
		if !atLeast(v, "1.0.0") {
			j.Version = "4"
			if ip.Address.Addr().Is6() {
				j.Version = "6"
			}
		}
		out.IPs = append(out.IPs, j)
	}
	for _, rt := range r.Routes {
		j := routeJSON{Dst: rt.Dst.String()}
		if rt.GW.IsValid() {
			j.GW = rt.GW.String()
		}
		out.Routes = append(out.Routes, j)
	}
	return json.MarshalIndent(out, "", "    ")
}

// prevResult is the part of a prevResult CHECK reads: the container's
// interface and its addresses.
type prevResult struct {
	Interfaces []ifaceJSON `json:"interfaces"`
	IPs        []ipJSON    `json:"ips"`
}

// resultRoutes are the routes the container gets: the IPAM
// configuration's, and with isDefaultGateway a default route through the
// gateway of each family that has none.
func resultRoutes(n *Network, ips []AttachedIP) []Route {
	routes := append([]Route(nil), n.Routes...)
	if !n.IsDefaultGateway {
		return routes
	}
	for _, ip := range ips {
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if ip.Address.Addr().Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		has := false
		for _, r := range routes {
			has = has || r.Dst == def
		}
		if !has {
			routes = append(routes, Route{Dst: def, GW: ip.Gateway})
		}
	}
	return routes
}
