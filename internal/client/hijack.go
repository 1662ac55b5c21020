package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// Stream content types the daemon announces on an upgraded connection.
const (
	MediaTypeRawStream         = "application/vnd.docker.raw-stream"
	MediaTypeMultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// HijackedConn is the raw, bidirectional connection left after a
// successful upgrade: reads return the daemon's output (multiplexed unless
// MediaType says raw), writes go to the process's stdin.
type HijackedConn struct {
	conn      net.Conn
	reader    *bufio.Reader // holds bytes read past the response headers
	MediaType string
}

// Read reads the daemon's output.
func (h *HijackedConn) Read(p []byte) (int, error) { return h.reader.Read(p) }

// Write sends stdin.
func (h *HijackedConn) Write(p []byte) (int, error) { return h.conn.Write(p) }

// CloseWrite half-closes the connection: the process sees EOF on stdin
// while its output keeps flowing back.
func (h *HijackedConn) CloseWrite() error {
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes both directions.
func (h *HijackedConn) Close() error { return h.conn.Close() }

// Multiplexed reports whether output is framed by stdcopy headers.
func (h *HijackedConn) Multiplexed() bool { return h.MediaType == MediaTypeMultiplexedStream }

// hijack POSTs body (JSON, if not nil) to path asking for a protocol
// upgrade, and returns the raw connection once the daemon answers 101. It
// dials its own connection rather than going through http.Client so that
// nothing else ever reads from or reuses it.
func (c *Client) hijack(ctx context.Context, path string, query url.Values, body any) (*HijackedConn, error) {
	if err := c.negotiate(ctx); err != nil {
		return nil, err
	}
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", path, err)
		}
		payload = b
	}
	req, err := c.newRequest(ctx, request{method: http.MethodPost, path: path, query: query, body: bytes.NewReader(payload)})
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")

	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	h, err := upgrade(conn, req)
	if err != nil {
		conn.Close()
		c.log.Debug("api upgrade failed", "path", req.URL.Path, "err", err)
		return nil, err
	}
	c.log.Debug("api upgrade", "path", req.URL.Path, "media_type", h.MediaType)
	return h, nil
}

func upgrade(conn net.Conn, req *http.Request) (*HijackedConn, error) {
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.URL.Path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("read upgrade response for %s: %w", req.URL.Path, err)
	}
	switch resp.StatusCode {
	case http.StatusSwitchingProtocols:
	case http.StatusOK:
		// Legacy servers answer 200 and stream raw; nothing to do.
	default:
		if resp.StatusCode >= 400 {
			return nil, responseError(resp)
		}
		resp.Body.Close()
		return nil, fmt.Errorf("unable to upgrade to tcp, received %d", resp.StatusCode)
	}
	mt := resp.Header.Get("Content-Type")
	if mt == "" {
		mt = MediaTypeRawStream
	}
	return &HijackedConn{conn: conn, reader: br, MediaType: mt}, nil
}

// compile-time checks: the CLI treats a HijackedConn as a plain stream.
var _ io.ReadWriteCloser = (*HijackedConn)(nil)
