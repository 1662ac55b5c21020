package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// A container's log in json-file's format, as Docker keeps it: one file,
// <id>-json.log, with one JSON object per line of output,
//
//	{"log":"hello\n","stream":"stdout","time":"2026-12-02T06:00:00.123456789Z"}
//
// stdout and stderr interleaved in the order they were read. A line
// longer than logLineMax is split into entries of that size (only the
// last has the newline), as moby's copier splits it. The file is rotated
// when an entry is to be written and the file has reached max-size
// (moby's LogFile.WriteLogEntry): <path> becomes <path>.1, <path>.1
// becomes <path>.2, and so on up to max-file - 1; with max-file 1 the
// file is deleted. Readers hold a shared flock of the directory while
// they open the files, the rotation an exclusive one while it renames, so
// a reader never sees a set of files from two rotations.
//
// The writer is in the reaper for a container without a terminal (it
// holds the read ends of the container's stdout and stderr pipes, and
// outlives the daemon), and in the daemon for a terminal's output.

// logLineMax is the most a log entry holds: moby's copier's buffer
// (defaultBufSize, 16 KiB).
const logLineMax = 16 << 10

// jsonLogName is the log file of container id in its data directory, as
// Docker names it.
func jsonLogName(id string) string { return id + "-json.log" }

// logFile writes a container's log entries and rotates it.
type logFile struct {
	path string
	lim  LogLimit
	// warn reports a rotation that could not move the full file aside
	// (the file is emptied instead, as moby's LogFile does); stderr,
	// the reaper's or the daemon's log, unless a test sets it.
	warn func(error)

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
	// last is the time of the last entry written (a compressed file's
	// header keeps it, as moby's); compressing, when not nil, is closed
	// once the compression of the file rotated last has ended.
	last        time.Time
	compressing chan struct{}
}

// openLogFile opens path for appending (a restarted container keeps what
// it wrote before), creating it. The temporary files of compressions a
// process that died left are removed (one of a writer still at work
// fails its compression, which keeps its file uncompressed).
func openLogFile(path string, lim LogLimit) (*logFile, error) {
	if stale, _ := filepath.Glob(path + ".*" + gzSuffix + ".tmp*"); len(stale) > 0 {
		for _, name := range stale {
			os.Remove(name)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{path: path, lim: lim, f: f, size: fi.Size(), warn: warnStderr}, nil
}

// warnStderr prints err on the process's standard error.
func warnStderr(err error) { fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err) }

// write appends one entry: p (a line with its newline, or a part of one)
// from stream, read at t.
func (l *logFile) write(stream string, p []byte, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("log file is closed")
	}
	if l.lim.MaxSize > 0 && l.size >= l.lim.MaxSize {
		if err := l.rotateLocked(); err != nil {
			return err
		}
	}
	l.buf = appendEntry(l.buf[:0], stream, p, t, l.lim.Attrs)
	n, err := l.f.Write(l.buf)
	if err != nil {
		// A torn entry would swallow the next one in a reader: cut it
		// off (a full disk may still take a truncation).
		if n > 0 && l.f.Truncate(l.size) != nil {
			l.size += int64(n)
		}
		return fmt.Errorf("write log %q: %w", l.path, err)
	}
	l.size += int64(n)
	l.last = t
	return nil
}

