package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/berth-net/berth/internal/capbuf"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
)

// tmpPrefix marks directories of imports in progress; NewStore removes
// those a crash left behind.
const tmpPrefix = ".import-"

// Import reads a tar of a root filesystem (plain, gzip, bzip2, xz or
// zstd) once, extracting it while hashing the uncompressed stream (the
// image's one layer). Each import is a new image, as in moby's ImportImage, whose
// config carries the time of the import: the ID is the digest of the
// layer's, the config's, the comment's and that time. repo "" leaves the
// image untagged; a tag defaults to "latest" and moves from whichever
// image held it.
func (s *Store) Import(ctx context.Context, r io.Reader, repo, tag, comment string) (*Image, error) {
	return s.ImportConfig(ctx, r, repo, tag, comment, nil)
}

// ImportConfig is Import with an image config (docker import --change,
// ParseChanges), kept for the image's containers.
func (s *Store) ImportConfig(ctx context.Context, r io.Reader, repo, tag, comment string, cfg *Config) (*Image, error) {
	ref, err := reference.WithTag(repo, tag)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(tmp) // gone already when the import succeeded
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	layer, size, err := unpack(ctx, r, rootfs)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	created := time.Now().UTC()
	b, err := json.Marshal(struct {
		Layer   string    `json:"layer"`
		Config  *Config   `json:"config,omitempty"`
		Comment string    `json:"comment,omitempty"`
		Created time.Time `json:"created"`
	}{layer, cfg, comment, created})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	id := "sha256:" + hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	layers := []string{layer}
	shared, err := s.treeOf(layers, treeImport)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", id, err)
	}
	img, err := s.adoptWith(tmp, &Image{ID: id, Size: size, Comment: comment, Config: cfg, Created: created,
		Layers: layers, Tree: treeImport, LayerSizes: []int64{size},
		// moby's import: one entry, the message as its comment.
		History: []History{{Created: created, Comment: comment}}}, shared)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", id, err)
	}
	if ref == "" {
		return img, nil
	}
	return s.tag(img.ID, ref)
}

// unpack extracts the archive in r into rootfs and returns the digest of
// the uncompressed stream and the bytes of file content written.
func unpack(ctx context.Context, r io.Reader, rootfs string) (id string, size int64, err error) {
	src, closeSrc, err := decompress(bufio.NewReaderSize(ctxReader{ctx, r}, 64<<10))
	if err != nil {
		return "", 0, err
	}
	defer closeSrc()
	h := sha256.New()
	tee := io.TeeReader(src, h)
	x, err := newExtractor(rootfs)
	if err != nil {
		return "", 0, err
	}
	defer x.Close()
	err = x.extractAll(tar.NewReader(tee))
	if ctx.Err() != nil {
		return "", 0, ctx.Err()
	}
	if err != nil {
		return "", 0, err
	}
	if x.count == 0 {
		return "", 0, errdefs.Invalid("the archive holds no files")
	}
	// The end-of-archive blocks and any padding are part of the stream.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", 0, errdefs.Invalid("read archive: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), x.size, nil
}

// decompress recognises gzip, bzip2, xz and zstd by their magic bytes,
// as moby's DecompressStream does for docker import, load, build's
// context and ADD; anything else is read as a plain tar. zstd is decoded
// in the daemon (klauspost's, as moby's), xz by the host's xz program, as
// moby runs xz -d -c -q, fed by a goroutine of filter's; close ends it.
// A compressed stream is a *decoded (IsCompressed).
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(6)
	in := &inputErr{r: br}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, nil, errdefs.Invalid("read gzip archive: %w", err)
		}
		return &decoded{zr, in, "gzip"}, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return &decoded{bzip2.NewReader(in), in, "bzip2"}, func() {}, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		f, err := filter(in, "xz", "xz", "-d", "-c", "-q")
		if err != nil {
			return nil, nil, err
		}
		return &decoded{f, in, "xz"}, f.close, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) || isZstdSkippable(magic):
		zr, err := zstd.NewReader(in)
		if err != nil {
			return nil, nil, errdefs.Invalid("read zstd archive: %w", err)
		}
		// Close waits for the decoder's read-ahead, which may be blocked
		// on a client that sends nothing: not the caller's to wait for.
		return &decoded{zr, in, "zstd"}, func() { go zr.Close() }, nil
	}
	return br, func() {}, nil
}

// decoded is a compressed stream's content. Its errors say the stream is
// corrupt (Invalid, naming the format), unless the input failed first
// (a client gone, a disk's error): then they are the input's. Bytes
// after the stream's last whole member or frame that do not start
// another (a tape's zero padding, garbage) end it, as gzip -d and GNU
// tar take them (moby stops reading at the tar's end and never sees
// them); xz's program refuses them, except xz's own padding.
type decoded struct {
	r      io.Reader
	in     *inputErr
	format string
}

