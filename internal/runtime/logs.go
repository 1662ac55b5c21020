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
// (nil: not wanted), from the beginning. Without follow it copies what is
// there and returns. With follow it keeps copying new output until done is
// closed (the container exited) and the files are drained, or ctx ends.
// A log file that does not exist yet counts as empty, so a follower may
// start before the container (attach for run in the foreground).
func (r *Runtime) Logs(ctx context.Context, id string, stdout, stderr io.Writer, follow bool, done <-chan struct{}) error {
	if err := checkID(id); err != nil {
		return err
	}
	outPath, errPath := r.LogPaths(id)
	var tails []*logTail
	if stdout != nil {
		tails = append(tails, &logTail{path: outPath, w: stdout})
	}
	if stderr != nil {
		tails = append(tails, &logTail{path: errPath, w: stderr})
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

// logTail copies a growing file from where it left off.
type logTail struct {
	path string
	w    io.Writer
	f    *os.File
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