// rotateLocked moves the live file to path.1 (and each older one a
// number up, dropping what passes max-file) and starts an empty one.
// When the files cannot be moved (a rotated name taken by a directory, a
// rename refused), the full file is dropped and the failure warned of,
// as moby's LogFile empties it: its entries are lost, not every later
// one.
//
// With compress, path.1 is then compressed into path.1.gz beside the
// writer (compressLogFile), as moby's LogFile does; the next rotation
// waits for it to end, so that the files shift once each.
func (l *logFile) rotateLocked() error {
	if l.compressing != nil {
		<-l.compressing
		l.compressing = nil
	}
	unlock, err := lockLogDir(l.path, true)
	if err != nil {
		return err
	}
	defer unlock()
	moved := true
	if err := shiftLogFiles(l.path, max(l.lim.MaxFiles, 1)); err != nil {
		moved = false
		l.warn(fmt.Errorf("%w; the full log file is dropped, its entries are lost", err))
		// A new file rather than the old one emptied: a follower sees
		// a rotation, reads the old one to its end and moves on.
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.warn(fmt.Errorf("rotate log %q: %w; the full file is emptied in place", l.path, err))
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log %q: %w", l.path, err)
	}
	l.f.Close()
	l.f, l.size = f, 0
	if moved && l.lim.Compress && l.lim.MaxFiles > 1 {
		done := make(chan struct{})
		l.compressing = done
		go func(src string, last time.Time) {
			defer close(done)
			if err := compressLogFile(src, last); err != nil {
				l.warn(fmt.Errorf("%w; the rotated file is kept uncompressed", err))
			}
		}(rotated(l.path, 1), l.last)
	}
	return nil
}

// shiftLogFiles renames path.(n-2) … path.1 and path one number up and
// removes what would be path.(n-1) or beyond; with n == 1, path itself.
// A rotated file is path.N or, compressed, path.N.gz (a compression cut
// short leaves path.N): whichever is there moves.
// Only the files there are renamed (path.1 up to the first one missing),
// as shiftRotated does: with --log-opt max-file=5000000 each rotation
// tried five million renames under the log's locks, and the container's
// output and every docker logs waited.
func shiftLogFiles(path string, n int) error {
	if n == 1 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %q: %w", path, err)
		}
		return nil
	}
	for _, name := range []string{rotated(path, n-1), rotated(path, n-1) + gzSuffix} {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %q: %w", path, err)
		}
	}
	exists := func(name string) bool { _, err := os.Lstat(name); return err == nil }
	top := n - 2
	for i := 1; i <= top; i++ {
		if !exists(rotated(path, i)) && !exists(rotated(path, i)+gzSuffix) {
			top = i - 1
			break
		}
	}
	for i := top; i >= 1; i-- {
		for _, ext := range []string{"", gzSuffix} {
			if err := os.Rename(rotated(path, i)+ext, rotated(path, i+1)+ext); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate log %q: %w", path, err)
			}
		}
	}
	if err := os.Rename(path, rotated(path, 1)); err != nil {
		return fmt.Errorf("rotate log %q: %w", path, err)
	}
	return nil
}

// sync flushes the file to disk.
func (l *logFile) sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.f.Sync()
}

// close closes the file once a compression under way has ended (the
// container's directory may be removed next).
func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.compressing != nil {
		<-l.compressing
		l.compressing = nil
	}
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// entrySink takes log entries: a logFile, or a logGate before one.
type entrySink interface {
	write(stream string, p []byte, t time.Time) error
}

// logSink is where a gate opens onto: a logFile, or a ringSink over one.
type logSink interface {
	entrySink
	close() error
}

// openLogSink opens the log at path as lim asks: written in line, or
// with mode=non-blocking through a ringSink.
func openLogSink(path string, lim LogLimit) (logSink, error) {
	lf, err := openLogFile(path, lim)
	if err != nil || !lim.NonBlocking {
		return lf, err
	}
	return newRingSink(lf, lim.MaxBuffer), nil
}

// defaultMaxBuffer is max-buffer-size's default, moby's defaultRingMaxSize.
const defaultMaxBuffer = 1e6

// ringSink is json-file's mode=non-blocking: entries queue, up to
// max bytes of output, for a goroutine that writes them; past that a new
// entry is dropped, as moby's messageRing drops it, so a container never
// waits for its log (its attached clients still hold it back, as in
// Docker).
type ringSink struct {
	out     logSink
	max     int64
	mu      sync.Mutex
	cond    sync.Cond
	queue   []heldEntry
	size    int64
	closed  bool
	dropped int
	done    chan struct{}
}

func newRingSink(out logSink, max int64) *ringSink {
	if max <= 0 {
		max = defaultMaxBuffer
	}
	r := &ringSink{out: out, max: max, done: make(chan struct{})}
	r.cond.L = &r.mu
	go r.run()
	return r
}

