package runtime

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAppendJSONStringAsEncodingJSON: the hand-written string encoder
// writes what encoding/json writes, invalid UTF-8 included.
func TestAppendJSONStringAsEncodingJSON(t *testing.T) {
	cases := []string{"", "hello\n", "tab\there\r\n", `quote " and \ back`, "<a&b>", "\x00\x01\x1f\x7f", "é ü 日本", "\u2028\u2029", "bad \xff\xfe utf8 \xe6\x97", "\xed\xa0\x80"}
	rng := rand.New(rand.NewSource(1))
	for range 200 {
		b := make([]byte, rng.Intn(40))
		rng.Read(b)
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		want, _ := json.Marshal(c)
		if got := appendJSONString(nil, []byte(c)); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", c, got, want)
		}
	}
}

func newTestLog(t *testing.T, lim LogLimit) (*logFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c-json.log")
	lf, err := openLogFile(path, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.close() })
	return lf, path
}

// entries decodes every entry of the files, oldest first.
func entries(t *testing.T, paths ...string) []logEntry {
	t.Helper()
	var out []logEntry
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "\n") {
				t.Fatalf("%s: entry without its newline: %q", p, line)
			}
			var e logEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%s: %q: %v", p, line, err)
			}
			out = append(out, e)
		}
	}
	return out
}

// TestCopyLinesSplitsAsJSONFile: a line per entry, stamped when read; a
// line longer than 16 KiB in 16 KiB parts (only the last with its
// newline), and what is left at the end without one, as moby's copier.
func TestCopyLinesSplitsAsJSONFile(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	at := time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.FixedZone("x", 3600))
	long := strings.Repeat("x", 2*logLineMax+5) + "\n"
	in := "one\ntwo\n" + long + "tail"
	// Read in small pieces, as a pipe may hand them over.
	r := &chunkReader{s: in, n: 7}
	if err := copyLines(r, "stderr", lf, func() time.Time { return at }, nil, nil); err != nil {
		t.Fatal(err)
	}
	got := entries(t, path)
	want := []string{"one\n", "two\n", strings.Repeat("x", logLineMax), strings.Repeat("x", logLineMax), "xxxxx\n", "tail"}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Log != want[i] || e.Stream != "stderr" || !e.Time.Equal(at) {
			t.Errorf("entry %d = %q %s %v, want %q stderr %v", i, e.Log, e.Stream, e.Time, want[i], at)
		}
	}
	b, _ := os.ReadFile(path)
	if first := strings.SplitN(string(b), "\n", 2)[0]; first != `{"log":"one\n","stream":"stderr","time":"2026-12-02T05:00:00.123456789Z"}` {
		t.Errorf("first entry %s, want json-file's form in UTC", first)
	}
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[k:]
	return k, nil
}

