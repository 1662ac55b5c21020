// Package client is berth's Docker Engine API client: HTTP over the
// daemon's unix socket, API version negotiation through /_ping, versioned
// paths, daemon errors decoded into errdefs kinds, and hijacked streams for
// attach and exec. It speaks Docker's wire types (docker/docker api/types
// v28) because it sits at the edge, as the docker CLI does; nothing below
// internal/cli may import it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/version"
)

// DefaultHost is where the daemon listens unless told otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// HostEnv names the environment variable that overrides DefaultHost.
const HostEnv = "BERTH_HOST"

// MaxAPIVersion is the highest API version this client speaks.
const MaxAPIVersion = version.APIVersion

// fallbackAPIVersion is what moby's client assumes when a ping answer has
// no Api-Version header.
const fallbackAPIVersion = "1.24"

// Client talks to one daemon. It is safe for concurrent use.
type Client struct {
	host     string // as given, unix:///path
	sockPath string
	http     *http.Client
	log      *slog.Logger

	mu         sync.Mutex
	apiVersion string // negotiated; "" until the first request
}

// ResolveHost picks the daemon address: the flag if set, else $BERTH_HOST,
// else DefaultHost.
func ResolveHost(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv(HostEnv); env != "" {
		return env
	}
	return DefaultHost
}

// New returns a client for host, which must be unix:///path. Requests are
// logged at debug level to log (nil: nowhere).
func New(host string, log *slog.Logger) (*Client, error) {
	path, err := parseHost(host)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{host: host, sockPath: path, log: log}
	c.http = &http.Client{Transport: &transport{dial: c.dial}}
	return c, nil
}

func parseHost(host string) (string, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return "", errdefs.Invalid("invalid host %q: berth speaks only unix:///path", host)
	}
	return path, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sockPath)
	if err != nil {
		return nil, &ConnectError{Host: c.host, Err: err}
	}
	return conn, nil
}

// ConnectError says the daemon could not be reached at all.
type ConnectError struct {
	Host string
	Err  error
}

func (e *ConnectError) Error() string {
	if errors.Is(e.Err, fs.ErrPermission) {
		// The socket is there but its mode keeps this user out: say so, as docker does.
		return fmt.Sprintf("permission denied while trying to connect to the berth daemon socket at %s: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", e.Host)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// ResponseError is an error status from the daemon with the message it sent.
type ResponseError struct {
	StatusCode int
	Message    string
}

// Error prints the message the way the docker CLI does.
func (e *ResponseError) Error() string {
	return "Error response from daemon: " + e.Message
}

// responseError builds the error for a response with status >= 400,
// reading the {"message"} body. The body is consumed and closed.
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	msg := decodeMessage(body)
	if msg == "" {
		msg = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return errdefs.WithKind(errdefs.KindOfHTTPStatus(resp.StatusCode), &ResponseError{StatusCode: resp.StatusCode, Message: msg})
}

func decodeMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimSpace(string(body))
}

// request describes one API call.
type request struct {
	method string
	path   string // escaped (each name through url.PathEscape), without version prefix, starting with "/"
	query  url.Values
	body   io.Reader
	header http.Header
}

// do sends r with the negotiated version prefix and returns the response if
// its status is below 400 (a 304, "already started" or "already stopped",
// is a success, as the docker client counts it); otherwise the decoded
// error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	if err := c.negotiate(ctx); err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.Debug("api request failed", "method", r.method, "path", req.URL.Path, "err", err)
		return nil, unwrapTransport(err)
	}
	c.log.Debug("api request", "method", r.method, "path", req.URL.Path, "query", req.URL.RawQuery,
		"status", resp.StatusCode, "elapsed", time.Since(start))
	if resp.StatusCode >= 400 {
		return nil, responseError(resp)
	}
	return resp, nil
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	// r.path is escaped: a name's "/" (a network "ci/abc") arrives as
	// "%2F" and stays one segment.
	escaped := c.versioned(r.path)
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", r.method, r.path, err)
	}
	u := url.URL{Scheme: "http", Host: "berth", Path: path, RawPath: escaped}
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "berth-cli/"+version.Version)
	return req, nil
}

func (c *Client) versioned(path string) string {
	c.mu.Lock()
	v := c.apiVersion
	c.mu.Unlock()
	if v == "" {
		return path
	}
	return "/v" + v + path
}

// unwrapTransport keeps our ConnectError visible through url.Error's
// "Post http://berth/...:" prefix, which would only confuse users.
func unwrapTransport(err error) error {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	return err
}

// getJSON decodes the body of GET path into out.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.getJSONRaw(ctx, path, query, out)
	return err
}

// getJSONRaw is getJSON that also returns the raw body, for inspect.
func (c *Client) getJSONRaw(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return raw, nil
}

// postJSON posts in (if not nil) as JSON and decodes the answer into out
// (if not nil).
func (c *Client) postJSON(ctx context.Context, path string, query url.Values, in, out any) error {
	return c.sendJSON(ctx, http.MethodPost, path, query, in, out)
}

func (c *Client) sendJSON(ctx context.Context, method, path string, query url.Values, in, out any) error {
	r := request{method: method, path: path, query: query}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		r.body = bytes.NewReader(b)
		r.header = http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
