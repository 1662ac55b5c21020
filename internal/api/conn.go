package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// How the server reads requests off a connection.
//
// Every connection starts on a loop of berth's own (serveConn). It looks
// at each request line: a request for one of directRoutes (short requests
// with a body-sized answer: ping, inspect, list, create, connect, ...) is
// read, handled and answered on that goroutine; at the first request for
// anything else (a stream, a hijack, a long poll, a route it does not
// know) the connection, with what is already buffered, goes to net/http,
// which answers that request with "Connection: close" (closeAfterAnswer):
// the client's next request comes on a fresh connection, on this loop
// again. Both call the same handler: only the transport differs.
//
// Why: net/http starts a goroutine for every request (the background read
// that notices a client going away) and, after the response, waits for it
// to stop. On these 2-CPU VMs a goroutine start wakes the idle CPU
// (futex and IPI) and the wait takes a second hand-off: measured with a
// 200-byte POST between two processes over a unix socket, net/http answers
// in 340-450 µs (p50) where a loop like this one answers in 280-320 µs,
// and a bare 300-byte ping-pong takes 180-210 µs. That difference is about
// a fifth of what a `network connect` adds to the kernel's own work. Docker
// clients use one keep-alive connection per process, so a `docker network
// connect` is served here from start to end.
//
// What the direct loop gives up: a request's context is not cancelled when
// its client goes away (the routes are short, and the daemon finishes the
// work anyway, as Docker's does), and it sets no socket deadlines per
// request (each can wake the runtime's poller); a sweeper closes
// connections idle for longer than idleTimeout, or stuck in a request's
// headers for longer than headerTimeout, instead.

// directRoutes are the requests served by the direct loop: method and
// path (without the /vX.Y prefix) split at "/", "*" standing for one
// path segment.
var directRoutes = func() []directRoute {
	var rs []directRoute
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/_ping"}, {http.MethodHead, "/_ping"},
		{http.MethodGet, "/version"}, {http.MethodGet, "/info"},
		{http.MethodGet, "/networks"}, {http.MethodGet, "/networks/*"},
		{http.MethodPost, "/networks/create"}, {http.MethodPost, "/networks/prune"},
		{http.MethodDelete, "/networks/*"},
		{http.MethodPost, "/networks/*/connect"}, {http.MethodPost, "/networks/*/disconnect"},
		{http.MethodPost, "/containers/create"}, {http.MethodGet, "/containers/json"},
		{http.MethodGet, "/containers/*/json"},
		{http.MethodPost, "/containers/*/start"}, {http.MethodPost, "/containers/*/kill"},
		{http.MethodDelete, "/containers/*"}, {http.MethodPost, "/containers/*/exec"},
		{http.MethodGet, "/exec/*/json"},
	} {
		rs = append(rs, directRoute{r.method, strings.Split(r.path, "/")})
	}
	return rs
}()

type directRoute struct {
	method   string
	segments []string
}

const (
	idleTimeout   = 2 * time.Minute  // a keep-alive connection with no request
	headerTimeout = 30 * time.Second // from a request's first byte to its last header
	// maxHeaderBytes bounds a request's line and headers (net/http's default).
	maxHeaderBytes = 1 << 20 // (plus what the reader had buffered, up to 4 KB)
	// maxDrainBytes is how much of a body the handler left unread is read
	// and dropped to keep the connection; past it, the connection closes.
	maxDrainBytes = 256 << 10
	// lingerTime is how long a connection the loop ends after an answer
	// keeps reading, and dropping, what the client still sends
	// (lingerClose); lingerMaxBytes bounds what it drops.
	lingerTime     = 500 * time.Millisecond
	lingerMaxBytes = 64 << 20
)

// isDirect reports whether the request line asks for one of directRoutes
// over HTTP/1.1.
func isDirect(line []byte) bool {
	method, rest, ok := strings.Cut(strings.TrimSuffix(string(line), "\r"), " ")
	if !ok {
		return false
	}
	target, proto, ok := strings.Cut(rest, " ")
	if !ok || proto != "HTTP/1.1" || !strings.HasPrefix(target, "/") {
		return false
	}
	path, _, _ := strings.Cut(target, "?")
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		path = m[2]
	}
	segments := strings.Split(path, "/")
	for _, r := range directRoutes {
		if r.method == method && matchSegments(r.segments, segments) {
			return true
		}
	}
	return false
}

