package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// followInterval is how often a followed log is checked for new output.
const followInterval = 50 * time.Millisecond

// Logs copies the container's stdout and stderr logs to stdout and stderr
// (nil: not wanted), from the beginning, or with tail >= 0 from the start
// of each log's last tail lines. (The two logs are separate files, so the
// last lines are counted in each, not across both as in Docker's
// json-file log.) Without follow it copies what is
// there and returns. With follow it keeps copying new output until done is
// closed (the container exited) and the files are drained, or ctx ends.
// A log file that does not exist yet counts as empty, so a follower may
// start before the container (attach for run in the foreground).
func (r *Runtime) Logs(ctx context.Context, id string, stdout, stderr io.Writer, tail int, follow bool, done <-chan struct{}) error {
	if err := checkID(id); err != nil {
		return err
	}
	outPath, errPath := r.LogPaths(id)
	var tails []*logTail
	if stdout != nil {
		tails = append(tails, &logTail{path: outPath, w: stdout, lines: tail, rot: r.rot.of(outPath)})
	}
	if stderr != nil {
		tails = append(tails, &logTail{path: errPath, w: stderr, lines: tail, rot: r.rot.of(errPath)})
	}
	defer func() {
		for _, t := range tails {
			t.close()
		}
	}()
	tick := time.NewTicker(followInterval)
	defer tick.Stop()
	for {
		// Look at done before copying: a copy that starts after the
		// container exited reads everything it wrote.
		exited := isClosed(done)
		for _, t := range tails {
			if err := t.copy(); err != nil {
				return err
			}
		}
		if !follow || exited {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
		case <-tick.C:
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// logChunk is the most a reader takes from a live log file per hold of
// the file's rotation lock: a client that stops reading (a paused
// docker logs -f) never keeps a rotation waiting.
const logChunk = 64 << 10

// logTail copies one stream's log: first its rotated files, oldest
// first, and the live file (or, with lines >= 0, the last lines lines
// across them), then, on each later call, what the live file gained,
// following it across rotations (logrotate_linux.go). It holds the
// rotation lock only to find what to copy and to read a chunk of the live
// file; rotated files, which a rotation never changes in place (it
// renames and replaces them), are copied from open descriptors after.
type logTail struct {
	path  string
	w     io.Writer
	lines int
	rot   *logRotation

	started bool
	f       *os.File // the live file, once it exists
	gen     uint64   // the rotation f's offset counts from
	buf     []byte
}

// piece is a range of a rotated file to copy.
type piece struct {
	f       *os.File
	off, to int64
}

func (t *logTail) copy() error {
	if t.buf == nil {
		t.buf = make([]byte, logChunk)
	}
	for {
		t.rot.mu.Lock()
		pieces, chunk, err := t.stepLocked()
		t.rot.mu.Unlock()
		werr := copyPieces(t.w, pieces)
		if err == nil {
			err = werr
		}
		if err == nil && len(chunk) > 0 {
			if _, werr := t.w.Write(chunk); werr != nil {
				err = fmt.Errorf("copy log %q: %w", t.path, werr)
			}
		}
		if err != nil || len(pieces) == 0 && len(chunk) < logChunk {
			return err
		}
	}
}

// stepLocked finds what to copy next: rotated files' ranges, and a chunk
// of the live file read under the lock.
func (t *logTail) stepLocked() ([]piece, []byte, error) {
	var pieces []piece
	if !t.started {
		t.started = true
		var err error
		if pieces, err = t.firstLocked(); err != nil {
			return pieces, nil, err
		}
	}
	if t.f == nil {
		f, err := os.Open(t.path)
		if errors.Is(err, os.ErrNotExist) {
			return pieces, nil, nil
		}
		if err != nil {
			return pieces, nil, fmt.Errorf("open log: %w", err)
		}
		t.f, t.gen = f, t.rot.gen
	}
	if t.rot.gen != t.gen {
		p, err := t.afterRotationLocked()
		if err != nil {
			return pieces, nil, err
		}
		if p.f != nil {
			pieces = append(pieces, p)
		}
	}
	n, err := t.f.Read(t.buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return pieces, nil, fmt.Errorf("read log %q: %w", t.path, err)
	}
	return pieces, t.buf[:n], nil
}

// firstLocked opens what the stream has now, from the oldest rotated file
// to the live one, or where its last t.lines lines start: the rotated
// files as pieces, the live one as f at its starting offset.
func (t *logTail) firstLocked() ([]piece, error) {
	paths := existingLogFiles(t.path)
	if len(paths) == 0 {
		return nil, nil
	}
	fromFile, fromOff := 0, int64(0)
	if t.lines >= 0 {
		var err error
		if fromFile, fromOff, err = lastLinesAcross(paths, t.lines); err != nil {
			return nil, fmt.Errorf("tail log %q: %w", t.path, err)
		}
	}
	var pieces []piece
	for i := fromFile; i < len(paths); i++ {
		off := int64(0)
		if i == fromFile {
			off = fromOff
		}
		f, err := os.Open(paths[i])
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			closePieces(pieces)
			return nil, fmt.Errorf("open log: %w", err)
		}
		if paths[i] == t.path {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				f.Close()
				closePieces(pieces)
				return nil, err
			}
			t.f, t.gen = f, t.rot.gen
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			closePieces(pieces)
			return nil, err
		}
		pieces = append(pieces, piece{f: f, off: off, to: fi.Size()})
	}
	return pieces, nil
}

// afterRotationLocked moves f's offset to where the same byte is after
// the rotations since t.gen, and returns the range of path.1 that the
// last one moved there before this reader had read it. After more than
// one rotation it starts at the live file's start: what went to older
// files in between is skipped.
func (t *logTail) afterRotationLocked() (piece, error) {
	pos, err := t.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return piece{}, err
	}
	var p piece
	switch r := t.rot; {
	case r.gen != t.gen+1:
		pos = 0
	case pos >= r.cut:
		pos -= r.cut
	default:
		if r.kept {
			// path.1 holds the cut bytes less the first r.trimmed ones.
			if f, err := os.Open(rotated(t.path, 1)); err == nil {
				p = piece{f: f, off: max(pos-r.trimmed, 0), to: r.cut - r.trimmed}
			}
		}
		pos = 0
	}
	t.gen = t.rot.gen
	_, err = t.f.Seek(pos, io.SeekStart)
	return p, err
}