func (r *ringSink) write(stream string, p []byte, t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("log is closed")
	}
	if r.size+int64(len(p)) > r.max && len(r.queue) > 0 {
		r.dropped++
		return nil
	}
	r.queue = append(r.queue, heldEntry{stream, bytes.Clone(p), t})
	r.size += int64(len(p))
	r.cond.Signal()
	return nil
}

func (r *ringSink) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.closed {
			r.cond.Wait()
		}
		q := r.queue
		r.queue, r.size = nil, 0
		closed := r.closed
		r.mu.Unlock()
		for _, e := range q {
			r.out.write(e.stream, e.p, e.t) // a failed write loses its entry, as in line
		}
		if closed && len(q) == 0 {
			return
		}
	}
}

// close writes what is queued and closes the log.
func (r *ringSink) close() error {
	r.mu.Lock()
	r.closed = true
	r.cond.Signal()
	r.mu.Unlock()
	<-r.done
	return r.out.close()
}

// maxHeld bounds what a logGate holds before it is opened, in memory:
// each entry's bytes and heldOverhead for its record and allocation (a
// container printing empty lines made 72 bytes of heap per byte counted,
// QA round 28). A container that prints more before runc has returned
// waits on its pipe.
const (
	maxHeld      = 1 << 20
	heldOverhead = 80
)

// logGate holds entries until it is opened onto a log file (or onto
// nothing: they are dropped), then passes them on in order.
type logGate struct {
	mu     sync.Mutex
	cond   sync.Cond
	opened bool
	lf     logSink // nil once opened: dropped
	held   []heldEntry
	size   int
}

type heldEntry struct {
	stream string
	p      []byte
	t      time.Time
}

func newLogGate() *logGate {
	g := &logGate{}
	g.cond.L = &g.mu
	return g
}

func (g *logGate) write(stream string, p []byte, t time.Time) error {
	g.mu.Lock()
	for !g.opened && g.size >= maxHeld {
		g.cond.Wait()
	}
	if !g.opened {
		g.held = append(g.held, heldEntry{stream, bytes.Clone(p), t})
		g.size += len(p) + heldOverhead
		g.mu.Unlock()
		return nil
	}
	lf := g.lf
	g.mu.Unlock()
	if lf == nil {
		return nil
	}
	return lf.write(stream, p, t)
}

// open writes what is held to lf (nil: drops it) and lets the writers
// through. The held entries go first: later ones wait for the lock.
func (g *logGate) open(lf logSink) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	for _, e := range g.held {
		if lf != nil && err == nil {
			err = lf.write(e.stream, e.p, e.t)
		}
	}
	g.held, g.size, g.opened, g.lf = nil, 0, true, lf
	g.cond.Broadcast()
}

// file is the log the gate was opened onto.
func (g *logGate) file() logSink {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lf
}

// copyLines copies r into l as stream's entries until r ends: each line
// an entry stamped when it was read, a line longer than logLineMax in
// parts (each stamped with the time of the first, as moby's partial
// messages), and what is left at the end without its newline. A write
// that fails loses its entry, not the ones after (a full disk may free
// up); the first error goes to warn, and the count of lost entries is
// returned at the end (the container must not block on a full pipe
// because its log cannot be written).
//
// tee, when set, gets each chunk as it was read (attach: raw, at once).
func copyLines(r io.Reader, stream string, l entrySink, now func() time.Time, warn func(error), tee func([]byte)) error {
	// A line's start of less than logLineMax is kept at the front, so a
	// read has at least 4 KiB: per container stream in the reaper, this
	// is most of what it holds (110 containers: 13.4 MiB private with
	// 32 KiB buffers).
	buf := make([]byte, logLineMax+4<<10)
	start, end := 0, 0
	var firstErr error
	lost := 0
	var partAt time.Time // the time of the line's first part, while it is split
	emit := func(p []byte, t time.Time) {
		if !partAt.IsZero() {
			t = partAt
		}
		if p[len(p)-1] == '\n' {
			partAt = time.Time{}
		} else if partAt.IsZero() {
			partAt = t
		}
		if err := l.write(stream, p, t); err != nil {
			if lost++; firstErr == nil {
				firstErr = err
				if warn != nil {
					warn(err)
				}
			}
		}
	}
	done := func(err error) error {
		if firstErr != nil {
			err = errors.Join(err, fmt.Errorf("%d log entries lost, the first: %w", lost, firstErr))
		}
		return err
	}
	for {
		n, err := r.Read(buf[end:])
		t := now()
		if n > 0 && tee != nil {
			tee(buf[end : end+n])
		}
		end += n
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			emit(buf[start:start+i+1], t)
			start += i + 1
		}
		for end-start >= logLineMax {
			emit(buf[start:start+logLineMax], t)
			start += logLineMax
		}
		if err != nil {
			if end > start {
				emit(buf[start:end], t)
			}
			if errors.Is(err, io.EOF) {
				return done(nil)
			}
			return done(err)
		}
		// Keep the partial line at the front: room for the next read.
		end = copy(buf, buf[start:end])
		start = 0
	}
}

