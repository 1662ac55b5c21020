package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer serves h on a unix socket and counts the connections it
// accepts; closeIdle closes the ones waiting for a request.
type countingServer struct {
	sock  string
	conns atomic.Int32
	srv   *http.Server

	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

// closeIdle waits until every open connection is idle (the server marks
// one so just after its answer, which the client may read first) and
// closes them all, as a daemon's idle timeout does.
func (cs *countingServer) closeIdle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		cs.mu.Lock()
		busy := 0
		for _, st := range cs.state {
			if st != http.StateIdle {
				busy++
			}
		}
		if busy == 0 {
			for c := range cs.state {
				_ = c.Close()
			}
			cs.mu.Unlock()
			time.Sleep(20 * time.Millisecond) // the closes reach the client's end
			return
		}
		cs.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%d server connections still busy after 5 s", busy)
		}
	}
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-tr-") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cs := &countingServer{sock: filepath.Join(dir, "s.sock"), state: map[net.Conn]http.ConnState{}}
	ln, err := net.Listen("unix", cs.sock)
	if err != nil {
		t.Fatal(err)
	}
	cs.srv = &http.Server{Handler: h, ConnState: func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			cs.conns.Add(1)
		}
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(cs.state, c)
		} else {
			cs.state[c] = st
		}
	}}
	go func() { _ = cs.srv.Serve(ln) }()
	t.Cleanup(func() { _ = cs.srv.Close() })
	return cs
}

func (cs *countingServer) transport() *transport {
	return &transport{dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", cs.sock)
	}}
}

func echoBody(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, _ = w.Write(b)
}

func post(t *testing.T, c *http.Client, body string) string {
	t.Helper()
	resp, err := c.Post("http://berth/echo", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTransportKeepsOneConnection(t *testing.T) {
	cs := newCountingServer(t, echoBody)
	c := &http.Client{Transport: cs.transport()}
	for i := range 5 {
		if got := post(t, c, strings.Repeat("x", i)); got != strings.Repeat("x", i) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	// A body closed unread but short is read to its end: the connection stays.
	resp, err := c.Get("http://berth/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	post(t, c, "again")
	if n := cs.conns.Load(); n != 1 {
		t.Errorf("%d connections for 7 requests in a row, want 1", n)
	}
}

// TestTransportRetriesOnAConnectionClosedWhileIdle: the daemon closes an
// idle keep-alive connection; the next request (a POST with a body) goes
// out once more on a new one.
func TestTransportRetriesOnAConnectionClosedWhileIdle(t *testing.T) {
	cs := newCountingServer(t, echoBody)
	c := &http.Client{Transport: cs.transport()}
	post(t, c, "one")
	cs.closeIdle(t)
	if got := post(t, c, "two"); got != "two" {
		t.Errorf("after the idle close: %q, want two", got)
	}
	if n := cs.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestTransportCancelEndsARequestInFlight(t *testing.T) {
	entered := make(chan struct{})
	cs := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	c := &http.Client{Transport: cs.transport()}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://berth/hang", nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(req)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled request did not return")
	}
}

// TestTransportClosingAStreamReturnsAtOnce: closing the body of a stream
// the daemon is still sending must not read it to its end.
func TestTransportClosingAStreamReturnsAtOnce(t *testing.T) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	cs := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			echoBody(w, r)
			return
		}
		for {
			_, _ = io.WriteString(w, "event\n")
			http.NewResponseController(w).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	c := &http.Client{Transport: cs.transport()}
	resp, err := c.Get("http://berth/events")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "event\n" {
		t.Fatalf("first event %q %v", buf, err)
	}
	closed := make(chan struct{})
	go func() { resp.Body.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closing a stream's body waited for its end")
	}
	post(t, c, "after") // a new connection
	if n := cs.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the stream's is not reused)", n)
	}
}

// TestTransportDoesNotRepeatAPostTheDaemonRead: a daemon that read a POST
// and closed without answering may have acted on it; the error goes back
// to the caller rather than the POST going out again.
func TestTransportDoesNotRepeatAPostTheDaemonRead(t *testing.T) {
	var n atomic.Int32
	cs := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if n.Add(1) == 2 {
			panic(http.ErrAbortHandler) // read, acted on, dropped unanswered
		}
	})
	c := &http.Client{Transport: cs.transport()}
	post(t, c, "one")
	resp, err := c.Post("http://berth/create", "text/plain", strings.NewReader("two"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a POST dropped unanswered succeeded")
	}
	if got := n.Load(); got != 2 {
		t.Errorf("the handler ran %d times for 2 POSTs", got)
	}
}

// TestTransportSkipsEveryStalePooledConnection: after the daemon closed
// two idle connections, the retry dials rather than taking the other.
func TestTransportSkipsEveryStalePooledConnection(t *testing.T) {
	block := make(chan struct{})
	cs := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-block
		}
		echoBody(w, r)
	})
	tr := cs.transport()
	c := &http.Client{Transport: tr}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := c.Post("http://berth/slow", "text/plain", strings.NewReader("slow")); err == nil {
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	post(t, c, "fast") // a second connection, while the first is busy
	close(block)
	<-done
	tr.mu.Lock()
	pooled := len(tr.idle)
	tr.mu.Unlock()
	if pooled != 2 {
		t.Fatalf("%d pooled connections, want 2", pooled)
	}
	cs.closeIdle(t) // both
	if got := post(t, c, "after"); got != "after" {
		t.Errorf("after both idle connections closed: %q", got)
	}
}

