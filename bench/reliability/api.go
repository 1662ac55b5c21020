// Package reliability holds berth's reliability runs: a crash storm that
// SIGKILLs the daemon at random points of a loop of run / connect /
// disconnect / rm / network create / rm, and a concurrency storm of runs
// and removals through the API. Both run in a testworld and check that
// the store and the kernel agree afterwards. The end-to-end tests
// (test/e2e) run them small and assert; the benchmarks here run them big
// and print their figures.
package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client speaks the Docker Engine API to one daemon's unix socket, with
// no version prefix (the daemon serves its own version).
type Client struct {
	hc *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	// The limit only keeps a hung daemon from hanging the run.
	return &Client{hc: &http.Client{
		Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 256},
		Timeout:   2 * time.Minute,
	}}
}

// Do sends one request; body, if not nil, is sent as JSON (or raw when it
// is a []byte). It returns the status and the response body.
func (c *Client) Do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://berth"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// DoRaw sends body as it is with the given Content-Type ("" for none) and
// returns the status, the response's Content-Type and body.
func (c *Client) DoRaw(method, path, contentType string, body []byte) (int, string, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://berth"+path, rd)
	if err != nil {
		return 0, "", nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), out, err
}

// Want is Do that fails unless the status is one of ok.
func (c *Client) Want(method, path string, body any, ok ...int) ([]byte, error) {
	code, out, err := c.Do(method, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for _, s := range ok {
		if code == s {
			return out, nil
		}
	}
	return out, fmt.Errorf("%s %s: status %d: %s", method, path, code, bytes.TrimSpace(out))
}

// Get decodes a GET's JSON answer into v.
func (c *Client) Get(path string, v any) error {
	out, err := c.Want(http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, v)
}

// Run creates and starts a detached busybox container that sleeps; each
// of publish ("80/tcp") is published on an ephemeral host port.
func (c *Client) Run(name, image, networkMode string, publish ...string) (string, error) {
	hc := map[string]any{"NetworkMode": networkMode}
	body := map[string]any{"Image": image, "Cmd": []string{"sleep", "3600"}, "HostConfig": hc}
	if len(publish) > 0 {
		exposed, bindings := map[string]any{}, map[string]any{}
		for _, p := range publish {
			exposed[p] = struct{}{}
			bindings[p] = []map[string]string{{"HostPort": ""}}
		}
		body["ExposedPorts"], hc["PortBindings"] = exposed, bindings
	}
	out, err := c.Want(http.MethodPost, "/containers/create?name="+name, body, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		return "", err
	}
	_, err = c.Want(http.MethodPost, "/containers/"+created.ID+"/start", nil, http.StatusNoContent)
	return created.ID, err
}

// Remove force-removes a container; a missing one is fine.
func (c *Client) Remove(ref string) error {
	_, err := c.Want(http.MethodDelete, "/containers/"+ref+"?force=1", nil, http.StatusNoContent, http.StatusNotFound)
	return err
}

// Connect joins a container to a network.
func (c *Client) Connect(net, ctr string) error {
	_, err := c.Want(http.MethodPost, "/networks/"+net+"/connect", map[string]any{"Container": ctr}, http.StatusOK)
	return err
}

// Disconnect takes a container off a network.
func (c *Client) Disconnect(net, ctr string) error {
	_, err := c.Want(http.MethodPost, "/networks/"+net+"/disconnect", map[string]any{"Container": ctr}, http.StatusOK)
	return err
}

// CreateNetwork creates a bridge network (subnet "" lets berth choose).
func (c *Client) CreateNetwork(name, subnet string) error {
	body := map[string]any{"Name": name}
	if subnet != "" {
		body["IPAM"] = map[string]any{"Config": []map[string]string{{"Subnet": subnet}}}
	}
	_, err := c.Want(http.MethodPost, "/networks/create", body, http.StatusCreated)
	return err
}

// RemoveNetwork removes a network; a missing one is fine.
func (c *Client) RemoveNetwork(name string) error {
	_, err := c.Want(http.MethodDelete, "/networks/"+name, nil, http.StatusNoContent, http.StatusNotFound)
	return err
}