// appendEntry appends stream's entry for p at t, with its newline, and
// attrs (a JSON object, or nil) where moby's JSONLogs puts them.
func appendEntry(b []byte, stream string, p []byte, t time.Time, attrs json.RawMessage) []byte {
	b = append(b, `{"log":`...)
	b = appendJSONString(b, p)
	b = append(b, `,"stream":`...)
	b = appendJSONString(b, []byte(stream))
	if len(attrs) > 0 {
		b = append(b, `,"attrs":`...)
		b = append(b, attrs...)
	}
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// appendJSONString appends p as a JSON string, as encoding/json writes
// one: invalid UTF-8 becomes U+FFFD, and <, >, & and the line separators
// are escaped.
func appendJSONString(b []byte, p []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, p[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// logEntry is one decoded entry.
type logEntry struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs"`
	Time   time.Time         `json:"time"`
}

// LogOptions select what Logs writes.
type LogOptions struct {
	// Tail >= 0 starts at the last Tail entries (of both streams, counted
	// before Since, Until and the choice of streams apply, as moby's).
	Tail int
	// Since and Until keep the entries from Since on and up to Until
	// (zero: no bound), as docker logs --since and --until.
	Since, Until time.Time
	// Timestamps prefixes each entry with its time (docker logs -t).
	Timestamps bool
	// Details puts each entry's attributes and a space before it, after
	// its time (docker logs --details, moby's logstream.Write): "k=v,…"
	// by key, each escaped as a URL query's, or the space alone.
	Details bool
	// Follow keeps writing new entries until the container exits.
	Follow bool
}

// timed says whether o needs the entries' times.
func (o LogOptions) timed() bool { return o.Timestamps || !o.Since.IsZero() || !o.Until.IsZero() }

// rfc3339NanoFixed is moby's jsonmessage.RFC3339NanoFixed, the form of
// docker logs -t.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// entryWriter writes decoded entries to a container's stdout and stderr
// writers (nil: not wanted) with o's filters; past Until it reports done.
type entryWriter struct {
	stdout, stderr io.Writer
	o              LogOptions
	out            []byte
}

// write writes the entry of line (one JSON object) and says whether
// Until has passed. A line that does not decode is skipped, as moby's
// decoder skips a torn one.
func (ew *entryWriter) write(line []byte) (past bool, err error) {
	var e logEntry
	if json.Unmarshal(line, &e) != nil {
		return false, nil
	}
	if !ew.o.Until.IsZero() && e.Time.After(ew.o.Until) {
		return true, nil
	}
	if !ew.o.Since.IsZero() {
		if e.Time.Before(ew.o.Since) {
			return false, nil
		}
		// As moby's forwarder: from the first entry at or after Since
		// on, every entry (the times of a log need not be monotonic: a
		// clock stepped back).
		ew.o.Since = time.Time{}
	}
	w := ew.stdout
	if e.Stream == "stderr" {
		w = ew.stderr
	}
	if w == nil {
		return false, nil
	}
	ew.out = ew.out[:0]
	if ew.o.Timestamps {
		ew.out = e.Time.AppendFormat(ew.out, rfc3339NanoFixed)
		ew.out = append(ew.out, ' ')
	}
	if ew.o.Details {
		ew.out = appendAttrs(ew.out, e.Attrs)
		ew.out = append(ew.out, ' ')
	}
	ew.out = append(ew.out, e.Log...)
	_, err = w.Write(ew.out)
	return false, err
}

// appendAttrs appends attrs as docker logs --details shows them (moby's
// attrsByteSlice): "k1=v1,k2=v2" by key, query-escaped.
func appendAttrs(b []byte, attrs map[string]string) []byte {
	for i, k := range slices.Sorted(maps.Keys(attrs)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, url.QueryEscape(k)...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(attrs[k])...)
	}
	return b
}

// readJSONLog writes the entries of the log at path (and its rotated
// files) that o selects; with o.Follow it goes on with new entries,
// across rotations, until done is closed (the container exited and its
// output is all in the file) and what is left is read, or ctx ends.
func readJSONLog(ctx context.Context, path string, stdout, stderr io.Writer, o LogOptions, done <-chan struct{}) error {
	ew := &entryWriter{stdout: stdout, stderr: stderr, o: o}
	var watch *logWatch
	dirMissing := false
	if o.Follow {
		// Before anything is read: a write from now on wakes the follow.
		watch, dirMissing = watchLogDir(filepath.Dir(path))
		defer func() { watch.close() }()
	}
	parts, err := openLogSet(path)
	if err != nil {
		return err
	}
	var cur *entryReader // the live file's, once it exists
	defer func() {
		closeParts(parts)
		if cur != nil {
			cur.part.close()
		}
	}()
	// The files' sizes now: without follow, what is read; with, where
	// the tail is counted from. A compressed file's is known once it is
	// decompressed (it does not change), which only the files read need.
	sizes := make([]int64, len(parts))
	for i, p := range parts {
		if sizes[i], err = p.sizeNow(); err != nil {
			return err
		}
	}
	idx, off := 0, int64(0)
	if o.Tail >= 0 && len(parts) > 0 {
		if idx, off, err = tailStart(parts, sizes, o.Tail); err != nil {
			return fmt.Errorf("tail log %q: %w", path, err)
		}
	}
	// Every file but the last (the live one, or the newest left) is read
	// through; the last one is followed.
	for i := idx; i < len(parts); i++ {
		start := int64(0)
		if i == idx {
			start = off
		}
		if p := parts[i]; o.Tail < 0 && !o.Since.IsZero() && p.gz && i < len(parts)-1 && !p.last.IsZero() && p.last.Before(o.Since) {
			continue // all before --since, by its header: not decompressed, as moby's
		}
		f, err := parts[i].file()
		if err != nil {
			return err
		}
		if sizes[i] < 0 {
			if sizes[i], err = parts[i].sizeNow(); err != nil {
				return err
			}
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return err
		}
		er := &entryReader{f: f, part: parts[i], left: -1}
		if !o.Follow {
			// What was there, as moby's reader (a section of the file's
			// size at the start): a docker logs --tail 2 of a container
			// that floods its log must end.
			er.left = max(sizes[i]-start, 0)
		}
		if past, err := er.drain(ew.write); past || err != nil {
			return err
		}
		if i == len(parts)-1 {
			cur = er
			parts = parts[:i]
		} else {
			parts[i].dropCopy()
		}
	}
	if !o.Follow {
		return nil
	}
	// The files read through stay open while the follow goes on (a
	// file held open keeps its identity: no new file can take its
	// inode), so that a follow that finds its file gone from the set
	// can tell the rotated files it has read from newer ones.
	held := &heldFiles{}
	for _, p := range parts {
		held.add(p)
	}
	parts = nil
	defer held.close()
	if cur != nil {
		cur.held = held
	}
	tick := time.NewTicker(followInterval)
	defer tick.Stop()
	if watch != nil {
		tick.Reset(followFallback)
	}
	for {
		exited := isClosed(done)
		if watch == nil && dirMissing {
			// No directory when the follow began: watch it once there.
			if watch, dirMissing = watchLogDir(filepath.Dir(path)); watch != nil {
				tick.Reset(followFallback)
			}
		}
		if cur == nil {
			// No log when this began: every file there is now is newer
			// (the writer may have rotated several times since it
			// started, a held burst of output written at once).
			more, err := openLogSet(path)
			if err != nil {
				return err
			}
			for i, p := range more {
				f, err := p.file()
				if err != nil {
					closeParts(more[i:])
					return err
				}
				er := &entryReader{f: f, part: p, left: -1, held: held}
				if i == len(more)-1 {
					cur = er
					break
				}
				past, err := er.drain(ew.write)
				held.add(p)
				if past || err != nil {
					closeParts(more[i+1:])
					return err
				}
			}
			if cur != nil {
				continue // read it at once
			}
		}
		if cur != nil {
			next, past, err := cur.follow(path, ew.write)
			if past || err != nil {
				return err
			}
			if next != nil {
				cur = next
				continue // the new file may have more already
			}
		}
		if exited || !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
		case <-tick.C:
		case <-watch.C():
		}
	}
}