// TestLogFileRotatesAtTheWrite: the file is rotated when it has reached
// max-size and an entry comes (moby's WriteLogEntry): no file is bigger
// than max-size plus one entry, max-file bounds the files, and nothing
// in the newest max-file files is lost.
func TestLogFileRotatesAtTheWrite(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{MaxSize: 1000, MaxFiles: 3})
	now := time.Now()
	for i := range 200 {
		if err := lf.write("stdout", fmt.Appendf(nil, "line %d\n", i), now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(rotated(path, 3)); !os.IsNotExist(err) {
		t.Errorf("max-file 3 left %s", rotated(path, 3))
	}
	var got []logEntry
	for _, p := range []string{rotated(path, 2), rotated(path, 1), path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1000+100 {
			t.Errorf("%s holds %d bytes, more than max-size and an entry", p, fi.Size())
		}
		got = append(got, entries(t, p)...)
	}
	last := 199
	for i := len(got) - 1; i >= 0; i-- {
		if want := fmt.Sprintf("line %d\n", last); got[i].Log != want {
			t.Fatalf("entry %d = %q, want %q (consecutive up to the last)", i, got[i].Log, want)
		}
		last--
	}

	// max-file 1: the full file is deleted, and a new one started.
	one, path1 := newTestLog(t, LogLimit{MaxSize: 100, MaxFiles: 1})
	for i := range 10 {
		one.write("stdout", fmt.Appendf(nil, "line %d\n", i), now)
	}
	if _, err := os.Stat(rotated(path1, 1)); !os.IsNotExist(err) {
		t.Errorf("max-file 1 left %s", rotated(path1, 1))
	}
	if got := entries(t, path1); len(got) == 0 || got[len(got)-1].Log != "line 9\n" || len(got) > 2 {
		t.Errorf("max-file 1: %d entries, last %v", len(got), got)
	}
}

// TestLogFileCompressesRotated: with compress, each rotated file becomes
// path.N.gz, as moby's LogFile keeps it (a gzip stream whose header's
// Extra is JSON with the time of its last entry), the next rotation
// waiting for the compression; nothing uncompressed or half-written is
// left, and docker logs reads the set whole, --tail and --since
// included.
func TestLogFileCompressesRotated(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{MaxSize: 1000, MaxFiles: 4, Compress: true})
	base := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	const total = 300
	for i := range total {
		if err := lf.write("stdout", fmt.Appendf(nil, "line %d\n", i), at(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := lf.close(); err != nil { // waits for the last compression
		t.Fatal(err)
	}
	names, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	var short []string
	for _, n := range names {
		short = append(short, strings.TrimPrefix(n, path))
	}
	if want := []string{"", ".1.gz", ".2.gz", ".3.gz"}; !slices.Equal(short, want) {
		t.Fatalf("files %q, want %q", short, want)
	}
	var got []logEntry
	for _, n := range []string{rotated(path, 3) + gzSuffix, rotated(path, 2) + gzSuffix, rotated(path, 1) + gzSuffix} {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			LastTime time.Time `json:"lastTime"`
		}
		if err := json.Unmarshal(zr.Header.Extra, &h); err != nil {
			t.Errorf("%s: header's Extra %q: %v", n, zr.Header.Extra, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var es []logEntry
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var e logEntry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("%s: %q: %v", n, l, err)
			}
			es = append(es, e)
		}
		if last := es[len(es)-1].Time; !h.LastTime.Equal(last) {
			t.Errorf("%s: lastTime %v, want its last entry's %v", n, h.LastTime, last)
		}
		got = append(got, es...)
	}
	got = append(got, entries(t, path)...)
	first := total - len(got)
	for i, e := range got {
		if want := fmt.Sprintf("line %d\n", first+i); e.Log != want {
			t.Fatalf("entry %d = %q, want %q", i, e.Log, want)
		}
	}
	read := func(o LogOptions) []string {
		t.Helper()
		var out bytes.Buffer
		if err := readJSONLog(context.Background(), path, &out, nil, o, nil); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	}
	if all := read(LogOptions{Tail: -1}); len(all) != len(got) || all[0] != fmt.Sprintf("line %d", first) || all[len(all)-1] != fmt.Sprintf("line %d", total-1) {
		t.Errorf("docker logs: %d lines, %q … %q; want %d, line %d … line %d", len(all), all[0], all[len(all)-1], len(got), first, total-1)
	}
	n := len(entries(t, path)) + 5 // into the newest compressed file
	if tail := read(LogOptions{Tail: n}); len(tail) != n || tail[0] != fmt.Sprintf("line %d", total-n) {
		t.Errorf("--tail %d: %d lines from %q", n, len(tail), tail[0])
	}
	if since := read(LogOptions{Tail: -1, Since: at(first + 10)}); len(since) != len(got)-10 || since[0] != fmt.Sprintf("line %d", first+10) {
		t.Errorf("--since: %d lines from %q", len(since), since[0])
	}
	// --since past every compressed file's last entry: their headers
	// say so, and the live file's lines alone come.
	liveFirst := total - len(entries(t, path))
	if since := read(LogOptions{Tail: -1, Since: at(liveFirst)}); len(since) != total-liveFirst || since[0] != fmt.Sprintf("line %d", liveFirst) {
		t.Errorf("--since the live file's first entry: %d lines from %q", len(since), since[0])
	}

	// A compressed file that cannot be read fails the reads that reach
	// it, and only those (moby opens one when its read gets there).
	if err := os.WriteFile(rotated(path, 3)+gzSuffix, []byte("not gzip"), 0o640); err != nil {
		t.Fatal(err)
	}
	if tail := read(LogOptions{Tail: 2}); len(tail) != 2 || tail[1] != fmt.Sprintf("line %d", total-1) {
		t.Errorf("--tail 2 beside a broken compressed file: %q", tail)
	}
	var out bytes.Buffer
	if err := readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: -1}, nil); err == nil || !strings.Contains(err.Error(), "decompress log") {
		t.Errorf("reading through a broken compressed file: %v, want its error", err)
	}
}

