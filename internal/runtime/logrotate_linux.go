package runtime

import (
	"bytes"
	"encoding/json"
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

// LogLimit is how one container's log is written: its bounds, its mode,
// and the attributes each entry carries.
type LogLimit struct {
	// MaxSize is the size at which a log file is rotated; 0 never rotates.
	MaxSize int64
	// MaxFiles is how many files a stream keeps, the live one included
	// (1: a full file is emptied).
	MaxFiles int
	// NonBlocking is mode=non-blocking: entries queue for the writer, up
	// to MaxBuffer bytes (0: moby's 1 MB), and past it are dropped.
	NonBlocking bool  `json:",omitempty"`
	MaxBuffer   int64 `json:",omitempty"`
	// Compress keeps rotated files gzipped, path.N.gz (json-file's
	// compress, the local driver's default).
	Compress bool `json:",omitempty"`
	// Attrs is json-file's attributes of every entry, a JSON object
	// (labels, env, tag: container.LogConfig.LogAttrs), or nil.
	Attrs json.RawMessage `json:",omitempty"`
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
	// from the start of the live file, kept says whether they went to
	// path.1 (false: dropped, max-file 1), and trimmed how many of them
	// path.1 left out at its start (see rotate).
	gen     uint64
	cut     int64
	kept    bool
	trimmed int64
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
	if _, err := os.Stat(r.dataDir(id)); err != nil {
		return nil // removed meanwhile
	}
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
	// A reader holds the lock only to read a chunk; a removal holds it
	// while it deletes the files: either way, the next look will do.
	if !lr.mu.TryLock() {
		return nil
	}
	defer lr.mu.Unlock()
	res, err := l.rotate(path, max(lim.MaxFiles, 1))
	if err != nil {
		return fmt.Errorf("rotate log %q: %w", path, err)
	}
	lr.gen++
	lr.cut, lr.kept, lr.trimmed = res.cut, res.kept, res.trimmed
	return nil
}

// rotated is the name of a stream's i-th rotated file (1 is the newest).
func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// rotation is what one rotation did to the live file: cut bytes left its
// start; kept says path.1 now holds them, less its first trimmed bytes
// (a line whose start went with a file that was dropped).
type rotation struct {
	cut, trimmed int64
	kept         bool
}

// rotate moves the live file's content out as the package comment says.
// Nothing changes until the new path.1 is written in full (under a
// temporary name): a rotation that fails early, for want of space, leaves
// every file as it was, and the next look tries again.
func (l *logRotations) rotate(path string, maxFiles int) (rotation, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return rotation{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return rotation{}, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return rotation{}, err
	}
	// Whole blocks, ending before the end of the file. max-file 1 keeps
	// nothing and truncates, as json-file does, so that the file starts
	// at a line.
	blk := max(st.Bsize, 512)
	n := (fi.Size() - 1) / blk * blk
	collapse := n > 0 && maxFiles > 1 && !l.noCollapse.Load()
	if !collapse {
		n = fi.Size()
	}
	res := rotation{cut: n, kept: maxFiles > 1}
	if maxFiles > 1 {
		// The oldest file goes; if it ended inside a line, the file that
		// becomes the oldest starts with that line's rest, which goes too.
		oldest := rotated(path, maxFiles-1)
		orphan := !endsWithNewline(oldest)
		tmp := rotated(path, 1) + ".tmp"
		skip := int64(0)
		if orphan && maxFiles == 2 {
			// The new path.1 becomes the oldest at once.
			if skip, err = firstLineEnd(f, n); err != nil {
				return rotation{}, err
			}
		}
		if err := copyRange(tmp, f, skip, n); err != nil {
			os.Remove(tmp)
			return rotation{}, err
		}
		if err := shiftRotated(path, maxFiles, orphan && maxFiles > 2); err != nil {
			os.Remove(tmp)
			return rotation{}, err
		}
		if err := os.Rename(tmp, rotated(path, 1)); err != nil {
			os.Remove(tmp)
			return rotation{}, err
		}
		res.trimmed = skip
	}
	if collapse {
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, n)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
			return rotation{}, err
		}
		// This file system cannot (tmpfs; EINVAL: an alignment it wants,
		// as ext4's bigalloc clusters): copy and truncate from now on.
		l.noCollapse.Store(true)
	}
	// Copy and truncate: what path.1 lacks of the file as it is now goes
	// after it, then the file is emptied.
	if fi, err = f.Stat(); err != nil {
		return rotation{}, err
	}
	if maxFiles > 1 && fi.Size() > n {
		if err := appendRange(rotated(path, 1), f, n, fi.Size()); err != nil {
			return rotation{}, err
		}
	}
	if err := f.Truncate(0); err != nil {
		return rotation{}, err
	}
	res.cut = fi.Size()
	return res, nil
}

// shiftRotated renames path.i to path.i+1, the oldest,
// path.<maxFiles-1>, going; with trim, the file that becomes the oldest
// loses its first, partial, line (see rotate). Only the files there are
// renamed (path.1 up to the first one missing): with --log-opt
// max-file=2000000000 a rotation tried two billion renames, and held up
// every container's rotation and the removal of its own (QA round 27).
func shiftRotated(path string, maxFiles int, trim bool) error {
	top := maxFiles - 2
	for i := 1; i <= top; i++ {
		if _, err := os.Lstat(rotated(path, i)); err != nil {
			top = i - 1
			break
		}
	}
	for i := top; i >= 1; i-- {
		if err := os.Rename(rotated(path, i), rotated(path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if !trim {
		return nil
	}
	oldest := rotated(path, maxFiles-1)
	f, err := os.Open(oldest)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	skip, err := firstLineEnd(f, fi.Size())
	if err != nil {
		return err
	}
	tmp := oldest + ".tmp"
	if err := copyRange(tmp, f, skip, fi.Size()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, oldest)
}

// firstLineEnd is the offset just after the first newline of f's first n
// bytes, or n when there is none (all of it is one partial line).
func firstLineEnd(f *os.File, n int64) (int64, error) {
	buf := make([]byte, 32<<10)
	for off := int64(0); off < n; {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), n-off)], off)
		if i := bytes.IndexByte(buf[:k], '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
		off += int64(k)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if k == 0 {
			break
		}
	}
	return n, nil
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

// copyRange writes bytes [from, to) of f to a new file at dst.
func copyRange(dst string, f *os.File, from, to int64) error {
	return writeRange(dst, os.O_CREATE|os.O_TRUNC, f, from, to)
}

// appendRange appends bytes [from, to) of f to the file at dst.
func appendRange(dst string, f *os.File, from, to int64) error {
	return writeRange(dst, os.O_APPEND, f, from, to)
}

func writeRange(dst string, flags int, f *os.File, from, to int64) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|unix.O_CLOEXEC|flags, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, from, to-from))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
