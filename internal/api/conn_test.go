package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestIsDirect(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"POST /v1.51/networks/web/connect HTTP/1.1\r", true},
		{"POST /networks/web/disconnect HTTP/1.1", true},
		{"HEAD /_ping HTTP/1.1\r", true},
		{"GET /v1.51/containers/json?all=1 HTTP/1.1\r", true},
		{"GET /v1.51/containers/abc/json HTTP/1.1\r", true},
		{"DELETE /v1.51/containers/abc?force=1 HTTP/1.1\r", true},
		{"GET /v1.51/networks/ HTTP/1.1\r", false}, // an empty segment is no id
		// Streams, hijacks and long polls go to net/http.
		{"POST /v1.51/containers/abc/attach?stream=1 HTTP/1.1\r", false},
		{"POST /v1.51/exec/abc/start HTTP/1.1\r", false},
		{"GET /v1.51/containers/abc/logs?follow=1 HTTP/1.1\r", false},
		{"POST /v1.51/containers/abc/wait HTTP/1.1\r", false},
		{"POST /v1.51/containers/abc/stop HTTP/1.1\r", false},
		{"POST /v1.51/images/create?fromImage=x HTTP/1.1\r", false},
		// Other protocols, methods and shapes.
		{"POST /v1.51/networks/web/connect HTTP/1.0\r", false},
		{"GET /v1.51/networks/web/connect HTTP/1.1\r", false},
		{"GET /v1.51/networks/a/b HTTP/1.1\r", false},
		{"GET http://berth/_ping HTTP/1.1\r", false},
		{"garbage", false},
	} {
		if got := isDirect([]byte(tt.line)); got != tt.want {
			t.Errorf("isDirect(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func directConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.direct)
}

// rawConn dials sock and returns the connection with a reader on it.
func rawConn(t *testing.T, sock string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// roundTrip writes raw on c and reads one response to method.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, method, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("response to %q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestOneConnectionServesDirectThenHandsOff: direct requests on a
// keep-alive connection, then one for net/http (a wait), whose answer
// closes the connection, so that the client's next requests come on a
// fresh one, on the direct loop again; every answer is framed right.
func TestOneConnectionServesDirectThenHandsOff(t *testing.T) {
	f := newFakeBackend()
	f.wait = exitsWith(3)
	s := newServer(f)
	sock := serveUnix(t, s)

	connect := "POST /v1.51/networks/web/connect HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"Container\":\"test1\"}"
	for round := range 2 {
		c, br := rawConn(t, sock)
		resp, body := roundTrip(t, c, br, "HEAD", "HEAD /_ping HTTP/1.1\r\nHost: api\r\n\r\n")
		if resp.StatusCode != 200 || resp.Header.Get("Api-Version") == "" || resp.Header.Get("Date") == "" || body != "" || resp.Close {
			t.Errorf("round %d: HEAD /_ping = %d %v %q, close %v", round, resp.StatusCode, resp.Header, body, resp.Close)
		}
		resp, body = roundTrip(t, c, br, "POST", connect)
		if resp.StatusCode != 200 || resp.ContentLength != 0 || body != "" {
			t.Errorf("round %d: connect = %d, length %d, body %q", round, resp.StatusCode, resp.ContentLength, body)
		}
		resp, body = roundTrip(t, c, br, "GET", "GET /v1.51/networks/nosuch HTTP/1.1\r\nHost: api\r\n\r\n")
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, "nosuch") ||
			resp.ContentLength != int64(len(body)) {
			t.Errorf("round %d: inspect missing = %d %v %q", round, resp.StatusCode, resp.Header, body)
		}
		resp, body = roundTrip(t, c, br, "DELETE", "DELETE /v1.51/containers/test1?force=1 HTTP/1.1\r\nHost: api\r\n\r\n")
		if resp.StatusCode != 204 || len(resp.Header["Content-Length"]) != 0 || body != "" {
			t.Errorf("round %d: remove = %d %v %q", round, resp.StatusCode, resp.Header, body)
		}
		if directConns(s) != 1 {
			t.Errorf("round %d: %d connections on the direct loop, want 1", round, directConns(s))
		}
		// Not direct: the connection goes to net/http, which answers and closes it.
		resp, body = roundTrip(t, c, br, "POST", "POST /v1.51/containers/test1/wait HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\n\r\n")
		if resp.StatusCode != 200 || !strings.Contains(body, `"StatusCode":3`) || !resp.Close {
			t.Errorf("round %d: wait = %d %q, Connection %q; want 200, the status, close", round, resp.StatusCode, body, resp.Header.Get("Connection"))
		}
		if n, err := br.ReadByte(); err != io.EOF {
			t.Errorf("round %d: after the wait's answer read %v, %v; want EOF", round, n, err)
		}
		c.Close()
	}
	if got := f.Mutations(); len(got) != 4 {
		t.Errorf("mutations %q, want two connects and two removes", got)
	}
}

func TestDirectRequestFraming(t *testing.T) {
	s := newServer(newFakeBackend())
	sock := serveUnix(t, s)

	t.Run("chunked body and 100-continue", func(t *testing.T) {
		c, br := rawConn(t, sock)
		_, _ = io.WriteString(c, "POST /v1.51/networks/web/connect HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q (%v), want 100 Continue", line, err)
		}
		if l, _ := br.ReadString('\n'); l != "\r\n" {
			t.Fatalf("after 100 Continue: %q", l)
		}
		resp, body := roundTrip(t, c, br, "POST", "15\r\n{\"Container\":\"test1\"}\r\n0\r\n\r\n")
		if resp.StatusCode != 200 || body != "" {
			t.Errorf("chunked connect = %d %q", resp.StatusCode, body)
		}
	})
	t.Run("Connection close", func(t *testing.T) {
		c, br := rawConn(t, sock)
		resp, _ := roundTrip(t, c, br, "GET", "GET /_ping HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
		if !resp.Close {
			t.Error("response does not say Connection: close")
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("read after a closing response: %v, want EOF", err)
		}
	})
	t.Run("unread body is dropped", func(t *testing.T) {
		c, br := rawConn(t, sock)
		// The ping handler never reads the body; the next request must
		// still parse.
		resp, _ := roundTrip(t, c, br, "GET", "GET /_ping HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\nhello")
		resp2, body := roundTrip(t, c, br, "GET", "GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n")
		if resp.StatusCode != 200 || resp2.StatusCode != 200 || body != "OK" {
			t.Errorf("pings = %d, %d %q", resp.StatusCode, resp2.StatusCode, body)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		// What net/http's server refuses, refused the same way.
		for _, tt := range []struct {
			head string
			want int
		}{
			{"Host: api\r\nno colon here\r\n", 400},
			{"Host: api\r\nBad Name: x\r\n", 400},
			{"Host: api\r\nX-Ctl: a\x01b\r\n", 400},
			{"Host: a b\r\n", 400},
			{"Host: a\r\nHost: b\r\n", 400},
			{"", 400}, // no Host
			{"Host: api\r\nTransfer-Encoding: gzip, chunked\r\n", 501},
		} {
			c, br := rawConn(t, sock)
			resp, _ := roundTrip(t, c, br, "GET", "GET /_ping HTTP/1.1\r\n"+tt.head+"\r\n")
			if resp.StatusCode != tt.want || !resp.Close {
				t.Errorf("headers %q: %d close=%v, want %d and close", tt.head, resp.StatusCode, resp.Close, tt.want)
			}
		}
	})
	t.Run("headers too large", func(t *testing.T) {
		c, br := rawConn(t, sock)
		go io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: api\r\nX-Big: "+strings.Repeat("a", maxHeaderBytes+8<<10)+"\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("huge header: %v %v, want 431", resp, err)
		}
	})
}

// TestDirectResponseFlushGoesChunked: a handler that flushes on a direct
// route gets its header out at once and its body in chunks.
func TestDirectResponseFlushGoesChunked(t *testing.T) {
	s := newServer(newFakeBackend())
	release := make(chan struct{})
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first ")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		<-release
		_, _ = io.WriteString(w, "second")
	})
	sock := serveUnix(t, s)
	c, br := rawConn(t, sock)
	_, _ = io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding %v, want chunked", resp.TransferEncoding)
	}
	first := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first " {
		t.Fatalf("before the handler returned: %q %v", first, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Errorf("rest %q %v", rest, err)
	}
}

