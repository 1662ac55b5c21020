package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Ping is what the daemon says about itself in /_ping's headers.
type Ping struct {
	APIVersion   string
	OSType       string
	Experimental bool
}

// Ping asks the daemon for its API version without negotiating.
func (c *Client) Ping(ctx context.Context) (Ping, error) {
	p, err := c.pingMethod(ctx, http.MethodHead)
	var ce *ConnectError
	if err != nil && !errors.As(err, &ce) {
		// Some servers answer HEAD badly; moby's client retries with GET.
		p, err = c.pingMethod(ctx, http.MethodGet)
	}
	return p, err
}

func (c *Client) pingMethod(ctx context.Context, method string) (Ping, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://berth/_ping", nil)
	if err != nil {
		return Ping{}, fmt.Errorf("build ping: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Ping{}, unwrapTransport(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	// A 500 still carries the headers (the daemon is up but unhealthy).
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
		return Ping{}, fmt.Errorf("ping: unexpected status %d", resp.StatusCode)
	}
	p := Ping{
		APIVersion: resp.Header.Get("Api-Version"),
		OSType:     resp.Header.Get("Ostype"),
	}
	p.Experimental, _ = strconv.ParseBool(resp.Header.Get("Docker-Experimental"))
	return p, nil
}

// negotiate pings once per client and settles the API version on the lower
// of ours and the daemon's.
func (c *Client) negotiate(ctx context.Context) error {
	c.mu.Lock()
	done := c.apiVersion != ""
	c.mu.Unlock()
	if done {
		return nil
	}
	p, err := c.Ping(ctx)
	if err != nil {
		return err
	}
	v := p.APIVersion
	if v == "" {
		v = fallbackAPIVersion
	}
	if versionLess(MaxAPIVersion, v) {
		v = MaxAPIVersion
	}
	c.mu.Lock()
	c.apiVersion = v
	c.mu.Unlock()
	return nil
}

// APIVersion negotiates if needed and returns the version in use.
func (c *Client) APIVersion(ctx context.Context) (string, error) {
	if err := c.negotiate(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.apiVersion, nil
}

// versionLess compares dotted API versions numerically ("1.9" < "1.10").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