// logPart is one file of a log's set, as opened: the live file or a
// rotated one, plain or compressed. A compressed one is read through its
// decompressed copy, made when it is first read.
type logPart struct {
	f  *os.File // as opened
	gz bool
	// own is the opened file's identity; id the identity of the file
	// whose entries it holds: a plain file's own, a compressed one's
	// source's as its header says (zero: unknown, moby's or unreadable).
	own, id fileID
	// last is a compressed file's last entry's time, from its header
	// (zero: unknown).
	last  time.Time
	plain *os.File // what is read: f, or f's decompressed copy once made
}

// holds says whether p holds o's entries: p is o, or p is the
// compressed form of o, a plain file held open (so that no other file has
// its identity now; a compressed file's recorded source may be a file
// long gone whose inode a newer one took, which is why a plain p is
// never matched by a compressed o's record).
func (p *logPart) holds(o *logPart) bool {
	return p.own == o.own || p.gz && !o.gz && p.id != (fileID{}) && p.id == o.own
}

// dropCopy closes a compressed part's decompressed copy, once read.
func (p *logPart) dropCopy() {
	if p.plain != nil && p.plain != p.f {
		p.plain.Close()
		p.plain = nil
	}
}

// file is what the part's entries are read from.
func (p *logPart) file() (*os.File, error) {
	if p.plain == nil {
		d, err := decompressLog(p.f)
		if err != nil {
			return nil, err
		}
		p.plain = d
	}
	return p.plain, nil
}

