package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/docker/docker/api/types/filters"
	nettypes "github.com/docker/docker/api/types/network"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// networkListFilters are the keys docker network ls may send.
var networkListFilters = map[string]bool{
	"dangling": true, "driver": true, "id": true, "label": true,
	"name": true, "scope": true, "type": true,
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, networkListFilters)
	if err != nil {
		return err
	}
	if err := checkNetworkTypeFilter(args); err != nil {
		return err
	}
	nets, err := s.backend.Networks(r.Context())
	if err != nil {
		return err
	}
	out := []nettypes.Summary{}
	for _, n := range nets {
		ok, err := s.networkMatches(r, n, args)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, networkResource(n, nil))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func checkNetworkTypeFilter(args filters.Args) error {
	return args.WalkValues("type", func(v string) error {
		if v != "custom" && v != "builtin" {
			return errdefs.Invalid("invalid filter: 'type'='%s'", v)
		}
		return nil
	})
}

// networkMatches applies Docker's network filters: name and id are regular
// expressions (so a substring or prefix matches), driver is exact, label
// matches "key" or "key=value".
func (s *Server) networkMatches(r *http.Request, n *network.Network, args filters.Args) (bool, error) {
	switch {
	case !args.Match("name", n.Name), !args.Match("id", n.ID),
		!args.ExactMatch("driver", n.Driver), !args.MatchKVList("label", n.Labels),
		args.Contains("scope") && !args.ExactMatch("scope", "local"):
		return false, nil
	}
	if args.Contains("type") {
		kind := "custom"
		if n.Predefined {
			kind = "builtin"
		}
		if !args.ExactMatch("type", kind) {
			return false, nil
		}
	}
	if len(args.Get("dangling")) == 0 {
		return true, nil
	}
	dangling, err := danglingFilter(args.Get("dangling"))
	if err != nil {
		return false, err
	}
	eps, err := s.backend.NetworkEndpoints(r.Context(), n.ID)
	if err != nil {
		return false, err
	}
	unused := !n.Predefined && len(eps) == 0
	return unused == dangling, nil
}

// danglingFilter is network ls's dangling filter, as moby's
// FilterNetworks reads it: one value, true or 1, false or 0.
func danglingFilter(values []string) (bool, error) {
	if len(values) > 1 {
		return false, errdefs.Invalid(`got more than one value for filter key "dangling"`)
	}
	switch values[0] {
	case "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errdefs.Invalid(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`)
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	if v := r.URL.Query().Get("verbose"); v != "" && v != "true" && v != "false" && v != "1" && v != "0" {
		return errdefs.Invalid("invalid value for verbose: %s", v)
	}
	ref := r.PathValue("id")
	if scope := r.URL.Query().Get("scope"); scope != "" && scope != "local" {
		return errdefs.NotFound("network %s not found", ref) // every berth network is local
	}
	n, err := s.backend.Network(r.Context(), ref)
	if amb := (*network.AmbiguousError)(nil); errors.As(err, &amb) {
		return errdefs.Invalid("%s", amb.InspectWords())
	}
	if err != nil {
		return err
	}
	eps, err := s.backend.NetworkEndpoints(r.Context(), n.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, withWarnings(networkResource(n, eps), n.Warnings))
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var body nettypes.CreateRequest
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	if versionBefore(r, "1.48") {
		body.EnableIPv4 = nil // added in 1.48; older clients cannot mean it
	}
	body.Options = withNetworkDefaults(body, s.backend.NetworkCreateDefaults)
	req, err := networkCreateRequest(body)
	if err != nil {
		return err
	}
	n, err := s.backend.CreateNetwork(r.Context(), req)
	if err != nil {
		return err
	}
	// For API clients: the docker CLI (28.2) prints the ID alone.
	return writeJSON(w, http.StatusCreated, nettypes.CreateResponse{ID: n.ID, Warning: strings.Join(n.Warnings, "\n")})
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.RemoveNetwork(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) error {
	var body nettypes.ConnectOptions
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	if body.Container == "" {
		return errdefs.Invalid("no container specified: set Container to a container's name or ID")
	}
	req, err := endpointRequest(body.EndpointConfig, "", true)
	if err != nil {
		return err
	}
	if err := s.backend.ConnectNetwork(r.Context(), r.PathValue("id"), body.Container, req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) error {
	var body nettypes.DisconnectOptions
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	if body.Container == "" {
		return errdefs.Invalid("no container specified: set Container to a container's name or ID")
	}
	if err := s.backend.DisconnectNetwork(r.Context(), r.PathValue("id"), body.Container, body.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, map[string]bool{"label": true, "label!": true, "until": true})
	if err != nil {
		return err
	}
	until, err := pruneUntil(args)
	if err != nil {
		return err
	}
	deleted, err := s.backend.PruneNetworks(r.Context(), network.PruneFilter{Labels: args.Get("label"), NotLabels: args.Get("label!"), Until: until})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nettypes.PruneReport{NetworksDeleted: deleted})
}
