package api

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Media types of hijacked and log streams.
const (
	mediaRawStream         = "application/vnd.docker.raw-stream"
	mediaMultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// Stream ids in the 8-byte frame header (moby's stdcopy).
const (
	streamStdout byte = 1
	streamStderr byte = 2
)

// muxWriter frames writes for one stream of a multiplexed output: an 8-byte
// header [stream, 0, 0, 0, size uint32 big endian] before each chunk.
// Writers sharing mu never interleave their frames.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
	flush  func()
}

func (m *muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	frame := make([]byte, 8+len(p))
	frame[0] = m.stream
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(p)))
	copy(frame[8:], p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(frame); err != nil {
		return 0, err
	}
	if m.flush != nil {
		m.flush()
	}
	return len(p), nil
}

// lockedWriter serialises raw (tty) output and flushes after each write.
type lockedWriter struct {
	mu    *sync.Mutex
	w     io.Writer
	flush func()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if err == nil && l.flush != nil {
		l.flush()
	}
	return n, err
}

// outputs returns the writers for stdout and stderr over w: framed when
// multiplexed, else one raw writer (a tty merges both streams).
func outputs(w io.Writer, multiplexed bool, flush func()) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if multiplexed {
		return &muxWriter{mu: mu, w: w, stream: streamStdout, flush: flush},
			&muxWriter{mu: mu, w: w, stream: streamStderr, flush: flush}
	}
	raw := &lockedWriter{mu: mu, w: w, flush: flush}
	return raw, raw
}

// hijacked is a connection taken over from net/http for an exec or attach
// stream (docker-api.md §5).
type hijacked struct {
	conn net.Conn
	// stdin ends with EOF when the client half-closes; its reads are
	// serialised, as the stream's stdin copier and drainStdin may read
	// at once (the connection reads through serveConn's bufio.Reader).
	stdin *lockedReader
	// stdout and stderr share one lock so frames never interleave; they
	// fail, and cancel ctx, once the client is gone. With a tty (raw
	// stream) they are the same writer.
	stdout, stderr io.Writer
	ctx            context.Context
	cancel         context.CancelFunc
	stopHangup     func() // ends the watch for the client's going (hangups)
}

// hijack takes the connection over and answers as moby does: 101 UPGRADED
// when the client asked for an upgrade, the legacy 200 OK otherwise; the
// content type says whether frames are multiplexed (API >= 1.42 only).
func (s *Server) hijack(w http.ResponseWriter, r *http.Request, multiplexed bool) (*hijacked, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack connection for %s: %w", r.URL.Path, err)
	}
	// The stream outlives the request's context by design; it ends when
	// the client stops reading or the server shuts down.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	var stdin io.Reader = conn
	if brw != nil && brw.Reader.Buffered() > 0 {
		stdin = io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), conn)
	}
	h := &hijacked{conn: conn, stdin: &lockedReader{r: stdin}, ctx: ctx, cancel: cancel}
	h.stdout, h.stderr = outputs(&cancelOnError{w: conn, cancel: cancel}, multiplexed, nil)
	// A client that goes away ends the stream even when nothing is
	// written to it (a silent container's attach).
	stop, hung := s.hangups.watch(conn)
	h.stopHangup = stop
	go func() {
		select {
		case <-hung:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.trackHijacked(h, true)
	if err := writeUpgrade(conn, w.Header(), r, multiplexed); err != nil {
		h.close(s)
		return nil, err
	}
	return h, nil
}

func writeUpgrade(conn net.Conn, hdr http.Header, r *http.Request, multiplexed bool) error {
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + mediaRawStream + "\r\n"
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		ct := mediaRawStream
		if multiplexed && !versionBefore(r, "1.42") {
			ct = mediaMultiplexedStream
		}
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + ct + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	var b strings.Builder
	b.WriteString(head)
	// Server, Api-Version and Ostype, which net/http would have sent (not
	// the Connection: close that closeAfterAnswer sets: the stream says its own).
	_ = hdr.WriteSubset(&b, map[string]bool{"Content-Type": true, "Content-Length": true, "Connection": true})
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return fmt.Errorf("write upgrade response: %w", err)
	}
	return nil
}

// close ends the stream: half-close first so the client reads everything
// written so far and then EOF; then read and drop what the client still
// sends until it closes its end (drainStdin), and release the socket.
func (h *hijacked) close(s *Server) {
	h.cancel()
	h.stopHangup()
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		h.drainStdin()
	}
	_ = h.conn.Close()
	s.trackHijacked(h, false)
}

// drainWait bounds drainStdin: a client that keeps writing, or keeps its
// end open after the stream's EOF, is reset after it as before.
const drainWait = 2 * time.Second

// drainStdin reads what the client sent and no one read (the stdin of a
// container that ended without reading it, a key typed while a short
// `docker run -it` ran) until the client closes its end, for drainWait at
// most. A socket closed with unread data resets its peer: the client's
// read after the output gets ECONNRESET in place of EOF, and the docker
// CLI exits 1 with "connection reset by peer" instead of the container's
// exit code. moby's attach reads stdin into the container's pipe for the
// whole stream, so only more than a pipe's worth left unread resets its
// clients (moby#35723); berth's reads it once the run has started.
func (h *hijacked) drainStdin() {
	// A stdin copier still blocked in a read returns at the deadline too,
	// and lets the drain have the reader.
	if err := h.conn.SetReadDeadline(time.Now().Add(drainWait)); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, h.stdin)
}

// lockedReader serialises reads of r.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// streams is the Backend's view of the hijacked stream; the caller leaves
// stderr out for a tty, whose one output is Stdout.
func (h *hijacked) streams(stdin, stdout, stderr bool) Streams {
	var st Streams
	if stdin {
		st.Stdin = readerOnly{h.stdin}
	}
	if stdout {
		st.Stdout = h.stdout
	}
	if stderr {
		st.Stderr = h.stderr
	}
	return st
}

// report tells the client about an error after the 101 was sent, the only
// way left, on stderr.
func (h *hijacked) report(err error) {
	_, _ = fmt.Fprintf(h.stderr, "%v\r\n", err)
}

// reportOnStdout is report on stdout, where moby's postContainerExecStart
// writes an exec's error: `out=$(docker exec c nosuchcmd)` holds it.
func (h *hijacked) reportOnStdout(err error) {
	_, _ = fmt.Fprintf(h.stdout, "%v\r\n", err)
}

// cancelOnError cancels the stream's context on the first failed write:
// the client has gone away.
type cancelOnError struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c *cancelOnError) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

// readerOnly hides a reader's other methods (WriteTo, Close) from the Backend.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// orDiscard gives the Backend a writer it may always write to.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