// matchSegments reports whether path matches pattern segment by segment;
// "*" in the pattern matches any one non-empty segment.
func matchSegments(pattern, path []string) bool {
	if len(pattern) != len(path) {
		return false
	}
	for i, p := range pattern {
		if p != path[i] && (p != "*" || path[i] == "") {
			return false
		}
	}
	return true
}

// connState is where a direct connection is: new (no request yet),
// waiting for a request, reading one's headers, handling it, handed to
// net/http, or closed by the sweeper.
type connState int

const (
	stateNew connState = iota
	stateIdle
	stateHeaders
	stateActive
	stateHandedOff
	stateClosed
)

// directConn is one connection on the direct loop. Its state changes
// under mu, so that the sweeper closes a connection only in a state it
// may close it in, and the loop never goes on with one the sweeper
// closed (a request already buffered would run with nobody to answer).
type directConn struct {
	c     net.Conn
	mu    sync.Mutex
	state connState
	since time.Time // when it entered state
}

// to moves dc to st, unless the sweeper has closed it.
func (dc *directConn) to(st connState) bool {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.state == stateClosed {
		return false
	}
	dc.state, dc.since = st, time.Now()
	return true
}

// closeIf closes dc if it is waiting (new, idle, or in a request's
// headers) and stale says so of how long it has been.
func (dc *directConn) closeIf(now time.Time, stale func(connState, time.Duration) bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	switch dc.state {
	case stateNew, stateIdle, stateHeaders:
		if stale(dc.state, now.Sub(dc.since)) {
			dc.state = stateClosed
			_ = dc.c.Close()
		}
	}
}

// handoffListener gives net/http the connections the direct loop passes
// on.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// push hands c to net/http, or closes it if net/http has stopped.
func (l *handoffListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// prefixConn is a connection whose first bytes were already read into r.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection if it can (a hijacked stream ends
// its output so).
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// serveConn runs the direct loop on c until the client closes it, a
// request is not direct (c goes to handoff), or the server shuts down.
func (s *Server) serveConn(c net.Conn, handoff func(net.Conn)) {
	// lr bounds what a request's line and headers may take; it is lifted
	// for bodies and for net/http.
	lr := &io.LimitedReader{R: c, N: math.MaxInt64}
	dc := &directConn{c: c, state: stateNew, since: time.Now()}
	if !s.trackConn(dc, true) {
		_ = c.Close()
		return
	}
	handedOff, linger := false, false
	defer func() {
		s.trackConn(dc, false)
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			s.log.Error("api connection panicked", "panic", p)
		}
		switch {
		case handedOff:
		case linger:
			lingerClose(c)
		default:
			_ = c.Close()
		}
	}()
	br := bufio.NewReaderSize(lr, 4<<10)
	bw := bufio.NewWriterSize(c, 4<<10)
	for {
		line, err := peekLine(br)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return // closed, or idle too long
		}
		if err != nil || !isDirect(line) {
			if !dc.to(stateHandedOff) {
				return
			}
			lr.N = math.MaxInt64
			handedOff = true
			s.trackConn(dc, false)
			handoff(&prefixConn{Conn: c, r: br})
			return
		}
		if !dc.to(stateHeaders) {
			return
		}
		lr.N = maxHeaderBytes
		req, err := http.ReadRequest(br)
		headersTooLarge := lr.N <= 0
		lr.N = math.MaxInt64
		if err != nil {
			code := http.StatusBadRequest
			switch {
			case headersTooLarge:
				code = http.StatusRequestHeaderFieldsTooLarge
			case strings.Contains(err.Error(), "unsupported transfer encoding"):
				code = http.StatusNotImplemented // as net/http answers it
			}
			writeStatusAndClose(bw, code)
			linger = true
			return
		}
		if !dc.to(stateActive) {
			return
		}
		if !s.serveDirect(dc, req, bw) {
			linger = true // answered, and maybe not read to its end
			return
		}
		if !dc.to(stateIdle) {
			return
		}
	}
}