// sizeNow is the size of what the part holds now: -1 for a compressed
// part not read yet.
func (p *logPart) sizeNow() (int64, error) {
	if p.plain == nil {
		return -1, nil
	}
	fi, err := p.plain.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (p *logPart) close() {
	if p.plain != nil && p.plain != p.f {
		p.plain.Close()
	}
	p.f.Close()
}

func closeParts(parts []*logPart) {
	for _, p := range parts {
		p.close()
	}
}

// openLogSet opens a log's files, oldest first (path.N … path.1, path;
// a rotated one path.N.gz where it is compressed), those that exist,
// under the directory's shared lock: no rotation renames them in between.
func openLogSet(path string) ([]*logPart, error) {
	unlock, err := lockLogDir(path, false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no directory yet: no log
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	var parts []*logPart
	for i := 1; ; i++ {
		p, err := openLogPart(rotated(path, i))
		if err != nil {
			closeParts(parts)
			return nil, err
		}
		if p == nil {
			break
		}
		parts = append(parts, p)
	}
	slices.Reverse(parts)
	f, err := os.Open(path)
	switch {
	case err == nil:
		id, err := idOf(f)
		if err != nil {
			f.Close()
			closeParts(parts)
			return nil, err
		}
		parts = append(parts, &logPart{f: f, plain: f, own: id, id: id})
	case !errors.Is(err, os.ErrNotExist): // none: nothing written yet
		closeParts(parts)
		return nil, fmt.Errorf("open log: %w", err)
	}
	return parts, nil
}

// openLogPart opens the rotated file name, plain as moby tries it first
// (a compression under way or cut short leaves it), else name.gz; nil
// when neither is there, or when it is not a file (a directory in the way
// of a rotation).
func openLogPart(name string) (*logPart, error) {
	gz := false
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		gz = true
		f, err = os.Open(name + gzSuffix)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil
	}
	p := &logPart{f: f, gz: gz}
	if p.own, err = idOf(f); err != nil {
		f.Close()
		return nil, err
	}
	if !gz {
		p.plain, p.id = f, p.own
		return p, nil
	}
	// A header that cannot be read leaves the part without its source's
	// identity: reading it fails, if it is read at all (moby opens a
	// compressed file only when the read reaches it).
	if h, err := gzHeader(f); err == nil {
		if h.Source != nil {
			p.id = *h.Source
		}
		p.last = h.LastTime
	}
	return p, nil
}

// lockLogDir takes the flock of path's directory, shared or exclusive,
// and returns its release.
func lockLogDir(path string, exclusive bool) (func(), error) {
	fd, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %q: %w", filepath.Dir(path), err)
	}
	return func() { unix.Close(fd) }, nil
}