// TestOpenLogFileRemovesStaleCompressions: a compression cut short (its
// process killed) leaves a temporary file, which the next writer of the
// log removes; the log's own files stay.
func TestOpenLogFileRemovesStaleCompressions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	keep := []string{path + ".1", path + ".2.gz", filepath.Join(dir, "other-json.log.1.gz.tmp123")}
	for _, name := range append([]string{path + ".1.gz.tmp4567", path + ".3.gz.tmp1"}, keep...) {
		if err := os.WriteFile(name, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	lf, err := openLogFile(path, LogLimit{})
	if err != nil {
		t.Fatal(err)
	}
	lf.close()
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	want := append([]string{path}, keep...)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("files %q, want %q", names, want)
	}
}

// TestCompressionsOfOneFileAtOnce: two writers of one log (a restarted
// container's beside the one before) compressing the same rotated file
// at once each write a file of their own; one takes the rotated file's
// place, whole, the other gives up, and nothing half-written is left.
func TestCompressionsOfOneFileAtOnce(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "c-json.log.1")
	var want bytes.Buffer
	for i := range 20000 {
		want.WriteString(appendEntryString(i))
	}
	if err := os.WriteFile(src, want.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = compressLogFile(src, time.Now()) })
	}
	wg.Wait()
	if errs[0] != nil && errs[1] != nil {
		t.Fatalf("both compressions failed: %v; %v", errs[0], errs[1])
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(names) != 1 || names[0] != src+gzSuffix {
		t.Fatalf("files %q, want the compressed one alone", names)
	}
	f, err := os.Open(src + gzSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the compressed file holds %d bytes (%v), want the %d of the rotated one", len(got), err, want.Len())
	}
}

func appendEntryString(i int) string {
	return string(appendEntry(nil, "stdout", fmt.Appendf(nil, "line %d\n", i), time.Unix(int64(i), 0), nil))
}

// TestCompressionLeavesAMovedFile: a compression that finds its file
// rotated away meanwhile (by another writer of the same log, a restarted
// container's) leaves it as it is, uncompressed where it went, and no
// compressed copy anywhere: a reader takes the set whole and in order.
func TestCompressionLeavesAMovedFile(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	writeEntries(t, lf, time.Now(), "stdout:a", "stdout:b")
	lf.close()
	if err := shiftLogFiles(path, 3); err != nil {
		t.Fatal(err)
	}
	other, err := openLogFile(path, LogLimit{})
	if err != nil {
		t.Fatal(err)
	}
	writeEntries(t, other, time.Now(), "stdout:c")
	other.close()
	beforeCompressedSwap = func() {
		if err := shiftLogFiles(path, 3); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { beforeCompressedSwap = nil })
	if err := compressLogFile(rotated(path, 1), time.Now()); err == nil || !strings.Contains(err.Error(), "rotated again meanwhile") {
		t.Errorf("compressLogFile = %v, want it to say the file moved", err)
	}
	names, _ := filepath.Glob(path + "*")
	var short []string
	for _, n := range names {
		short = append(short, strings.TrimPrefix(n, path))
	}
	if want := []string{".1", ".2"}; !slices.Equal(short, want) {
		t.Errorf("files %q, want %q", short, want)
	}
	var out bytes.Buffer
	if err := readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: -1}, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\nb\nc\n" {
		t.Errorf("read %q, want a, b, c", out.String())
	}
}

