package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
)

// Filters is the docker filter set: key → values, sent as
// {"key":{"value":true}}.
type Filters map[string][]string

// Add appends a value for key.
func (f Filters) Add(key, value string) { f[key] = append(f[key], value) }

// encode returns the JSON for the filters query parameter, "" if empty.
func (f Filters) encode() string {
	if len(f) == 0 {
		return ""
	}
	m := make(map[string]map[string]bool, len(f))
	for k, vs := range f {
		m[k] = make(map[string]bool, len(vs))
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m) // maps of strings always marshal
	return string(b)
}

func filterQuery(f Filters) url.Values {
	q := url.Values{}
	if s := f.encode(); s != "" {
		q.Set("filters", s)
	}
	return q
}

// ServerVersion returns GET /version.
func (c *Client) ServerVersion(ctx context.Context) (types.Version, error) {
	var v types.Version
	err := c.getJSON(ctx, "/version", nil, &v)
	return v, err
}

// Info returns GET /info.
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var info system.Info
	err := c.getJSON(ctx, "/info", nil, &info)
	return info, err
}

// NetworkList returns GET /networks.
func (c *Client) NetworkList(ctx context.Context, f Filters) ([]network.Summary, error) {
	var list []network.Summary
	err := c.getJSON(ctx, "/networks", filterQuery(f), &list)
	return list, err
}

// NetworkInspect returns GET /networks/{ref} decoded and raw.
func (c *Client) NetworkInspect(ctx context.Context, ref string) (network.Inspect, []byte, error) {
	var n network.Inspect
	raw, err := c.getJSONRaw(ctx, "/networks/"+url.PathEscape(ref), nil, &n)
	return n, raw, err
}

// NetworkCreate posts req to /networks/create.
func (c *Client) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	var resp network.CreateResponse
	err := c.postJSON(ctx, "/networks/create", nil, req, &resp)
	return resp, err
}

// NetworkRemove deletes a network.
func (c *Client) NetworkRemove(ctx context.Context, ref string) error {
	return c.sendJSON(ctx, http.MethodDelete, "/networks/"+url.PathEscape(ref), nil, nil, nil)
}

// NetworkConnect attaches a container to a network.
func (c *Client) NetworkConnect(ctx context.Context, ref, ctr string, cfg *network.EndpointSettings) error {
	body := network.ConnectOptions{Container: ctr, EndpointConfig: cfg}
	return c.postJSON(ctx, "/networks/"+url.PathEscape(ref)+"/connect", nil, body, nil)
}

// NetworkDisconnect detaches a container from a network.
func (c *Client) NetworkDisconnect(ctx context.Context, ref, ctr string, force bool) error {
	body := network.DisconnectOptions{Container: ctr, Force: force}
	return c.postJSON(ctx, "/networks/"+url.PathEscape(ref)+"/disconnect", nil, body, nil)
}

// NetworkPrune removes unused networks matching f.
func (c *Client) NetworkPrune(ctx context.Context, f Filters) (network.PruneReport, error) {
	var r network.PruneReport
	err := c.postJSON(ctx, "/networks/prune", filterQuery(f), nil, &r)
	return r, err
}

// boolQuery sets key=1 when v is true, as the docker client does.
func boolQuery(q url.Values, key string, v bool) {
	if v {
		q.Set(key, "1")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