// copyPieces copies each piece to w and closes it.
func copyPieces(w io.Writer, pieces []piece) error {
	var err error
	for _, p := range pieces {
		if err == nil && p.to > p.off {
			_, err = io.Copy(w, io.NewSectionReader(p.f, p.off, p.to-p.off))
		}
		p.f.Close()
	}
	return err
}

func closePieces(pieces []piece) {
	for _, p := range pieces {
		p.f.Close()
	}
}

func (t *logTail) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// existingLogFiles are a stream's files, oldest first: the rotated ones
// (path.N … path.1) and the live one, those that exist.
func existingLogFiles(path string) []string {
	var rotatedFiles []string
	for i := 1; ; i++ {
		if _, err := os.Stat(rotated(path, i)); err != nil {
			break
		}
		rotatedFiles = append(rotatedFiles, rotated(path, i))
	}
	slices.Reverse(rotatedFiles)
	if _, err := os.Stat(path); err == nil {
		rotatedFiles = append(rotatedFiles, path)
	}
	return rotatedFiles
}

// lastLinesAcross returns where the last n lines of the files, read as
// one stream, start: the index of a file and an offset in it, reading
// backwards a block at a time. A last line without its newline counts as
// a line, a line may run from one file into the next, and n == 0 is the
// end of the stream; fewer than n lines is all of them.
func lastLinesAcross(paths []string, n int) (int, int64, error) {
	if n == 0 {
		last := len(paths) - 1
		fi, err := os.Stat(paths[last])
		if err != nil {
			return 0, 0, err
		}
		return last, fi.Size(), nil
	}
	buf := make([]byte, 32<<10)
	seen, final := 0, true // final: no byte seen yet (the stream's last newline ends, not starts, a line)
	for idx := len(paths) - 1; idx >= 0; idx-- {
		off, found, err := scanBack(paths[idx], buf, n-seen, &final)
		if err != nil {
			return 0, 0, err
		}
		if found {
			return idx, off, nil
		}
		seen += int(off) // scanBack returns the newlines it counted when not found
	}
	return 0, 0, nil
}

// scanBack looks in one file, from its end, for the start of the want-th
// line counting back; found false returns how many line starts it passed.
func scanBack(path string, buf []byte, want int, final *bool) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	seen := 0
	for pos := fi.Size(); pos > 0; {
		k := min(int64(len(buf)), pos)
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, false, err
		}
		for i := k - 1; i >= 0; i-- {
			wasFinal := *final
			*final = false
			if buf[i] != '\n' || wasFinal {
				continue
			}
			if seen++; seen == want {
				return pos + i + 1, true, nil
			}
		}
	}
	return int64(seen), false, nil
}