// TestTransportReadsPastAContinue: a 100 Continue is not the answer.
func TestTransportReadsPastAContinue(t *testing.T) {
	cs := newCountingServer(t, echoBody)
	c := &http.Client{Transport: cs.transport()}
	req, _ := http.NewRequest(http.MethodPost, "http://berth/echo", strings.NewReader("hello"))
	req.Header.Set("Expect", "100-continue")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Errorf("answer %d %q, want 200 hello", resp.StatusCode, b)
	}
	if got := post(t, c, "second"); got != "second" {
		t.Errorf("next answer %q, want second", got)
	}
}

// stallingServer answers the first request on sock with the head of a
// 10-byte body and five of its bytes, and never the rest.
func stallingServer(t *testing.T) *transport {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release); _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		_, _ = c.Read(buf) // the request
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde")
		<-release // the other five bytes never come
	}()
	return &transport{dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
}

// TestTransportCloseAfterCancelDoesNotDrain: once the request's context
// has ended, Close does not wait for the rest of a short body.
func TestTransportCloseAfterCancelDoesNotDrain(t *testing.T) {
	old := drainWait
	drainWait = time.Hour
	t.Cleanup(func() { drainWait = old })
	tr := stallingServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://berth/stall", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // the cancel's deadline is set first, then Close runs
	closed := make(chan struct{})
	go func() { resp.Body.Close(); close(closed) }()
	// Not a timing: the drain would last an hour; the bound only tells a
	// Close that skipped it from one that waits.
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close after the cancel waits out the drain")
	}
}

// TestTransportClosingAStalledShortBodyReturns: a daemon that sent the head
// of a short answer and stalled before the rest of its body must not hold
// the caller's Close; the connection is dropped, not pooled.
func TestTransportClosingAStalledShortBodyReturns(t *testing.T) {
	tr := stallingServer(t)
	resp, err := (&http.Client{Transport: tr}).Get("http://berth/stall")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { resp.Body.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("closing a short body the daemon stalled in did not return")
	}
	tr.mu.Lock()
	pooled := len(tr.idle)
	tr.mu.Unlock()
	if pooled != 0 {
		t.Errorf("%d pooled connections after a stalled body, want 0", pooled)
	}
}

// TestTransportReadThenCloseLeavesNoDeadline: closing a body already read
// to its end must not touch its connection, which is back in the pool: a
// request on it after Close's drain limit still gets its answer.
func TestTransportReadThenCloseLeavesNoDeadline(t *testing.T) {
	cs := newCountingServer(t, echoBody)
	c := &http.Client{Transport: cs.transport()}
	post(t, c, "one") // read to its end, then closed
	time.Sleep(drainWait + 200*time.Millisecond)
	if got := post(t, c, "two"); got != "two" {
		t.Errorf("second answer %q, want two", got)
	}
	if n := cs.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
