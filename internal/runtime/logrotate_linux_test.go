package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rotRig is a runtime with only a data directory, and one container's
// stdout log, written as a container writes it (O_APPEND).
type rotRig struct {
	t       *testing.T
	r       *Runtime
	id      string
	path    string
	f       *os.File
	written bytes.Buffer
	line    int
}

func newRotRig(t *testing.T, noCollapse bool) *rotRig {
	t.Helper()
	dir := t.TempDir()
	g := &rotRig{t: t, r: &Runtime{cfg: Config{DataDir: dir}}, id: strings.Repeat("ab", 32)}
	g.r.rot.noCollapse.Store(noCollapse)
	g.path, _ = g.r.LogPaths(g.id)
	if err := os.MkdirAll(filepath.Dir(g.path), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	g.f = f
	return g
}

// write appends n numbered lines.
func (g *rotRig) write(n int) {
	g.t.Helper()
	var b strings.Builder
	for range n {
		g.line++
		fmt.Fprintf(&b, "line %06d %s\n", g.line, strings.Repeat("=", 50))
	}
	if _, err := g.f.WriteString(b.String()); err != nil {
		g.t.Fatal(err)
	}
	g.written.WriteString(b.String())
}

func (g *rotRig) rotate(lim LogLimit) {
	g.t.Helper()
	if err := g.r.RotateLogs(g.id, lim); err != nil {
		g.t.Fatal(err)
	}
}

// stream is the stream's files read oldest first.
func (g *rotRig) stream() string {
	g.t.Helper()
	var b strings.Builder
	for _, p := range existingLogFiles(g.path) {
		data, err := os.ReadFile(p)
		if err != nil {
			g.t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

// TestRotateLogsKeepsTheStream: rotations keep max-file files, the oldest
// going first; read oldest first they are exactly what was written (less
// what the oldest file dropped), with a collapsing file system and with
// copy-and-truncate when nothing is written during the rotation.
func TestRotateLogsKeepsTheStream(t *testing.T) {
	for _, noCollapse := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCollapse=%v", noCollapse), func(t *testing.T) {
			g := newRotRig(t, noCollapse)
			lim := LogLimit{MaxSize: 16 << 10, MaxFiles: 3}
			g.write(100) // 6.2 KB: under the limit
			g.rotate(lim)
			if _, err := os.Stat(rotated(g.path, 1)); !os.IsNotExist(err) {
				t.Fatalf("a file under max-size was rotated (%v)", err)
			}
			g.write(300)
			g.rotate(lim)
			if got := g.stream(); got != g.written.String() {
				t.Fatalf("after one rotation the files hold %d bytes that differ from the %d written", len(got), g.written.Len())
			}
			fi, err := os.Stat(g.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() >= 8<<10 {
				t.Errorf("the live file kept %d bytes after a rotation", fi.Size())
			}
			// Collapsing keeps the last partial block (the writes are
			// not block-sized); copy-and-truncate keeps nothing.
			collapsed := !noCollapse && collapseWorks(t, filepath.Dir(g.path))
			if collapsed != (fi.Size() > 0) || collapsed == g.r.rot.noCollapse.Load() {
				t.Errorf("collapse expected %v: live file %d bytes, fell back to truncation %v", collapsed, fi.Size(), g.r.rot.noCollapse.Load())
			}
			g.write(400)
			g.rotate(lim)
			if got := g.stream(); got != g.written.String() {
				t.Fatalf("after two rotations the files differ from what was written")
			}
			first, err := os.ReadFile(rotated(g.path, 2))
			if err != nil {
				t.Fatal(err)
			}
			g.write(400)
			g.rotate(lim) // three rotations, max-file 3: the first rotated file goes
			if _, err := os.Stat(rotated(g.path, 3)); !os.IsNotExist(err) {
				t.Errorf("max-file 3 left a fourth file (%v)", err)
			}
			// The file that went may have ended inside a line: its rest
			// left the new oldest file too, which starts with a line.
			want := strings.TrimPrefix(g.written.String(), string(first))
			if !strings.HasSuffix(string(first), "\n") {
				want = want[strings.IndexByte(want, '\n')+1:]
			}
			if got := g.stream(); got != want || !strings.HasPrefix(got, "line ") {
				t.Errorf("after the oldest file went, the files (%d bytes, starting %.12q) differ from the rest of what was written (%d bytes)", len(got), got, len(want))
			}
		})
	}
}

// TestRotateLogsMaxFileOne: max-file 1 empties a full file, as json-file
// does, and keeps no rotated file.
func TestRotateLogsMaxFileOne(t *testing.T) {
	g := newRotRig(t, false)
	g.write(500)
	g.rotate(LogLimit{MaxSize: 10 << 10, MaxFiles: 1})
	if _, err := os.Stat(rotated(g.path, 1)); !os.IsNotExist(err) {
		t.Errorf("max-file 1 kept a rotated file (%v)", err)
	}
	if got := g.stream(); got != "" {
		t.Errorf("after the rotation the live file has %d bytes, want none", len(got))
	}
	g.write(2)
	if got := g.stream(); !strings.HasPrefix(got, "line 000501") {
		t.Errorf("the next lines go to the start of the file: %.20q", got)
	}
}

// TestFollowAcrossRotation: a follower reading the live file while it is
// rotated gets every line once, in order: what the rotation moved before
// the follower read it comes from path.1.
func TestFollowAcrossRotation(t *testing.T) {
	for _, noCollapse := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCollapse=%v", noCollapse), func(t *testing.T) {
			g := newRotRig(t, noCollapse)
			lim := LogLimit{MaxSize: 8 << 10, MaxFiles: 2}
			var got bytes.Buffer
			tail := &logTail{path: g.path, w: &got, lines: -1, rot: g.r.rot.of(g.path)}
			defer tail.close()
			g.write(50)
			if err := tail.copy(); err != nil {
				t.Fatal(err)
			}
			for round := range 6 {
				g.write(120 + 37*round) // unread when the rotation comes
				g.rotate(lim)
				g.write(3)
				if err := tail.copy(); err != nil {
					t.Fatal(err)
				}
				if got.String() != g.written.String() {
					t.Fatalf("round %d: the follower read %d bytes that differ from the %d written", round, got.Len(), g.written.Len())
				}
			}
		})
	}
}