// TestLogFileRotationThatCannotMove: when the full file cannot be moved
// aside (here max-file 2 and a directory where path.1 would go), it is
// emptied and the writer goes on, with a warning, as moby's LogFile does;
// a follower reads on from the emptied file's start. Every entry after
// the first failed rotation was dropped before.
func TestLogFileRotationThatCannotMove(t *testing.T) {
	// max-file 2 with path.1 blocked from the start; max-file 3 after a
	// rotation that worked, so that the follower has read path.1 when
	// its file is dropped (it read path.1 again at each failed rotation).
	for _, maxFiles := range []int{2, 3} {
		t.Run(fmt.Sprint("max-file ", maxFiles), func(t *testing.T) {
			lf, path := newTestLog(t, LogLimit{MaxSize: 200, MaxFiles: maxFiles})
			var warned []error
			lf.warn = func(err error) { warned = append(warned, err) }
			block := func() {
				if err := os.MkdirAll(filepath.Join(rotated(path, maxFiles-1), "x"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if maxFiles == 2 {
				block()
			}
			done := make(chan struct{})
			var out bytes.Buffer
			followed := make(chan error, 1)
			go func() {
				followed <- readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: -1, Follow: true}, done)
			}()
			now := time.Now()
			for i := range 40 {
				if err := lf.write("stdout", fmt.Appendf(nil, "line %d\n", i), now); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				if i == 4 && maxFiles == 3 {
					block() // path.1 holds lines 0-2 now
				}
				if i%3 == 2 {
					// Three entries fill a file: the follower reads each
					// file before the next write drops it.
					time.Sleep(2 * followInterval)
				}
			}
			close(done)
			if err := <-followed; err != nil {
				t.Fatal(err)
			}
			if len(warned) == 0 {
				t.Error("no warning of the rotation that failed")
			}
			got := entries(t, path)
			if len(got) == 0 || got[len(got)-1].Log != "line 39\n" {
				t.Errorf("live file after failed rotations: %v, want it to end with line 39", got)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			for i, l := range lines {
				if l != fmt.Sprintf("line %d", i) {
					t.Fatalf("followed line %d = %q (of %d)", i, l, len(lines))
				}
			}
			if len(lines) != 40 {
				t.Errorf("followed %d lines, want 40", len(lines))
			}
		})
	}
}

// TestReadJSONLogFollowsATruncation: a follower whose file is emptied in
// place (logrotate's copytruncate, or a rotation that could neither move
// nor remove the file) reads on from the file's new start.
func TestReadJSONLogFollowsATruncation(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	writeEntries(t, lf, time.Now(), "stdout:first entry, a long one", "stdout:second entry, a long one")
	done := make(chan struct{})
	var out bytes.Buffer
	followed := make(chan error, 1)
	go func() {
		followed <- readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: -1, Follow: true}, done)
	}()
	time.Sleep(3 * followInterval)
	lf.mu.Lock()
	if err := lf.f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	lf.size = 0
	lf.mu.Unlock()
	writeEntries(t, lf, time.Now(), "stdout:third")
	time.Sleep(3 * followInterval)
	close(done)
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if want := "first entry, a long one\nsecond entry, a long one\nthird\n"; out.String() != want {
		t.Errorf("followed %q, want %q", out.String(), want)
	}
}