// lingerClose ends a connection the loop closes after an answer, while
// the client may still be sending (a body too large or left unread, a
// refused request): it sends FIN after the answer, then reads and drops
// what still comes, for up to lingerTime, before it closes. Closed at
// once with unread bytes queued, the socket would send RST instead, which
// can destroy the answer before the client reads it: the client saw
// "broken pipe" where a 413 was due. net/http waits the same way
// (closeWriteAndWait).
func lingerClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c, lingerMaxBytes)
	_ = c.Close()
}

// peekLine returns the request line buffered in br (without "\n"), reading
// until it is all there; bufio.ErrBufferFull if it is longer than br's
// buffer.
func peekLine(br *bufio.Reader) ([]byte, error) {
	n := 1
	for {
		_, err := br.Peek(n) // waits for n bytes; Peek returns just those
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return b[:i], nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == br.Size() {
			return nil, bufio.ErrBufferFull
		}
		n = len(b) + 1
	}
}

// writeStatusAndClose answers a request the loop refuses, as net/http
// does: the status as a text body, and the connection closes.
func writeStatusAndClose(bw *bufio.Writer, code int) {
	text := http.StatusText(code)
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%d %s",
		code, text, len(strconv.Itoa(code))+1+len(text), code, text)
	_ = bw.Flush()
}

// validRequest makes the checks net/http's server makes beyond
// http.ReadRequest (which refuses a second Host and moves the one Host
// into req.Host): a Host present and well formed, valid header names and
// values.
func validRequest(req *http.Request) bool {
	if req.Host == "" || !validHost(req.Host) {
		return false
	}
	for k, vv := range req.Header {
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return false
		}
		for _, v := range vv {
			if strings.IndexFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0 {
				return false
			}
		}
	}
	return true
}

// isTokenChar reports whether r may appear in a header name (RFC 9110
// tchar).
func isTokenChar(r rune) bool {
	return r < 0x7f && r > ' ' && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// validHost reports whether h is a possible Host value: the characters of
// a host name, an IP literal and a port (net/http's check, less its
// allowance for UTF-8 names, which a local socket never sees).
func validHost(h string) bool {
	return strings.IndexFunc(h, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("!$%&'()*+,-.:;=[]_~", r))
	}) < 0
}

// serveDirect handles one request and answers it; it reports whether the
// connection can take another.
func (s *Server) serveDirect(dc *directConn, req *http.Request, bw *bufio.Writer) bool {
	if !validRequest(req) {
		writeStatusAndClose(bw, http.StatusBadRequest)
		return false
	}
	if e := req.Header.Get("Expect"); e != "" {
		if !strings.EqualFold(e, "100-continue") {
			writeStatusAndClose(bw, http.StatusExpectationFailed)
			return false
		}
		if req.ContentLength != 0 {
			// Sent at once rather than at the body's first read (as
			// net/http does): the handlers read every body they are given.
			_, _ = bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if bw.Flush() != nil {
				return false
			}
		}
	}
	req.RemoteAddr = dc.c.RemoteAddr().String()
	body := &requestBody{r: req.Body}
	req.Body = body
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &directResponse{bw: bw, req: req.WithContext(ctx), header: http.Header{}}
	s.handler.ServeHTTP(w, w.req)
	keep := !req.Close && !s.closing() && body.drain()
	return w.finish(!keep) == nil && keep
}

// requestBody is a request's body as the handler sees it. Its Close does
// not read on (the body of http.ReadRequest would read the rest, however
// long, or wait for it); drain decides what the rest costs. It remembers
// a read error: the connection is then out of step and must close.
type requestBody struct {
	r      io.ReadCloser
	err    error
	closed bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *requestBody) Close() error {
	b.closed = true
	return nil
}

// drain reads what the handler left of the body, up to maxDrainBytes, and
// reports whether the body ended well there (so that the next request can
// be read).
func (b *requestBody) drain() bool {
	if b.err != nil {
		return false
	}
	_, err := io.CopyN(io.Discard, b.r, maxDrainBytes+1)
	return err == io.EOF
}

// directResponse is the http.ResponseWriter of the direct loop. It keeps
// the body and writes status, headers and body in one write when the
// handler returns; a Flush sends what there is and goes on in chunks.
type directResponse struct {
	bw          *bufio.Writer
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
	streaming   bool // the header is sent; chunked says how the body goes
	chunked     bool
	err         error
}

func (w *directResponse) Header() http.Header { return w.header }

func (w *directResponse) WriteHeader(code int) {
	if w.wroteHeader || w.streaming {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return // informational answers are not used by this API
	}
	w.wroteHeader, w.status = true, code
}

