package api

import nettypes "github.com/docker/docker/api/types/network"

// networkInspectWithWarnings is Docker's network inspect with one field
// berth adds: Warnings, the problems the daemon noticed in the host for
// this network since it started (a host route that overlaps its subnet).
// Docker has no such field; clients that decode into Docker's types,
// the docker CLI among them, ignore it, and it is absent when empty, so
// a network without problems looks exactly as Docker shows it.
type networkInspectWithWarnings struct {
	nettypes.Inspect
	Warnings []string `json:"Warnings,omitempty"`
}

func withWarnings(in nettypes.Inspect, warnings []string) networkInspectWithWarnings {
	return networkInspectWithWarnings{Inspect: in, Warnings: warnings}
}