// tailStart is where the last n entries of parts start: a part's index
// and an offset in it. It decompresses only the compressed parts it
// reaches, filling in their sizes.
//
// sizes are the files' sizes when the read began: entries written since
// are neither counted nor read (QA round 28: --tail 3 of a flood printed
// 9 lines).
func tailStart(parts []*logPart, sizes []int64, n int) (int, int64, error) {
	last := len(parts) - 1
	if n == 0 {
		if sizes[last] < 0 {
			if _, err := parts[last].file(); err != nil {
				return 0, 0, err
			}
			s, err := parts[last].sizeNow()
			if err != nil {
				return 0, 0, err
			}
			sizes[last] = s
		}
		return last, sizes[last], nil
	}
	buf := make([]byte, 32<<10)
	seen, final := 0, true
	for idx := last; idx >= 0; idx-- {
		f, err := parts[idx].file()
		if err != nil {
			return 0, 0, err
		}
		if sizes[idx] < 0 {
			if sizes[idx], err = parts[idx].sizeNow(); err != nil {
				return 0, 0, err
			}
		}
		off, found, err := scanBackTo(f, sizes[idx], buf, n-seen, &final)
		if err != nil {
			return 0, 0, err
		}
		if found {
			return idx, off, nil
		}
		seen += int(off)
	}
	return 0, 0, nil
}

// entryReader reads one log file's entries, holding a line the writer
// has not finished until the rest comes.
type entryReader struct {
	f       *os.File // what is read: part's file
	part    *logPart
	pending []byte
	buf     []byte
	left    int64 // what may still be read; < 0: to the end, however far it moves
	held    *heldFiles
}

// heldFiles are the log files a follow has read through, kept open (at
// most maxHeldFiles of them, the oldest closed first) so that their
// identities stay theirs: a plain file's, and a compressed one's own
// (the .gz file keeps it through its renames; its decompressed copy is
// let go).
type heldFiles struct{ parts []*logPart }

const maxHeldFiles = 64

func (h *heldFiles) add(p *logPart) {
	p.dropCopy()
	h.parts = append(h.parts, p)
	if len(h.parts) > maxHeldFiles {
		h.parts[0].close()
		h.parts = h.parts[1:]
	}
}

// has says whether p's entries were read already, from p or from the
// file it was compressed from.
func (h *heldFiles) has(p *logPart) bool {
	for _, o := range h.parts {
		if p.holds(o) {
			return true
		}
	}
	return false
}

func (h *heldFiles) close() { closeParts(h.parts) }

