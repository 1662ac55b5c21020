package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// transport is the client's http.RoundTripper: HTTP/1.1 over the daemon's
// socket, keep-alive connections kept in a small pool, each request
// written and its response read on the caller's goroutine.
//
// Why not http.Transport: it writes each request from a goroutine of its
// own and reads each response on another, handing both to the caller over
// channels. On these 2-CPU VMs every such hand-off can wake the idle CPU
// (futex and IPI): measured with a 200-byte POST between two processes
// over a unix socket, http.Transport took 340-450 µs (p50) where writing
// and reading in place took 260-360 µs, and a bare ping-pong 180-210 µs.
//
// A request's context, when it ends, cuts the connection's I/O short
// (context.AfterFunc: no goroutine unless it fires), as http.Transport's
// cancellation does.
type transport struct {
	dial func(ctx context.Context) (net.Conn, error)

	mu   sync.Mutex
	idle []*persistConn
}

// maxIdleConns is how many idle connections the pool keeps (the daemon
// closes its side after two minutes without a request).
const maxIdleConns = 4

// persistConn is one connection with its buffers.
type persistConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	for try := 0; ; try++ {
		pc, reused, err := t.conn(req.Context(), try > 0)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, written, err := t.exchange(pc, req)
		if err == nil {
			return resp, nil
		}
		_ = pc.c.Close()
		// A pooled connection the daemon closed while it was idle fails
		// before the request reached it: try once more on a newly dialled
		// one (the pool may hold more such, and a dialled one is never
		// reused), as http.Transport does, if the body can be sent again.
		if !reused || written || req.Context().Err() != nil {
			closeBody(req)
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = body
			req = &r2
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// exchange writes req on pc and reads the response head. written reports
// whether the daemon may have seen the request. On a unix socket a write
// to a peer that closed fails (EPIPE): the request never reached it. A
// write that went through and then an EOF means the daemon read the
// request, or part of it, and closed: only a request that is safe to
// repeat (GET, HEAD) counts as not written then, as http.Transport
// treats it.
func (t *transport) exchange(pc *persistConn, req *http.Request) (resp *http.Response, written bool, err error) {
	stop := context.AfterFunc(req.Context(), func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		if cerr := req.Context().Err(); cerr != nil {
			err = cerr
		}
		return nil, written, err
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(err)
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err)
	}
	written = true
	if _, err := pc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
			written = false
		}
		return fail(err)
	}
	// Interim answers (100 Continue to a request that asked for it) come
	// before the real one.
	for {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	resp.Body = &body{ReadCloser: resp.Body, ctx: req.Context(), conn: pc.c, length: resp.ContentLength, done: func(eof bool) {
		if stop() && eof && keep && req.Context().Err() == nil {
			t.put(pc)
			return
		}
		_ = pc.c.Close()
	}}
	return resp, true, nil
}

// conn returns an idle pooled connection (unless fresh is set), or dials
// a new one.
func (t *transport) conn(ctx context.Context, fresh bool) (pc *persistConn, reused bool, err error) {
	t.mu.Lock()
	if n := len(t.idle); n > 0 && !fresh {
		pc = t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return pc, true, nil
	}
	t.mu.Unlock()
	c, err := t.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	return &persistConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, false, nil
}

func (t *transport) put(pc *persistConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle) >= maxIdleConns {
		_ = pc.c.Close()
		return
	}
	t.idle = append(t.idle, pc)
}

// CloseIdleConnections closes the pooled connections (http.Client calls it).
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		_ = pc.c.Close()
	}
}

// body is a response body that gives its connection back once read to the
// end, or closes it if closed before that; a short body of known length
// (an empty one, a small error) is read to its end by Close instead.
type body struct {
	io.ReadCloser
	ctx    context.Context
	conn   net.Conn
	length int64 // Content-Length, -1 if unknown
	once   sync.Once
	done   func(eof bool)
}

// drainMax is the longest rest of a body Close reads to keep the connection.
const drainMax = 4 << 10

// drainWait bounds how long Close waits for that rest. The daemon writes a
// short answer whole, so a rest that takes longer is a daemon that stalled
// mid-answer: the connection is closed rather than kept.
var drainWait = time.Second // a var for the test that proves a cancel skips it

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(func() { b.done(true) })
	case err != nil && b.ctx.Err() != nil:
		err = b.ctx.Err() // the cancellation, not the deadline that carried it
	}
	return n, err
}

func (b *body) Close() error {
	if b.length >= 0 && b.length <= drainMax {
		// Only while the body is not finished: once read to its end, the
		// connection may already be pooled, or in use by another request.
		b.once.Do(func() {
			_ = b.conn.SetReadDeadline(time.Now().Add(drainWait))
			if b.ctx.Err() != nil {
				// The request's end set a past deadline to cut the I/O
				// short, which the line above may have overwritten.
				_ = b.conn.SetReadDeadline(time.Unix(1, 0))
			}
			_, err := io.Copy(io.Discard, b.ReadCloser)
			if err == nil {
				_ = b.conn.SetReadDeadline(time.Time{}) // the connection may be kept
			}
			b.done(err == nil)
		})
		return b.ReadCloser.Close()
	}
	// Close the connection first: it ends a stream the daemon is still
	// sending, which the body's own Close would read to its end.
	b.once.Do(func() { b.done(false) })
	_ = b.ReadCloser.Close()
	return nil
}