// writeEntries writes lines to a log, one second apart from base.
func writeEntries(t *testing.T, lf *logFile, base time.Time, lines ...string) {
	t.Helper()
	for i, l := range lines {
		stream, text, _ := strings.Cut(l, ":")
		if err := lf.write(stream, []byte(text+"\n"), base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadJSONLogSelects: streams go to their writers in the order they
// were written; --tail counts entries of both streams across the
// rotated files before the stream is chosen (as moby's); --since,
// --until and -t work on the entries' times.
func TestReadJSONLogSelects(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{MaxSize: 120, MaxFiles: 10})
	base := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	writeEntries(t, lf, base, "stdout:a", "stderr:b", "stdout:c", "stdout:d", "stderr:e", "stdout:f")
	if _, err := os.Stat(rotated(path, 2)); err != nil {
		t.Fatalf("the test wants the entries spread over rotated files: %v", err)
	}
	read := func(o LogOptions, both bool) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		var ew io.Writer
		if both {
			ew = &errb
		}
		if err := readJSONLog(context.Background(), path, &out, ew, o, nil); err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String()
	}
	for _, c := range []struct {
		name          string
		o             LogOptions
		both          bool
		stdout, stder string
	}{
		{"all", LogOptions{Tail: -1}, true, "a\nc\nd\nf\n", "b\ne\n"},
		{"tail 3", LogOptions{Tail: 3}, true, "d\nf\n", "e\n"},
		{"tail 2 of stdout only", LogOptions{Tail: 2}, false, "f\n", ""},
		{"tail 0", LogOptions{Tail: 0}, true, "", ""},
		{"tail 100", LogOptions{Tail: 100}, true, "a\nc\nd\nf\n", "b\ne\n"},
		{"since", LogOptions{Tail: -1, Since: base.Add(2 * time.Second)}, true, "c\nd\nf\n", "e\n"},
		{"until", LogOptions{Tail: -1, Until: base.Add(time.Second)}, true, "a\n", "b\n"},
		{"since and until", LogOptions{Tail: -1, Since: base.Add(time.Second), Until: base.Add(3 * time.Second)}, true, "c\nd\n", "b\n"},
		{"timestamps", LogOptions{Tail: 1, Timestamps: true}, true, "2026-12-02T06:00:05.000000000Z f\n", ""},
		// moby's WriteLogStream: the time, then the attributes (none) and a space.
		{"details", LogOptions{Tail: 2, Details: true}, true, " f\n", " e\n"},
		{"details and timestamps", LogOptions{Tail: 1, Details: true, Timestamps: true}, true, "2026-12-02T06:00:05.000000000Z  f\n", ""},
	} {
		out, errOut := read(c.o, c.both)
		if out != c.stdout || errOut != c.stder {
			t.Errorf("%s: stdout %q, stderr %q; want %q, %q", c.name, out, errOut, c.stdout, c.stder)
		}
	}
}

// TestLogAttrsAsJSONFile: a log with attributes (json-file's labels,
// env, tag) writes them into each entry where moby's JSONLogs does, and
// docker logs --details shows them as moby's logstream does: by key,
// each escaped as a URL query's, then a space, after the time.
func TestLogAttrsAsJSONFile(t *testing.T) {
	attrs, err := json.Marshal(map[string]string{"tag": "web/1", "X": "a b&c", "stage": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	lf, path := newTestLog(t, LogLimit{Attrs: attrs})
	at := time.Date(2026, 12, 2, 6, 0, 0, 5, time.UTC)
	writeEntries(t, lf, at, "stdout:hello", "stderr:oops")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	// moby's jsonlog.JSONLogs.MarshalJSONBuf: log, stream, attrs, time.
	if want := `{"log":"hello\n","stream":"stdout","attrs":{"X":"a b\u0026c","stage":"prod","tag":"web/1"},"time":"2026-12-02T06:00:00.000000005Z"}`; first != want {
		t.Errorf("entry\n%s\nwant\n%s", first, want)
	}
	var out, errOut bytes.Buffer
	if err := readJSONLog(context.Background(), path, &out, &errOut, LogOptions{Tail: -1, Details: true, Timestamps: true}, nil); err != nil {
		t.Fatal(err)
	}
	if want := "2026-12-02T06:00:00.000000005Z X=a+b%26c,stage=prod,tag=web%2F1 hello\n"; out.String() != want {
		t.Errorf("--details -t: %q, want %q", out.String(), want)
	}
	if want := "X=a+b%26c,stage=prod,tag=web%2F1 oops\n"; !strings.HasSuffix(errOut.String(), want) {
		t.Errorf("--details stderr: %q, want it to end %q", errOut.String(), want)
	}
	out.Reset()
	if err := readJSONLog(context.Background(), path, &out, io.Discard, LogOptions{Tail: -1}, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\n" {
		t.Errorf("without --details: %q", out.String())
	}
}

// TestReadJSONLogSinceOnce: --since drops the entries before the first
// one at or after it, and none after that one, whatever their times (a
// clock stepped back), as moby's forwarder.
func TestReadJSONLogSinceOnce(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	base := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	for i, sec := range []int{0, 5, 2, 7} {
		if err := lf.write("stdout", fmt.Appendf(nil, "e%d\n", i), base.Add(time.Duration(sec)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := readJSONLog(context.Background(), path, &out, io.Discard, LogOptions{Tail: -1, Since: base.Add(3 * time.Second)}, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "e1\ne2\ne3\n" {
		t.Errorf("--since: %q, want e1, e2 (stamped before since, after e1) and e3", out.String())
	}
}

// TestReadJSONLogFollowsRotations: a follower sees every entry once, in
// order, while the writer rotates under it (also more than once between
// two looks), and stops once done is closed and the rest is read.
func TestReadJSONLogFollowsRotations(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			followRotations(t, LogLimit{MaxSize: 300, MaxFiles: 50, Compress: compress})
		})
	}
}

func followRotations(t *testing.T, lim LogLimit) {
	lf, path := newTestLog(t, lim)
	done := make(chan struct{})
	var out bytes.Buffer
	followed := make(chan error, 1)
	go func() {
		followed <- readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: -1, Follow: true}, done)
	}()
	const total = 2000
	for i := range total {
		if err := lf.write("stdout", fmt.Appendf(nil, "line %d\n", i), time.Now()); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(followInterval) // about 10 rotations per look: the follower keeps up with max-file
		}
	}
	close(done)
	select {
	case err := <-followed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not end after done")
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	// Every line, though the files that held most of them are gone.
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d = %q (of %d lines followed, want %d)", i, l, len(lines), total)
		}
	}
	if len(lines) != total {
		t.Fatalf("followed %d lines, want %d", len(lines), total)
	}
}