// maxEntry bounds a line held while incomplete: an entry holds at most
// logLineMax bytes of output, six times that escaped. Anything longer is
// not the writer's, and is dropped.
const maxEntry = 8 * logLineMax

// drain hands fn each complete line from the file's offset to its
// current end; it stops early when fn says Until has passed.
func (er *entryReader) drain(fn func([]byte) (bool, error)) (past bool, err error) {
	if er.buf == nil {
		er.buf = make([]byte, 64<<10)
	}
	for {
		b := er.buf
		if er.left >= 0 {
			if er.left == 0 {
				return false, nil
			}
			b = b[:min(int64(len(b)), er.left)]
		}
		n, rerr := er.f.Read(b)
		if er.left >= 0 {
			er.left -= int64(n)
		}
		p := er.buf[:n]
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				er.pending = append(er.pending, p...)
				if len(er.pending) > maxEntry {
					er.pending = er.pending[:0]
				}
				break
			}
			line := p[:i]
			if len(er.pending) > 0 {
				line = append(er.pending, line...)
				er.pending = er.pending[:0]
			}
			p = p[i+1:]
			if past, err := fn(line); past || err != nil {
				return past, err
			}
		}
		if errors.Is(rerr, io.EOF) || n == 0 && rerr == nil {
			return false, nil
		}
		if rerr != nil {
			return false, fmt.Errorf("read log %q: %w", er.f.Name(), rerr)
		}
	}
}

// follow reads what the live file gained; if path is another file now
// (rotated), it reads this one to its end and the files rotated after
// it, and returns a reader of the new live file.
func (er *entryReader) follow(path string, fn func([]byte) (bool, error)) (*entryReader, bool, error) {
	if past, err := er.drain(fn); past || err != nil {
		return nil, past, err
	}
	mine, err := er.f.Stat()
	if err != nil {
		return nil, false, err
	}
	if now, err := os.Stat(path); err == nil && os.SameFile(mine, now) {
		// Emptied in place (a rotation that could not move it aside):
		// read it again from its start.
		if at, err := er.f.Seek(0, io.SeekCurrent); err == nil && at > mine.Size() {
			er.pending = er.pending[:0]
			if _, err := er.f.Seek(0, io.SeekStart); err != nil {
				return nil, false, err
			}
			past, err := er.drain(fn)
			return nil, past, err
		}
		return nil, false, nil
	}
	// Rotated (or not made yet): nothing more comes into this file once
	// the writer has opened the new one, which it did before it let go
	// of the lock that openLogSet takes.
	parts, err := openLogSet(path)
	if err != nil {
		return nil, false, err
	}
	if past, err := er.drain(fn); past || err != nil {
		closeParts(parts)
		return nil, past, err
	}
	// The files after this one: those after it in the set (found by its
	// identity, compressed since or not: the last that has it, as an
	// older compressed file may name an inode since reused for this
	// one), or all of them if it was dropped from the set (max-file),
	// but never one read already (a rotation that could not move the
	// files aside dropped this one and left the older ones).
	from := 0
	for i, p := range parts {
		if p.holds(er.part) {
			from = i + 1
		}
	}
	closeParts(parts[:from])
	parts = parts[from:]
	if len(parts) == 0 {
		return nil, false, nil
	}
	if er.held == nil {
		er.held = &heldFiles{}
	}
	last := parts[len(parts)-1]
	for i, p := range parts[:len(parts)-1] {
		if er.held.has(p) {
			p.close()
			continue
		}
		f, err := p.file()
		if err == nil {
			var past bool
			past, err = (&entryReader{f: f, part: p, buf: er.buf, left: -1}).drain(fn)
			if past {
				er.held.add(p)
				closeParts(parts[i+1:])
				return nil, true, nil
			}
		}
		er.held.add(p)
		if err != nil {
			closeParts(parts[i+1:])
			return nil, false, err
		}
	}
	f, err := last.file()
	if err != nil {
		last.close()
		return nil, false, err
	}
	next := &entryReader{f: f, part: last, buf: er.buf, left: -1, held: er.held}
	er.held.add(er.part)
	return next, false, nil
}