// collapseWorks reports whether the file system of dir collapses ranges
// (ext4, xfs; not tmpfs), so that a test knows which way a rotation went.
func collapseWorks(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, st.Bsize) == nil
}

// TestRotateLogsMaxFileTwo: with max-file 2 the only rotated file is
// replaced at each rotation; read from its start, the stream begins with
// a whole line even when the file that went ended inside one.
func TestRotateLogsMaxFileTwo(t *testing.T) {
	g := newRotRig(t, false)
	lim := LogLimit{MaxSize: 8 << 10, MaxFiles: 2}
	for range 5 {
		g.write(211) // not a whole number of blocks: cuts fall inside lines
		g.rotate(lim)
		got := g.stream()
		if !strings.HasPrefix(got, "line ") || !strings.HasSuffix(g.written.String(), got) {
			t.Fatalf("the stream starts %.16q; want a whole line, and the end of what was written", got)
		}
		if _, err := os.Stat(rotated(g.path, 2)); !os.IsNotExist(err) {
			t.Fatalf("max-file 2 left path.2 (%v)", err)
		}
	}
}

// TestRotateLogsHugeMaxFile: max-file has no upper bound (json-file has
// none either); a rotation renames only the files there are, so with two
// billion allowed it is as quick as with four (it tried two billion
// renames, and stalled every container's rotation: QA round 27). A
// regression shows as this test running for minutes.
func TestRotateLogsHugeMaxFile(t *testing.T) {
	g := newRotRig(t, false)
	lim := LogLimit{MaxSize: 8 << 10, MaxFiles: 2_000_000_000}
	for range 3 {
		g.write(211)
		g.rotate(lim)
	}
	if got := existingLogFiles(g.path); len(got) != 4 {
		t.Errorf("after 3 rotations: %q, want path.3 to path.1 and the live file", got)
	}
	if got := g.stream(); got != g.written.String() {
		t.Errorf("the stream lost lines: %d bytes of %d", len(got), g.written.Len())
	}
}

// TestRotationThatFailsChangesNothing: a rotation that cannot write the
// new path.1 leaves the live and rotated files as they were (it used to
// shift them first, and each retry pushed one more off the end).
func TestRotationThatFailsChangesNothing(t *testing.T) {
	g := newRotRig(t, false)
	lim := LogLimit{MaxSize: 8 << 10, MaxFiles: 4}
	for range 2 {
		g.write(200)
		g.rotate(lim)
	}
	before := g.stream()
	// The temporary file's name taken by a directory: the copy fails.
	if err := os.Mkdir(rotated(g.path, 1)+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	g.write(200)
	if err := g.r.RotateLogs(g.id, lim); err == nil {
		t.Fatal("the rotation did not fail")
	}
	if got := g.stream(); got != before+strings.TrimPrefix(g.written.String(), before) || !strings.HasPrefix(got, before) {
		t.Errorf("after failed rotations the files hold %d bytes, want the %d there were plus the new lines", len(got), g.written.Len())
	}
	for i := 1; i <= 2; i++ {
		if _, err := os.Stat(rotated(g.path, i)); err != nil {
			t.Errorf("path.%d is gone after failed rotations: %v", i, err)
		}
	}
}

// blockingWriter blocks every Write until released; entered closes at
// the first.
type blockingWriter struct {
	entered, release chan struct{}
	once             *sync.Once
}

func (b blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return len(p), nil
}

// TestSlowReaderDoesNotHoldRotation: a reader whose client stops reading
// (a paused docker logs -f) holds no lock while it writes, so a rotation
// still happens; the rotator skips a file that is busy for a moment.
func TestSlowReaderDoesNotHoldRotation(t *testing.T) {
	g := newRotRig(t, false)
	g.write(2000) // more than a chunk
	w := blockingWriter{entered: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
	tail := &logTail{path: g.path, w: w, lines: -1, rot: g.r.rot.of(g.path)}
	done := make(chan error, 1)
	go func() { done <- tail.copy() }()
	defer func() {
		close(w.release)
		<-done
		tail.close()
	}()
	<-w.entered // the reader is blocked in Write
	rotated := make(chan error, 1)
	go func() { rotated <- g.r.RotateLogs(g.id, LogLimit{MaxSize: 8 << 10, MaxFiles: 2}) }()
	select {
	case err := <-rotated:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RotateLogs waited for a reader that does not read")
	}
	if g.r.rot.of(g.path).gen != 1 {
		t.Errorf("the file was not rotated while the reader waited")
	}
}