// TestShutdownClosesIdleDirectConnectionsAndWaitsForActiveOnes.
func TestShutdownClosesIdleDirectConnectionsAndWaitsForActiveOnes(t *testing.T) {
	s := newServer(newFakeBackend())
	entered, release := make(chan struct{}), make(chan struct{})
	next := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			close(entered)
			<-release
		}
		next.ServeHTTP(w, r)
	})
	sock := serveUnix(t, s)
	idle, idleR := rawConn(t, sock)
	roundTrip(t, idle, idleR, "GET", "GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n")
	busy, busyR := rawConn(t, sock)
	_, _ = io.WriteString(busy, "GET /_ping HTTP/1.1\r\nHost: api\r\nX-Hold: 1\r\n\r\n")
	<-entered

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection at shutdown: read %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	resp, err := http.ReadResponse(busyR, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the running request's answer: %v %v", resp, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := io.ReadAll(busyR); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("after the answer: %v, want the connection closed", err)
	}
}

func TestSweepClosesConnectionsIdleTooLong(t *testing.T) {
	s := newServer(newFakeBackend())
	sock := serveUnix(t, s)
	c, br := rawConn(t, sock)
	roundTrip(t, c, br, "GET", "GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n")
	if n := s.sweep(time.Now(), false); n != 1 {
		t.Fatalf("sweep now: %d connections remain, want 1", n)
	}
	// The server marks the connection idle just after writing the answer:
	// sweep until the sweep finds it so.
	for try := 0; ; try++ {
		s.sweep(time.Now().Add(idleTimeout+time.Second), false)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := br.ReadByte()
		if err == io.EOF {
			return
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || try == 100 {
			t.Fatalf("read after the idle timeout: %v, want EOF", err)
		}
	}
}

// TestBadRequestBodiesCloseTheConnection: a chunked body that breaks off
// must not leave the bytes after it to be read as a request of their own,
// and a body far over the handler's limit is answered at once, without
// reading it all, and the connection closed.
func TestBadRequestBodiesCloseTheConnection(t *testing.T) {
	var pings atomic.Int32
	s := newServer(newFakeBackend())
	next := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			pings.Add(1)
		}
		next.ServeHTTP(w, r)
	})
	sock := serveUnix(t, s)

	c, br := rawConn(t, sock)
	_, _ = io.WriteString(c, "POST /v1.51/networks/web/connect HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"15\r\n{\"Container\":\"test1\"}\r\nzz\r\nGET /_ping HTTP/1.1\r\nHost: api\r\n\r\n")
	out, _ := io.ReadAll(br)
	if n := strings.Count(string(out), "HTTP/1.1 "); n != 1 || pings.Load() != 0 {
		t.Errorf("broken chunked body: %d answers and %d pings served from its tail, want 1 and 0:\n%s", n, pings.Load(), out)
	}

	c, br = rawConn(t, sock)
	go func() {
		_, _ = io.WriteString(c, "POST /v1.51/networks/create HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{\"Name\":\"x\"}")
		_, _ = io.WriteString(c, strings.Repeat(" ", 3<<20)) // and then nothing
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatalf("no answer to a 100 MB body after 3 MB of it: %v", err)
	}
	if !resp.Close {
		t.Errorf("answer %d to an oversized body keeps the connection", resp.StatusCode)
	}
}

