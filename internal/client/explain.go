package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/berth-net/berth/internal/network"
)

// Explain asks the daemon what its firewall does to a new connection
// between two ends (berth's own route, GET /berth/explain).
func (c *Client) Explain(ctx context.Context, req network.ExplainRequest) (network.Explanation, error) {
	q := url.Values{"from": {req.From}, "to": {req.To}}
	if req.Proto != "" {
		q.Set("proto", req.Proto)
	}
	if req.Port != 0 {
		q.Set("port", strconv.Itoa(int(req.Port)))
	}
	if req.In != "" {
		q.Set("in", req.In)
	}
	if req.IPv6 {
		q.Set("ipv6", "1")
	}
	var out network.Explanation
	err := c.getJSON(ctx, "/berth/explain", q, &out)
	return out, err
}
