package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
)

// followInterval is how often a followed log is checked for new output
// while its directory cannot be watched (it is not there yet), and how
// often a legacy raw log is.
const followInterval = 50 * time.Millisecond

// followFallback is how often a watched log is checked all the same (a
// change inotify did not report); a var for the test that proves the
// watch wakes the follower.
var followFallback = time.Second

// Logs writes the container's log entries that o selects to stdout and
// stderr (nil: not wanted), each to the writer of its stream. Without
// o.Follow it writes what is there and returns. With o.Follow it keeps
// writing new output until done is closed (the container exited and its
// output is all in the log) and the log is drained, or ctx ends. A log
// that does not exist yet counts as empty, so a follower may start before
// the container (attach for run in the foreground).
//
// A container started by berth before session 20 (or by a reaper of
// that time still running) has two raw files instead, read as they were
// (rawLogs): no times, so o's Since, Until and Timestamps are refused
// there (NotImplemented, see CheckLogOptions), until a start converts them.
func (r *Runtime) Logs(ctx context.Context, id string, stdout, stderr io.Writer, o LogOptions, done <-chan struct{}) error {
	if err := checkID(id); err != nil {
		return err
	}
	if r.legacyLogs(id) {
		if o.timed() {
			return errLogsUntimed
		}
		return r.rawLogs(ctx, id, stdout, stderr, o.Tail, o.Follow, done)
	}
	return readJSONLog(ctx, r.JSONLogPath(id), stdout, stderr, o, done)
}

// errLogsUntimed refuses times for a log that has none.
var errLogsUntimed = errdefs.NotImplemented("this container's log was written by an older berth and has no times: --timestamps, --since and --until work once it is started again")

// CheckLogOptions refuses what o asks of the container's log that it
// cannot give: times, of an older berth's log (Logs would refuse them
// too; the API asks before its answer starts).
func (r *Runtime) CheckLogOptions(id string, o LogOptions) error {
	if err := checkID(id); err != nil {
		return err
	}
	if o.timed() && r.legacyLogs(id) {
		return errLogsUntimed
	}
	return nil
}

// legacyLogs says whether id's output is in the raw files of berth
// before session 20: they exist and no json log does, or there is no log
// yet and the reaper is an older one, whose starts write raw files.
func (r *Runtime) legacyLogs(id string) bool {
	if r.HasJSONLog(id) {
		return false
	}
	out, errp := r.LogPaths(id)
	if fileExists(out) || fileExists(errp) || fileExists(rotated(out, 1)) || fileExists(rotated(errp, 1)) {
		return true
	}
	ok, err := r.reaper.copiesLogs()
	return err == nil && !ok
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// convertLegacyLogs moves an older berth's raw logs (legacyLogs) into the
// json log before a start: each line an entry of its stream, all stamped
// with the oldest of the files' modification times (the lines' own times
// were never kept, and one time keeps --since and --until from cutting
// into them), stdout's before stderr's (their order was not kept either).
//
// Crash-safe: the entries go to a temporary file that is synced and then
// renamed to the json log, and only then are the raw files removed; a
// json log beside raw files means a conversion that got that far, and
// the raw files are only removed.
func (r *Runtime) convertLegacyLogs(id string) error {
	out, errp := r.LogPaths(id)
	sets := [][]string{existingLogFiles(out), existingLogFiles(errp)}
	if len(sets[0])+len(sets[1]) == 0 {
		return nil
	}
	// Not under a rotation of the raw files.
	for _, lr := range []*logRotation{r.rot.of(out), r.rot.of(errp)} {
		lr.mu.Lock()
		defer lr.mu.Unlock()
	}
	if !r.HasJSONLog(id) {
		if err := convertRaw(sets, r.JSONLogPath(id)); err != nil {
			return fmt.Errorf("convert the logs of %s: %w", id, err)
		}
	}
	var errs []error
	for _, set := range sets {
		for _, p := range set {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	r.rot.forget(out, errp)
	return errors.Join(errs...)
}

// convertRaw writes the entries of the raw files of sets (stdout's, then
// stderr's) to a new json log at js.
func convertRaw(sets [][]string, js string) error {
	var at time.Time
	for _, set := range sets {
		for _, p := range set {
			if fi, err := os.Stat(p); err == nil && (at.IsZero() || fi.ModTime().Before(at)) {
				at = fi.ModTime()
			}
		}
	}
	tmp := js + ".converting"
	os.Remove(tmp)                          // an earlier conversion's, cut short
	lf, err := openLogFile(tmp, LogLimit{}) // the copier's first write rotates it if need be
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // gone by then unless something failed
	for i, stream := range []string{"stdout", "stderr"} {
		for _, p := range sets[i] {
			f, err := os.Open(p)
			if err != nil {
				lf.close()
				return err
			}
			err = copyLines(f, stream, lf, func() time.Time { return at }, nil, nil)
			f.Close()
			if err != nil {
				lf.close()
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	if err := errors.Join(lf.sync(), lf.close()); err != nil {
		return err
	}
	return os.Rename(tmp, js)
}

// rawLogs copies the raw stdout and stderr logs of an older berth's
// container (legacyLogs), from the beginning, or with tail >= 0 from the
// start of each file's last tail lines (counted in each stream, not
// across both). With follow it keeps copying until done is closed and the
// files are drained, or ctx ends.
func (r *Runtime) rawLogs(ctx context.Context, id string, stdout, stderr io.Writer, tail int, follow bool, done <-chan struct{}) error {
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
	return scanBackFile(f, buf, want, final)
}

// scanBackFile is scanBack in an open file (its offset is not used).
func scanBackFile(f *os.File, buf []byte, want int, final *bool) (int64, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	return scanBackTo(f, fi.Size(), buf, want, final)
}

// scanBackTo is scanBackFile from offset size back (what the file held
// when a read began).
func scanBackTo(f *os.File, size int64, buf []byte, want int, final *bool) (int64, bool, error) {
	seen := 0
	for pos := size; pos > 0; {
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
