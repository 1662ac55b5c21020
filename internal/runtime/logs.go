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

// logTail copies one stream's log: first its rotated files, oldest
// first, and the live file (or, with lines >= 0, the last lines lines
// across them), then, on each later call, what the live file gained,
// following it across rotations (logrotate_linux.go).
type logTail struct {
	path  string
	w     io.Writer
	lines int
	rot   *logRotation

	started bool
	f       *os.File // the live file, once it exists
	gen     uint64   // the rotation f's offset counts from
}

func (t *logTail) copy() error {
	t.rot.mu.Lock() // no rotation while this reads
	defer t.rot.mu.Unlock()
	if !t.started {
		t.started = true
		return t.first()
	}
	if t.f == nil {
		f, err := os.Open(t.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		t.f, t.gen = f, t.rot.gen
	}
	if t.rot.gen != t.gen {
		if err := t.afterRotation(); err != nil {
			return err
		}
	}
	if _, err := io.Copy(t.w, t.f); err != nil {
		return fmt.Errorf("copy log %q: %w", t.path, err)
	}
	return nil
}

// first copies what the stream has now, from the oldest rotated file to
// the live one, or its last t.lines lines, and leaves f at the live
// file's end.
func (t *logTail) first() error {
	paths := existingLogFiles(t.path)
	if len(paths) == 0 {
		return nil
	}
	fromFile, fromOff := 0, int64(0)
	if t.lines >= 0 {
		var err error
		if fromFile, fromOff, err = lastLinesAcross(paths, t.lines); err != nil {
			return fmt.Errorf("tail log %q: %w", t.path, err)
		}
	}
	for i := fromFile; i < len(paths); i++ {
		f, err := os.Open(paths[i])
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		off := int64(0)
		if i == fromFile {
			off = fromOff
		}
		if _, err := f.Seek(off, io.SeekStart); err == nil {
			_, err = io.Copy(t.w, f)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("copy log %q: %w", paths[i], err)
		}
		if paths[i] == t.path {
			t.f, t.gen = f, t.rot.gen // live, at its end
		} else {
			f.Close()
		}
	}
	return nil
}

// afterRotation moves f's offset to where the same byte is after the
// rotations since t.gen, first copying from path.1 what the last one
// moved there before this reader had read it. After more than one
// rotation it starts at the live file's start: what went to older files
// in between is skipped.
func (t *logTail) afterRotation() error {
	pos, err := t.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	switch {
	case t.rot.gen != t.gen+1:
		pos = 0
	case pos >= t.rot.cut:
		pos -= t.rot.cut
	default:
		if t.rot.kept {
			if err := copyRange(t.w, rotated(t.path, 1), pos, t.rot.cut); err != nil {
				return err
			}
		}
		pos = 0
	}
	t.gen = t.rot.gen
	_, err = t.f.Seek(pos, io.SeekStart)
	return err
}

// copyRange copies bytes [from, to) of the file at path to w.
func copyRange(w io.Writer, path string, from, to int64) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, io.NewSectionReader(f, from, to-from))
	return err
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
