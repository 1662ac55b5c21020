package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/docker/docker/api/types/container"
)

// ContainerCreate posts req to /containers/create?name=.
func (c *Client) ContainerCreate(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var resp container.CreateResponse
	err := c.postJSON(ctx, "/containers/create", q, req, &resp)
	return resp, err
}

// ContainerList returns GET /containers/json.
func (c *Client) ContainerList(ctx context.Context, all bool, f Filters) ([]container.Summary, error) {
	return c.ContainerListSized(ctx, all, false, f)
}

// ContainerListSized is ContainerList that, with size, asks for each
// container's SizeRw and SizeRootFs (ps -s).
func (c *Client) ContainerListSized(ctx context.Context, all, size bool, f Filters) ([]container.Summary, error) {
	q := filterQuery(f)
	boolQuery(q, "all", all)
	boolQuery(q, "size", size)
	var list []container.Summary
	err := c.getJSON(ctx, "/containers/json", q, &list)
	return list, err
}

// ContainerInspect returns GET /containers/{ref}/json decoded and raw.
func (c *Client) ContainerInspect(ctx context.Context, ref string) (container.InspectResponse, []byte, error) {
	return c.ContainerInspectSized(ctx, ref, false)
}

// ContainerInspectSized is ContainerInspect that, with size, asks for
// SizeRw and SizeRootFs (inspect -s).
func (c *Client) ContainerInspectSized(ctx context.Context, ref string, size bool) (container.InspectResponse, []byte, error) {
	var q url.Values
	if size {
		q = url.Values{"size": {"1"}}
	}
	var ctr container.InspectResponse
	raw, err := c.getJSONRaw(ctx, "/containers/"+url.PathEscape(ref)+"/json", q, &ctr)
	return ctr, raw, err
}

// ContainerStart starts a container.
func (c *Client) ContainerStart(ctx context.Context, ref string) error {
	return c.postJSON(ctx, "/containers/"+url.PathEscape(ref)+"/start", nil, nil, nil)
}

// ContainerStop stops a container; timeout nil leaves it to the daemon.
func (c *Client) ContainerStop(ctx context.Context, ref string, timeout *int, signal string) error {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", itoa(*timeout))
	}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.postJSON(ctx, "/containers/"+url.PathEscape(ref)+"/stop", q, nil, nil)
}

// ContainerKill sends signal ("" means the daemon's default, SIGKILL).
func (c *Client) ContainerKill(ctx context.Context, ref, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.postJSON(ctx, "/containers/"+url.PathEscape(ref)+"/kill", q, nil, nil)
}

// ContainerRename gives a container a new name.
func (c *Client) ContainerRename(ctx context.Context, ref, name string) error {
	q := url.Values{}
	q.Set("name", name)
	return c.postJSON(ctx, "/containers/"+url.PathEscape(ref)+"/rename", q, nil, nil)
}

// ContainerRemove deletes a container.
func (c *Client) ContainerRemove(ctx context.Context, ref string, force bool) error {
	q := url.Values{}
	boolQuery(q, "force", force)
	return c.sendJSON(ctx, http.MethodDelete, "/containers/"+url.PathEscape(ref), q, nil, nil)
}

// ContainerResize sets the container's tty size.
func (c *Client) ContainerResize(ctx context.Context, ref string, height, width uint) error {
	return c.postJSON(ctx, "/containers/"+url.PathEscape(ref)+"/resize", sizeQuery(height, width), nil, nil)
}

func sizeQuery(height, width uint) url.Values {
	return url.Values{"h": {fmt.Sprint(height)}, "w": {fmt.Sprint(width)}}
}

// WaitResult is the outcome of a wait: the exit status, or why waiting failed.
type WaitResult struct {
	StatusCode int
	Err        error
}

