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
	DNS        json.RawMessage
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

// encode writes r as version v: before 1.0.0 each address carries its
// family as "version".
func (r *Result) encode(v string) ([]byte, error) {
	out := resultJSON{CNIVersion: v, DNS: r.DNS}
	if len(out.DNS) == 0 || string(out.DNS) == "null" {
		out.DNS = json.RawMessage(`{}`)
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