// TestReadJSONLogFollowUntil: a follower with --until stops at the first
// entry past it, and without one once the time has passed.
func TestReadJSONLogFollowUntil(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	base := time.Now()
	writeEntries(t, lf, base, "stdout:a", "stdout:b")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := readJSONLog(ctx, path, &out, nil, LogOptions{Tail: -1, Follow: true, Until: base.Add(500 * time.Millisecond)}, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\n" {
		t.Errorf("followed %q, want the entry before until", out.String())
	}
	out.Reset()
	if err := readJSONLog(ctx, path, &out, nil, LogOptions{Tail: -1, Follow: true, Until: time.Now().Add(200 * time.Millisecond)}, nil); err != nil {
		t.Errorf("follow until a time that passes: %v", err)
	}
}

// TestReadJSONLogMissing: no log yet is an empty one; a follower waits
// for it to appear.
func TestReadJSONLogMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	var out bytes.Buffer
	if err := readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: 5}, nil); err != nil || out.Len() != 0 {
		t.Fatalf("no log: %q, %v", out.String(), err)
	}
	done := make(chan struct{})
	followed := make(chan error, 1)
	go func() {
		followed <- readJSONLog(context.Background(), path, &out, nil, LogOptions{Tail: 0, Follow: true}, done)
	}()
	time.Sleep(2 * followInterval)
	// Made and rotated several times between two looks (the gate lets a
	// held burst through at once): the follower reads every file.
	lf, err := openLogFile(path, LogLimit{MaxSize: 200, MaxFiles: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer lf.close()
	var want strings.Builder
	for i := range 10 {
		fmt.Fprintf(&want, "late %d\n", i)
		lf.write("stdout", fmt.Appendf(nil, "late %d\n", i), time.Now())
	}
	if _, err := os.Stat(rotated(path, 2)); err != nil {
		t.Fatalf("the test wants rotations: %v", err)
	}
	time.Sleep(2 * followInterval)
	close(done)
	if err := <-followed; err != nil || out.String() != want.String() {
		t.Errorf("follower of a log made later: %q, %v; want every line", out.String(), err)
	}
}

// failingSink fails the writes it is told to.
type failingSink struct {
	fail map[int]bool
	n    int
	got  []string
}

func (f *failingSink) write(stream string, p []byte, t time.Time) error {
	f.n++
	if f.fail[f.n] {
		return fmt.Errorf("disk full")
	}
	f.got = append(f.got, string(p))
	return nil
}

// TestCopyLinesGoesOnAfterAWriteError: a write that fails loses its own
// entry only (the disk may have room again for the next), is warned of
// once, and the count comes at the end.
func TestCopyLinesGoesOnAfterAWriteError(t *testing.T) {
	sink := &failingSink{fail: map[int]bool{2: true, 3: true}}
	var warned []error
	err := copyLines(strings.NewReader("a\nb\nc\nd\n"), "stdout", sink, time.Now, func(err error) { warned = append(warned, err) }, nil)
	if strings.Join(sink.got, "") != "a\nd\n" {
		t.Errorf("written %q, want the entries whose writes worked", sink.got)
	}
	if len(warned) != 1 || err == nil || !strings.Contains(err.Error(), "2 log entries lost") {
		t.Errorf("warned %v, returned %v; want one warning and the count", warned, err)
	}
}

// TestConvertLegacyLogs: an older berth's raw files become a json log
// (stdout's then stderr's lines, all stamped with the oldest file's
// time) and go; raw files beside a json log (a conversion that died
// after its rename) are only removed, never converted twice.
func TestConvertLegacyLogs(t *testing.T) {
	r := &Runtime{cfg: Config{DataDir: t.TempDir()}}
	id := strings.Repeat("ab", 32)
	os.MkdirAll(r.dataDir(id), 0o711)
	out, errp := r.LogPaths(id)
	newer, older := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	write := func() {
		for p, c := range map[string]string{out: "o1\no2", errp: "e1\n"} {
			os.WriteFile(p, []byte(c), 0o640)
		}
		os.Chtimes(out, newer, newer)
		os.Chtimes(errp, older, older)
	}
	write()
	if err := r.convertLegacyLogs(id); err != nil {
		t.Fatal(err)
	}
	got := entries(t, r.JSONLogPath(id))
	var s []string
	for _, e := range got {
		if !e.Time.Equal(older) {
			t.Errorf("entry %q at %v, want the oldest file's time %v", e.Log, e.Time, older)
		}
		s = append(s, e.Stream+":"+e.Log)
	}
	if strings.Join(s, "|") != "stdout:o1\n|stdout:o2|stderr:e1\n" {
		t.Errorf("converted %q", s)
	}
	if fileExists(out) || fileExists(errp) || fileExists(r.JSONLogPath(id)+".converting") {
		t.Error("raw or temporary files left after the conversion")
	}
	write() // as if the removal had not happened
	if err := r.convertLegacyLogs(id); err != nil {
		t.Fatal(err)
	}
	if again := entries(t, r.JSONLogPath(id)); len(again) != len(got) || fileExists(out) {
		t.Errorf("raw files beside a json log: %d entries (want %d), raw left %v", len(again), len(got), fileExists(out))
	}
}

// TestLogGate: what comes before runc has returned is held, then written
// first and in order when the start succeeded, or dropped when it failed
// (runc's own error may be on the container's stderr); a writer past
// maxHeld waits for the decision instead of growing the hold.
func TestLogGate(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	g := newLogGate()
	now := time.Now()
	g.write("stdout", []byte("early\n"), now)
	g.write("stderr", []byte("early err\n"), now)
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("written before the gate opened: %q", b)
	}
	g.open(lf)
	g.write("stdout", []byte("later\n"), now)
	var got []string
	for _, e := range entries(t, path) {
		got = append(got, e.Stream+":"+e.Log)
	}
	if want := []string{"stdout:early\n", "stderr:early err\n", "stdout:later\n"}; strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("entries %q, want %q", got, want)
	}

	// Tiny entries count their records too.
	tiny := newLogGate()
	blocked := make(chan struct{})
	go func() {
		for range maxHeld/(1+heldOverhead) + 2 {
			tiny.write("stdout", []byte("\n"), now)
		}
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Error("a gate took more than maxHeld of empty lines, records counted")
	case <-time.After(100 * time.Millisecond):
	}
	tiny.open(nil)
	<-blocked

	dropped := newLogGate()
	dropped.write("stderr", []byte("runc: error\n"), now)
	full := make(chan struct{})
	go func() {
		dropped.write("stdout", make([]byte, maxHeld), now)
		dropped.write("stdout", []byte("waits\n"), now) // past maxHeld: waits for open
		close(full)
	}()
	select {
	case <-full:
		t.Fatal("a write past maxHeld did not wait for the gate to open")
	case <-time.After(100 * time.Millisecond):
	}
	dropped.open(nil)
	<-full
	if dropped.file() != nil || len(dropped.held) != 0 {
		t.Errorf("a gate opened onto nothing kept %d entries", len(dropped.held))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestReadJSONLogEndsAtTheSizeItFound: without follow, a read ends where
// the files ended when it began, as moby's: a docker logs --tail 2 of a
// container flooding its log printed 98 million lines (QA round 28).
func TestReadJSONLogEndsAtTheSizeItFound(t *testing.T) {
	lf, path := newTestLog(t, LogLimit{})
	writeEntries(t, lf, time.Now(), "stdout:a", "stdout:b")
	n := 0
	w := writerFunc(func(p []byte) (int, error) {
		n++
		if n > 100 {
			return 0, fmt.Errorf("still reading")
		}
		lf.write("stdout", []byte("more\n"), time.Now()) // the writer goes on meanwhile
		return len(p), nil
	})
	if err := readJSONLog(context.Background(), path, w, nil, LogOptions{Tail: 1}, nil); err != nil || n != 1 {
		t.Errorf("--tail 1 wrote %d entries (%v), want the one there was", n, err)
	}
}

// stuckSub is a client that does not read until released.
type stuckSub struct{ release chan struct{} }

func (s stuckSub) send(byte, []byte) error { <-s.release; return nil }
func (s stuckSub) end()                    {}

// TestFanStuckClientHoldsOnlyItsDeliveries: a client that does not read
// holds the run's deliveries (the container waits, as in Docker), but
// attaching, detaching and ending never wait for it (review of QA round
// 28: the reaper's lock waited behind it, and every start with it).
func TestFanStuckClientHoldsOnlyItsDeliveries(t *testing.T) {
	f := &outputFan{opened: true}
	stuck := stuckSub{release: make(chan struct{})}
	f.add(stuck)
	writing := make(chan struct{})
	go func() { f.write(1, []byte("x")); close(writing) }()
	time.Sleep(20 * time.Millisecond)
	other := newWriterSub(io.Discard, io.Discard)
	done := make(chan struct{})
	go func() {
		f.add(other)
		f.remove(other)
		f.end()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("attach, detach or end waited for a client that does not read")
	}
	select {
	case <-writing:
		t.Fatal("the delivery did not wait for the client")
	default:
	}
	close(stuck.release)
	<-writing
}

// heldSink is a log that takes nothing until released, then records.
type heldSink struct {
	release chan struct{}
	mu      sync.Mutex
	got     []string
	closed  bool
}

func (h *heldSink) write(stream string, p []byte, t time.Time) error {
	<-h.release
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, string(p))
	return nil
}