// ContainerWait sends POST /containers/{ref}/wait and returns once the
// daemon has answered with headers, so a start issued afterwards cannot
// race the wait. The channel yields one result when the condition is met.
func (c *Client) ContainerWait(ctx context.Context, ref, condition string) (<-chan WaitResult, error) {
	q := url.Values{}
	if condition != "" {
		q.Set("condition", condition)
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/containers/" + url.PathEscape(ref) + "/wait", query: q})
	if err != nil {
		return nil, err
	}
	ch := make(chan WaitResult, 1)
	go func() {
		defer resp.Body.Close()
		ch <- decodeWait(resp.Body)
	}()
	return ch, nil
}

func decodeWait(r io.Reader) WaitResult {
	var w container.WaitResponse
	if err := json.NewDecoder(r).Decode(&w); err != nil {
		return WaitResult{StatusCode: -1, Err: fmt.Errorf("wait: %w", err)}
	}
	if w.Error != nil && w.Error.Message != "" {
		return WaitResult{StatusCode: int(w.StatusCode), Err: errors.New(w.Error.Message)}
	}
	return WaitResult{StatusCode: int(w.StatusCode)}
}

// AttachOptions say which streams to attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// ContainerAttach hijacks POST /containers/{ref}/attach?stream=1.
func (c *Client) ContainerAttach(ctx context.Context, ref string, o AttachOptions) (*HijackedConn, error) {
	q := url.Values{"stream": {"1"}}
	boolQuery(q, "stdin", o.Stdin)
	boolQuery(q, "stdout", o.Stdout)
	boolQuery(q, "stderr", o.Stderr)
	return c.hijack(ctx, "/containers/"+url.PathEscape(ref)+"/attach", q, nil)
}

// LogsOptions select what ContainerLogs returns.
type LogsOptions struct {
	Follow     bool
	Tail       string // "all" or a number; "" means all
	Timestamps bool
	// Details puts each entry's attributes before it (json-file's labels,
	// env and tag options).
	Details bool
	// Since and Until bound the entries' times (zero: none).
	Since, Until time.Time
}

// ContainerLogs returns the log stream (multiplexed unless the container
// has a tty). The caller closes it.
func (c *Client) ContainerLogs(ctx context.Context, ref string, o LogsOptions) (io.ReadCloser, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}}
	boolQuery(q, "follow", o.Follow)
	boolQuery(q, "timestamps", o.Timestamps)
	boolQuery(q, "details", o.Details)
	if o.Tail != "" {
		q.Set("tail", o.Tail)
	}
	// Seconds.nanoseconds, as the docker CLI sends them.
	for k, t := range map[string]time.Time{"since": o.Since, "until": o.Until} {
		if !t.IsZero() {
			q.Set(k, fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()))
		}
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/containers/" + url.PathEscape(ref) + "/logs", query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ExecCreate creates an exec instance and returns its ID.
func (c *Client) ExecCreate(ctx context.Context, ctr string, o container.ExecOptions) (string, error) {
	var resp container.ExecCreateResponse
	if err := c.postJSON(ctx, "/containers/"+url.PathEscape(ctr)+"/exec", nil, o, &resp); err != nil {
		return "", err
	}
	if resp.ID == "" {
		return "", errors.New("exec ID empty")
	}
	return resp.ID, nil
}

// ExecStartDetached starts an exec without attaching to it.
func (c *Client) ExecStartDetached(ctx context.Context, id string, tty bool) error {
	body := container.ExecStartOptions{Detach: true, Tty: tty}
	return c.postJSON(ctx, "/exec/"+url.PathEscape(id)+"/start", nil, body, nil)
}

// ExecAttach starts an exec and hijacks its streams.
func (c *Client) ExecAttach(ctx context.Context, id string, tty bool, size *[2]uint) (*HijackedConn, error) {
	body := container.ExecStartOptions{Tty: tty, ConsoleSize: size}
	return c.hijack(ctx, "/exec/"+url.PathEscape(id)+"/start", nil, body)
}

// ExecResize sets the exec's tty size.
func (c *Client) ExecResize(ctx context.Context, id string, height, width uint) error {
	return c.postJSON(ctx, "/exec/"+url.PathEscape(id)+"/resize", sizeQuery(height, width), nil, nil)
}

// ExecInspect returns GET /exec/{id}/json.
func (c *Client) ExecInspect(ctx context.Context, id string) (container.ExecInspect, error) {
	var e container.ExecInspect
	err := c.getJSON(ctx, "/exec/"+url.PathEscape(id)+"/json", nil, &e)
	return e, err
}