func (d *decoded) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	switch {
	case err == nil || err == io.EOF:
	case d.in.failed() != nil:
		err = d.in.failed()
	case trailingJunk(err):
		err = io.EOF
	case errdefs.KindOf(err) == errdefs.KindInvalid:
	default:
		err = errdefs.Invalid("read %s archive: %w", d.format, err)
	}
	return n, err
}

// trailingJunk says whether err is a decoder's finding that what follows
// a whole member or frame does not start another.
func trailingJunk(err error) bool {
	var se bzip2.StructuralError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, zstd.ErrMagicMismatch) ||
		errors.As(err, &se) && strings.Contains(string(se), "continuation file")
}

// IsCompressed says whether r, a reader Decompressed returned, undoes a
// compression (it has an end DrainTail can check).
func IsCompressed(r io.Reader) bool {
	_, ok := r.(*decoded)
	return ok
}

// isZstdSkippable says whether magic starts a zstd skippable frame
// (0x184D2A50 to 0x184D2A5F, little-endian), which may come first.
func isZstdSkippable(magic []byte) bool {
	return len(magic) >= 4 && magic[0]&0xf0 == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d && magic[3] == 0x18
}

// filter is what the program name, run with args, writes of input,
// which goes to its standard input. A program that fails (a corrupt
// stream) ends the stream with an Invalid error naming format and what
// the program said, instead of an EOF that would read as a short archive
// (decoded puts an input's own failure before it).
//
// The input is copied to the program by a goroutine of filter's own, not
// exec's: Wait waits for exec's, and one blocked on a client that sends
// nothing would hold the end of the stream (close) until the client
// acts. Filter's own ends then too, or at the input's next read.
func filter(input *inputErr, format, name string, args ...string) (*filtered, error) {
	cmd := exec.Command(name, args...)
	stderr := &capbuf.Buffer{Max: 4 << 10}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("read %s archive: %w", format, err)
	}
	go func() {
		_, _ = io.Copy(stdin, input) // a write that fails: the program ended; a read: input keeps it
		stdin.Close()
	}()
	return &filtered{out: out, cmd: cmd, stderr: stderr, format: format}, nil
}

// filtered is a running filter's output.
type filtered struct {
	out    io.Reader
	cmd    *exec.Cmd
	stderr *capbuf.Buffer
	format string
	once   sync.Once
	end    error // io.EOF, or why the stream ended, once the program has
}

func (f *filtered) Read(p []byte) (int, error) {
	if f.end != nil {
		return 0, f.end
	}
	n, err := f.out.Read(p)
	if err == io.EOF {
		f.end = f.wait()
		return n, f.end
	}
	return n, err
}

// wait waits for the program once and says how the stream ended: io.EOF
// if it did well.
func (f *filtered) wait() error {
	f.once.Do(func() {
		f.end = io.EOF
		if err := f.cmd.Wait(); err != nil {
			msg := strings.TrimSpace(f.stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			f.end = errdefs.Invalid("read %s archive: %s", f.format, msg)
		}
	})
	return f.end
}

// close ends the program if it still runs (a reader that stopped early)
// and reaps it.
func (f *filtered) close() {
	_ = f.cmd.Process.Kill()
	_ = f.wait()
}

// inputErr keeps the first error (other than EOF) its reader gave.
type inputErr struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (i *inputErr) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if err != nil && err != io.EOF {
		i.mu.Lock()
		if i.err == nil {
			i.err = err
		}
		i.mu.Unlock()
	}
	return n, err
}

func (i *inputErr) failed() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

// maxTail bounds what DrainTail reads.
const maxTail = 1 << 20

// DrainTail reads what follows the end of a tar in r (its padding), at
// most maxTail bytes, so that the end of a compressed stream (gzip's
// CRC, xz's index and check, zstd's checksum) is read and a stream cut
// or corrupt there is an error rather than a whole archive. Callers
// drain only a compressed stream (IsCompressed): a plain one has no end
// to check, and its sender need not have finished. What lies beyond
// maxTail is left unread, as moby leaves it.
func DrainTail(r io.Reader) error {
	_, err := io.CopyN(io.Discard, r, maxTail)
	if err == io.EOF {
		return nil
	}
	return err
}

// Decompressed is r with the compression docker import takes (gzip,
// bzip2, xz, zstd) undone, read until ctx ends; close releases it.
func Decompressed(ctx context.Context, r io.Reader) (src io.Reader, close func(), err error) {
	return decompress(bufio.NewReaderSize(ctxReader{ctx, r}, 64<<10))
}

// WithContext is r read until ctx ends.
func WithContext(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader stops a long import when the client goes away.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