func (h *heldSink) close() error { h.closed = true; return nil }

// TestRingSinkDropsWhenFull: mode=non-blocking never waits for the log:
// entries queue up to max-buffer-size and a new one past it is dropped
// (moby's messageRing); what was queued is written in order, and close
// writes the rest.
func TestRingSinkDropsWhenFull(t *testing.T) {
	out := &heldSink{release: make(chan struct{})}
	r := newRingSink(out, 10)
	done := make(chan struct{})
	go func() {
		for i := range 20 {
			r.write("stdout", fmt.Appendf(nil, "%d\n", i), time.Now()) // 2-3 bytes each
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a write waited for the log")
	}
	close(out.release)
	if err := r.close(); err != nil || !out.closed {
		t.Fatalf("close: %v, log closed %v", err, out.closed)
	}
	if r.dropped == 0 || len(out.got)+r.dropped != 20 {
		t.Errorf("%d written, %d dropped, want some dropped and the rest written", len(out.got), r.dropped)
	}
	for i := 1; i < len(out.got); i++ {
		var a, b int
		fmt.Sscan(out.got[i-1], &a)
		fmt.Sscan(out.got[i], &b)
		if b <= a {
			t.Errorf("written out of order: %q", out.got)
			break
		}
	}
}

// A rotation renames only the rotated files there are: a max-file in the
// millions once meant millions of renames under the log's locks each time.
func TestShiftLogFilesRenamesOnlyWhatIsThere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	for _, p := range []string{path, rotated(path, 1), rotated(path, 2)} {
		if err := os.WriteFile(p, []byte(filepath.Base(p)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := shiftLogFiles(path, 2_000_000_000); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("a rotation took %v", d) // two billion renames would take hours; this only ends a hang
	}
	for i, want := range map[int]string{1: "c-json.log", 2: "c-json.log.1", 3: "c-json.log.2"} {
		if b, err := os.ReadFile(rotated(path, i)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", rotated(path, i), b, err, want)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the live file is still there: %v", err)
	}
	// At the bound, the oldest goes: with max-file 3, path.2 is dropped
	// and path.1 takes its place.
	if err := os.WriteFile(path, []byte("live"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := shiftLogFiles(path, 3); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]string{1: "live", 2: "c-json.log"} {
		if b, err := os.ReadFile(rotated(path, i)); err != nil || string(b) != want {
			t.Errorf("at the bound, %s: %q, %v; want %q", rotated(path, i), b, err, want)
		}
	}
}