// TestSweepNeverDropsARequestItLetsRun: the sweeper and the loop agree on
// a connection's state, so a request the sweeper's close cuts off never
// runs, and one that runs is answered.
func TestSweepNeverDropsARequestItLetsRun(t *testing.T) {
	s := newServer(newFakeBackend())
	var ran sync.Map
	next := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Store(r.Header.Get("X-Seq"), true)
		next.ServeHTTP(w, r)
	})
	sock := serveUnix(t, s)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.sweep(time.Now().Add(idleTimeout+time.Minute), false) // every waiting connection is stale
			time.Sleep(20 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	var lost atomic.Int32
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			for i := range 500 {
				if c == nil {
					var err error
					if c, err = net.Dial("unix", sock); err != nil {
						t.Error(err)
						return
					}
					br = bufio.NewReader(c)
				}
				seq := fmt.Sprintf("%d-%d", g, i)
				_, err := io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: api\r\nX-Seq: "+seq+"\r\n\r\n")
				if err == nil {
					var resp *http.Response
					if resp, err = http.ReadResponse(br, nil); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						continue
					}
				}
				c.Close()
				c = nil
				time.Sleep(time.Millisecond) // a handler that ran has recorded it by now
				if _, ok := ran.Load(seq); ok {
					lost.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := lost.Load(); n != 0 {
		t.Errorf("%d requests ran but their connection was closed unanswered", n)
	}
}

// TestTooLargeBodyIsAnsweredNotReset: a body past the handler's limit on a
// fresh connection gets its 413, even though the client is still sending
// when the server decides to close; closing at once with the rest unread
// made the socket send RST, and the client saw "broken pipe" instead.
func TestTooLargeBodyIsAnsweredNotReset(t *testing.T) {
	sock := serveUnix(t, newServer(newFakeBackend()))
	for round := range 3 {
		c := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
		}, Timeout: 30 * time.Second}
		body := `{"Name":"` + strings.Repeat("a", 10<<20) + `"}`
		resp, err := c.Post("http://api/v1.51/networks/create", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("round %d: POST of a 10 MB body: %v; want a 413", round, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), "larger than") {
			t.Errorf("round %d: POST of a 10 MB body = %d %q, want 413", round, resp.StatusCode, out)
		}
		c.CloseIdleConnections()
	}
}
