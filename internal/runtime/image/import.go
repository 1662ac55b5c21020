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
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

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
// context and ADD; anything else is read as a plain tar. xz and zstd are
// undone by the xz and zstd programs (moby runs unxz too), which read
// br on a goroutine of exec's; close ends the program.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, errdefs.Invalid("read gzip archive: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), func() {}, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return filter(br, "xz", "xz", "--decompress", "--stdout", "--quiet")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) || isZstdSkippable(magic):
		return filter(br, "zstd", "zstd", "--decompress", "--stdout", "--quiet")
	}
	return br, func() {}, nil
}

// isZstdSkippable says whether magic starts a zstd skippable frame
// (0x184D2A50 to 0x184D2A5F, little-endian), which may come first.
func isZstdSkippable(magic []byte) bool {
	return len(magic) >= 4 && magic[0]&0xf0 == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d && magic[3] == 0x18
}

// filter is what the program name, run with args, writes of in: in
// goes to its standard input. A program that fails (a corrupt stream)
// ends the stream with an Invalid error naming format and what the
// program said, instead of an EOF that would read as a short archive.
func filter(in io.Reader, format, name string, args ...string) (io.Reader, func(), error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = in
	stderr := &limitedBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("read %s archive: %w", format, err)
	}
	f := &filtered{out: out, cmd: cmd, stderr: stderr, format: format}
	return f, f.close, nil
}

// filtered is a running filter's output.
type filtered struct {
	out    io.Reader
	cmd    *exec.Cmd
	stderr *limitedBuffer
	format string
	once   sync.Once
	err    error // how the program ended, once waited for
}

func (f *filtered) Read(p []byte) (int, error) {
	n, err := f.out.Read(p)
	if err == io.EOF {
		if werr := f.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// wait waits for the program once and says how it ended.
func (f *filtered) wait() error {
	f.once.Do(func() {
		if err := f.cmd.Wait(); err != nil {
			msg := strings.TrimSpace(f.stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			f.err = errdefs.Invalid("read %s archive: %s", f.format, msg)
		}
	})
	return f.err
}

// close ends the program if it still runs (a reader that stopped early)
// and reaps it.
func (f *filtered) close() {
	_ = f.cmd.Process.Kill()
	_ = f.wait()
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
