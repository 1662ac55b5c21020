// Package cni is berth as a CNI plugin (cmd/berth-cni): what a container
// runtime that speaks CNI (containerd, CRI-O, Podman's CNI backend, Kubernetes
// through them) calls to put a container on a bridge. It takes the
// configuration of the reference `bridge` plugin with `host-local` IPAM and
// the `portMappings` capability of the `portmap` plugin, and does in one
// process what those three do in three: the same driver as the daemon's
// (internal/driver/bridge) for the bridge and the veth pair, addresses from
// a state file of its own, masquerade and published ports as elements of
// nftables maps in a table of its own ("inet berth-cni").
//
// The package owns that table, its bridges (tagged "berth:cni-network:…")
// and veths ("berth:cni:…"), and its data directory; it never touches the
// daemon's table, links or store. Pure parts (configuration, versions,
// results, the address state) are here without a build tag; what touches
// the kernel is in _linux.go files.
package cni