func (w *directResponse) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.streaming {
		return w.body.Write(p)
	}
	if w.req.Method == http.MethodHead || len(p) == 0 {
		return len(p), nil
	}
	if w.chunked {
		fmt.Fprintf(w.bw, "%x\r\n", len(p))
	}
	n, err := w.bw.Write(p)
	if w.chunked && err == nil {
		_, err = w.bw.WriteString("\r\n")
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

// FlushError sends the header and the body so far (http.ResponseController
// finds it).
func (w *directResponse) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.streaming {
		w.streaming = true
		_, hasLength := w.header["Content-Length"]
		w.chunked = !hasLength && bodyAllowed(w.status) && w.req.Method != http.MethodHead
		if w.chunked {
			w.header.Set("Transfer-Encoding", "chunked")
		}
		w.writeHeader(w.body.Len(), false)
		if w.body.Len() > 0 {
			buffered := w.body.Bytes()
			w.body = bytes.Buffer{}
			_, _ = w.Write(buffered)
		}
	}
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

func (w *directResponse) Flush() { _ = w.FlushError() }

// finish writes the response (or, after a Flush, its end).
func (w *directResponse) finish(closeAfter bool) error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.streaming {
		if w.chunked && w.err == nil {
			_, w.err = w.bw.WriteString("0\r\n\r\n")
		}
	} else {
		if closeAfter {
			w.header.Set("Connection", "close")
		}
		w.writeHeader(w.body.Len(), true)
		if w.req.Method != http.MethodHead && w.err == nil {
			_, w.err = w.bw.Write(w.body.Bytes())
		}
	}
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}

// writeHeader writes the status line and the headers, with the ones
// net/http adds: Date, and, for a body known whole (final), its
// Content-Length and a sniffed Content-Type.
func (w *directResponse) writeHeader(bodyLen int, final bool) {
	h := w.header
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if final && bodyAllowed(w.status) {
		// The body is all here: its length frames it, whatever the
		// handler said (a HEAD answer keeps the handler's length).
		h.Del("Transfer-Encoding")
		if _, ok := h["Content-Length"]; w.req.Method != http.MethodHead || (!ok && bodyLen > 0) {
			h.Set("Content-Length", strconv.Itoa(bodyLen))
		}
		if _, ok := h["Content-Type"]; !ok && bodyLen > 0 {
			h.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
		}
	}
	if !bodyAllowed(w.status) {
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
	}
	text := http.StatusText(w.status)
	if text == "" {
		text = "status code " + strconv.Itoa(w.status)
	}
	fmt.Fprintf(w.bw, "HTTP/1.1 %03d %s\r\n", w.status, text)
	if err := h.Write(w.bw); err != nil {
		w.err = err
	}
	_, _ = w.bw.WriteString("\r\n")
}

// bodyAllowed reports whether a response with this status may have a body
// (RFC 9110: not 1xx, 204 or 304).
func bodyAllowed(status int) bool {
	return (status < 100 || status > 199) && status != http.StatusNoContent && status != http.StatusNotModified
}

// trackConn adds or removes a direct connection; adding fails once the
// server is shutting down.
func (s *Server) trackConn(dc *directConn, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !on {
		delete(s.direct, dc)
		return true
	}
	if s.shutdown {
		return false
	}
	s.direct[dc] = struct{}{}
	return true
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// sweep closes direct connections idle for longer than idleTimeout,
// waiting for their first request or in a request's headers for longer
// than headerTimeout, and, with all set, every one not handling a request.
// It returns how many remain.
func (s *Server) sweep(now time.Time, all bool) int {
	stale := func(st connState, d time.Duration) bool {
		if all {
			return true
		}
		if st == stateIdle {
			return d > idleTimeout
		}
		return d > headerTimeout
	}
	s.mu.Lock()
	conns := make([]*directConn, 0, len(s.direct))
	for dc := range s.direct {
		conns = append(conns, dc)
	}
	s.mu.Unlock()
	for _, dc := range conns {
		dc.closeIf(now, stale)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.direct)
}

// sweepEvery runs sweep until done is closed.
func (s *Server) sweepEvery(d time.Duration, done <-chan struct{}) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.sweep(now, false)
		case <-done:
			return
		}
	}
}
