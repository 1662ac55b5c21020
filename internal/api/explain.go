package api

import (
	"net/http"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// explain answers GET /berth/explain?from=&to=&port=&proto=&in=&ipv6=:
// berth's own route (no Docker client calls it), under /berth/ so that
// no Docker path will ever collide with it. The answer is
// network.Explanation as JSON.
func (s *Server) explain(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := network.ExplainRequest{From: q.Get("from"), To: q.Get("to"), Proto: q.Get("proto"), In: q.Get("in"), IPv6: boolValue(r, "ipv6")}
	if req.From == "" || req.To == "" {
		return errdefs.Invalid("explain needs from and to")
	}
	port, _, err := uintValue(r, "port")
	if err != nil {
		return err
	}
	if port > 65535 {
		return errdefs.Invalid("invalid port %d: 1 to 65535", port)
	}
	req.Port = uint16(port)
	ex, err := s.backend.Explain(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ex)
}
