package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
		tails = append(tails, &logTail{path: outPath, w: stdout, lines: tail})
	}
	if stderr != nil {
		tails = append(tails, &logTail{path: errPath, w: stderr, lines: tail})
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

// logTail copies a growing file from where it left off; lines >= 0 starts
// it at the file's last lines lines, as they are when it is opened.
type logTail struct {
	path  string
	w     io.Writer
	f     *os.File
	lines int
}

func (t *logTail) copy() error {
	if t.f == nil {
		f, err := os.Open(t.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		t.f = f
		if t.lines >= 0 {
			off, err := lastLines(f, t.lines)
			if err == nil {
				_, err = f.Seek(off, io.SeekStart)
			}
			if err != nil {
				return fmt.Errorf("tail log %q: %w", t.path, err)
			}
		}
	}
	if _, err := io.Copy(t.w, t.f); err != nil {
		return fmt.Errorf("copy log %q: %w", t.path, err)
	}
	return nil
}

func (t *logTail) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// lastLines returns the offset in f at which its last n lines start,
// reading backwards a block at a time. A last line without its newline
// counts as a line; n == 0 is the end of the file.
func lastLines(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	if n == 0 || end == 0 {
		return end, nil
	}
	buf := make([]byte, 32<<10)
	seen := 0
	for pos := end; pos > 0; {
		k := min(int64(len(buf)), pos)
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' || pos+i == end-1 {
				continue // the file's final newline ends the last line, not starts it
			}
			if seen++; seen == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil // fewer than n lines: all of them
}
