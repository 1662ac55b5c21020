package runtime

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Compressed rotated files (json-file's compress=true, and the local
// driver's default), as moby's LogFile keeps them: path.N.gz, a gzip
// stream of what path.N held, whose header's Extra field is JSON with the
// time of its last entry (moby's rotateFileMetadata). berth adds the
// identity of the file it was made from, so that a reader that followed
// that file (and holds it open) knows it in its compressed form.

// beforeCompressedSwap, set by tests, runs when a compressed file is
// written and about to take its source's place.
var beforeCompressedSwap func()

// gzSuffix ends a compressed rotated file's name.
const gzSuffix = ".gz"

// compressedHeader is a compressed file's gzip Extra field.
type compressedHeader struct {
	LastTime time.Time `json:"lastTime"`
	Source   *fileID   `json:"berthSource,omitempty"`
}

// fileID is a file's identity while someone holds it open: its device
// and inode.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// idOf is f's identity.
func idOf(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return fileID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

// compressLogFile compresses the rotated file src into src.gz and removes
// src, as moby's compressFile, last being the time of its last entry.
// The compressed file takes src's place under the log directory's
// exclusive lock (readers find one or the other, whole), and only if src
// is still the file that was compressed: a rotation by another writer
// meanwhile (a restarted container's) leaves it uncompressed where it
// moved.
func compressLogFile(src string, last time.Time) (err error) {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	defer in.Close()
	id, err := idOf(in)
	if err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	// A name of its own: two writers of one log (a restarted container's
	// beside the one before, still draining) may compress at once.
	out, err := os.CreateTemp(filepath.Dir(src), filepath.Base(src)+gzSuffix+".tmp*")
	if err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	tmp := out.Name()
	defer func() {
		if out != nil {
			out.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := out.Chmod(0o640); err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	zw := gzip.NewWriter(out)
	if zw.Header.Extra, err = json.Marshal(compressedHeader{LastTime: last, Source: &id}); err != nil {
		return err
	}
	n, err := io.Copy(zw, in)
	if err != nil {
		return fmt.Errorf("compress log %q: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress log %q: %w", src, err)
	}
	// On disk before the source goes: a crash leaves one or the other.
	if err := out.Sync(); err != nil {
		return fmt.Errorf("compress log %q: %w", src, err)
	}
	err = out.Close()
	out = nil
	if err != nil {
		return fmt.Errorf("compress log %q: %w", src, err)
	}
	if beforeCompressedSwap != nil {
		beforeCompressedSwap()
	}
	unlock, err := lockLogDir(src, true)
	if err != nil {
		return err
	}
	defer unlock()
	now, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	nowID, err := idOf(now)
	fi, statErr := now.Stat()
	now.Close()
	if err = errors.Join(err, statErr); err != nil {
		return err
	}
	if nowID != id {
		return fmt.Errorf("compress log %q: it was rotated again meanwhile", src)
	}
	if fi.Size() != n {
		return fmt.Errorf("compress log %q: it was written to meanwhile", src)
	}
	if err := os.Rename(tmp, src+gzSuffix); err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	if d, err := os.Open(filepath.Dir(src)); err == nil {
		d.Sync() // the names' change, as the data before
		d.Close()
	}
	return nil
}

// gzHeader reads the header of the compressed file f (from its start),
// and leaves f at its start again.
func gzHeader(f *os.File) (compressedHeader, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return compressedHeader{}, err
	}
	defer f.Seek(0, io.SeekStart)
	zr, err := gzip.NewReader(f)
	if err != nil {
		return compressedHeader{}, fmt.Errorf("read compressed log %q: %w", f.Name(), err)
	}
	var h compressedHeader
	if len(zr.Header.Extra) > 0 {
		_ = json.Unmarshal(zr.Header.Extra, &h) // moby's, or none: no identity
	}
	return h, nil
}

// decompressLog writes what the compressed file f holds into a file of
// no name (in f's directory; where that fails, a full disk, in the
// temporary one) and returns it, at its start: a reader of the log seeks
// in it as in any other file.
func decompressLog(f *os.File) (*os.File, error) {
	out, err := decompressInto(f, filepath.Dir(f.Name()))
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		out, err = decompressInto(f, os.TempDir())
	}
	if err != nil {
		return nil, fmt.Errorf("decompress log %q: %w", f.Name(), err)
	}
	return out, nil
}

func decompressInto(f *os.File, dir string) (*os.File, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		// No O_TMPFILE there: a named file, unlinked at once.
		if out, err = os.CreateTemp(dir, "berth-log-*"); err != nil {
			return nil, err
		}
		os.Remove(out.Name())
	}
	zr, err := gzip.NewReader(f)
	if err == nil {
		_, err = io.Copy(out, zr)
	}
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}
