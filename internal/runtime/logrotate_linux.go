package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Log rotation, json-file's max-size and max-file. A container writes its
// stdout and stderr straight into its two log files (O_APPEND), with no
// copier in between that could count bytes, so the daemon checks the
// files' sizes (Daemon's log rotator) and rotates a full one here, as
// Docker names them: the live file, then path.1 (the newest rotated) up
// to path.<max-file - 1>.
//
// A rotation copies the start of the live file into path.1 and then cuts
// that start off the live file in place with FALLOC_FL_COLLAPSE_RANGE
// (ext4, xfs): what the container writes meanwhile stays in the live
// file, after the part not cut, so nothing is lost and nothing is read
// twice. The range must be whole file-system blocks and end before the
// end of the file, so up to a block of the newest output stays behind,
// and a line may begin in path.1 and end in the live file; readers join
// the files (Logs). Where the file system cannot collapse a range
// (tmpfs), or the file is smaller than a block, the rotation copies the
// whole file and truncates it, as logrotate's copytruncate: what the
// container writes between the two is lost.

// LogLimit bounds one container's logs.
type LogLimit struct {
	// MaxSize is the size at which a log file is rotated; 0 never rotates.
	MaxSize int64
	// MaxFiles is how many files a stream keeps, the live one included
	// (1: a full file is emptied).
	MaxFiles int
}

// logRotations serialises rotations with the reads of the same file, and
// tells followers what a rotation cut off.
type logRotations struct {
	mu     sync.Mutex
	byPath map[string]*logRotation
	// noCollapse is set once the file system has refused to collapse a
	// range, and by tests: the copy-and-truncate path from then on.
	noCollapse atomic.Bool
}

// logRotation is one log file's rotation state.
type logRotation struct {
	mu sync.Mutex // held by a rotation and by each read of the file
	// gen counts rotations; cut is how many bytes the last one removed
	// from the start of the live file, and kept says whether they went to
	// path.1 (false: dropped, max-file 1, or lost to a truncation).
	gen  uint64
	cut  int64
	kept bool
}

func (l *logRotations) of(path string) *logRotation {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byPath == nil {
		l.byPath = map[string]*logRotation{}
	}
	lr := l.byPath[path]
	if lr == nil {
		lr = &logRotation{}
		l.byPath[path] = lr
	}
	return lr
}

// forget drops the state of a container's files (its removal).
func (l *logRotations) forget(paths ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range paths {
		delete(l.byPath, p)
	}
}

// RotateLogs rotates each of the container's log files that has reached
// lim.MaxSize.
func (r *Runtime) RotateLogs(id string, lim LogLimit) error {
	if err := checkID(id); err != nil {
		return err
	}
	if lim.MaxSize <= 0 {
		return nil
	}
	stdout, stderr := r.LogPaths(id)
	return errors.Join(r.rot.rotateIfFull(stdout, lim), r.rot.rotateIfFull(stderr, lim))
}

func (l *logRotations) rotateIfFull(path string, lim LogLimit) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || err == nil && fi.Size() < lim.MaxSize {
		return nil
	}
	if err != nil {
		return err
	}
	lr := l.of(path)
	lr.mu.Lock()
	defer lr.mu.Unlock()
	cut, kept, err := l.rotate(path, max(lim.MaxFiles, 1))
	if err != nil {
		return fmt.Errorf("rotate log %q: %w", path, err)
	}
	lr.gen++
	lr.cut, lr.kept = cut, kept
	return nil
}

// rotated is the name of a stream's i-th rotated file (1 is the newest).
func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// rotate moves the live file's content out as the package comment says
// and returns how many bytes left its start and whether path.1 has them.
func (l *logRotations) rotate(path string, maxFiles int) (cut int64, kept bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return 0, false, err
	}
	if maxFiles > 1 {
		if err := shiftRotated(path, maxFiles); err != nil {
			return 0, false, err
		}
	}
	// Whole blocks, ending before the end of the file; max-file 1 keeps
	// nothing and truncates, as json-file does, so that the file starts
	// at a line.
	blk := max(st.Bsize, 512)
	if n := (fi.Size() - 1) / blk * blk; n > 0 && maxFiles > 1 && !l.noCollapse.Load() {
		if maxFiles > 1 {
			if err := copyPrefix(f, rotated(path, 1), n); err != nil {
				return 0, false, err
			}
		}
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, n)
		if err == nil {
			return n, maxFiles > 1, nil
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			l.noCollapse.Store(true)
		} else if !errors.Is(err, unix.EINVAL) {
			return 0, false, err
		}
	}
	// Copy and truncate, the whole file as it is now.
	if fi, err = f.Stat(); err != nil {
		return 0, false, err
	}
	if maxFiles > 1 {
		if err := copyPrefix(f, rotated(path, 1), fi.Size()); err != nil {
			return 0, false, err
		}
	}
	if err := f.Truncate(0); err != nil {
		return 0, false, err
	}
	return fi.Size(), maxFiles > 1, nil
}

// shiftRotated renames path.i to path.i+1, the oldest, path.<maxFiles-1>,
// going. A rotated file ends where a rotation cut the live file, which
// may be in the middle of a line: when the file that goes ends so, the
// one that becomes the oldest loses its first, partial, line, so that the
// stream read from its start begins with a whole line.
func shiftRotated(path string, maxFiles int) error {
	oldest := rotated(path, maxFiles-1)
	orphan := maxFiles > 2 && !endsWithNewline(oldest)
	for i := maxFiles - 2; i >= 1; i-- {
		if err := os.Rename(rotated(path, i), rotated(path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if !orphan {
		return nil
	}
	data, err := os.ReadFile(oldest)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	i := bytes.IndexByte(data, '\n')
	tmp := oldest + ".tmp"
	if err := os.WriteFile(tmp, data[i+1:], 0o640); err != nil { // i == -1: all of it is the partial line
		return err
	}
	return os.Rename(tmp, oldest)
}

// endsWithNewline reports whether the file at path ends with a newline;
// a missing or empty file counts as doing so.
func endsWithNewline(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return true
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, fi.Size()-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// copyPrefix writes the first n bytes of f to a new file at dst, through
// a temporary name so that a reader never sees half of it.
func copyPrefix(f *os.File, dst string, n int64) error {
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, 0, n))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
