package image

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
)

// maxConfigSize bounds a loaded image's manifest and config files.
const maxConfigSize = 8 << 20

// manifestEntry is one image of docker save's manifest.json.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ociConfig is what berth reads of an image's config (the OCI image
// config, which docker save writes).
type ociConfig struct {
	Created time.Time `json:"created"`
	Comment string    `json:"comment"` // Docker's, beside the OCI fields
	Author  string    `json:"author"`
	History []History `json:"history"`
	OS      string    `json:"os"`
	Arch    string    `json:"architecture"`
	Variant string    `json:"variant"`
	RootFS  struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	Config struct {
		User         string              `json:"User"`
		Env          []string            `json:"Env"`
		Cmd          []string            `json:"Cmd"`
		Entrypoint   []string            `json:"Entrypoint"`
		WorkingDir   string              `json:"WorkingDir"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
		StopSignal   string              `json:"StopSignal"`
		Volumes      map[string]struct{} `json:"Volumes"`
		OnBuild      []string            `json:"OnBuild"`
		Shell        []string            `json:"Shell"`
		Healthcheck  *struct {
			Test          []string      `json:"Test"`
			Interval      time.Duration `json:"Interval"`
			Timeout       time.Duration `json:"Timeout"`
			StartPeriod   time.Duration `json:"StartPeriod"`
			StartInterval time.Duration `json:"StartInterval"`
			Retries       int           `json:"Retries"`
		} `json:"Healthcheck"`
	} `json:"config"`
}

// Loaded is one image docker load stored, with the tags it got.
type Loaded struct {
	Image *Image
	Tags  []string
	// Replaced are, beside Tags, the IDs of the images each tag was
	// taken from ("" where it was no other image's), for moby's "The
	// image … already exists, renaming the old one" line.
	Replaced []string
}

// Load reads the archive docker save writes (its manifest.json, each
// image's config and layers; the legacy and the OCI layouts both) and
// stores each image: its layers applied in order into one tree, with
// their whiteouts, and its config kept for the containers made from it.
// An image's ID is its config's digest, as Docker's; loading one that is
// there already only tags it.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Loaded, error) {
	return s.LoadFor(ctx, r, nil)
}

// PlatformMatch says whether an image of a platform (its config's os,
// architecture and variant) is one a load asked for.
type PlatformMatch func(os, arch, variant string) bool

// LoadFor is Load of the images keep matches (nil: all), as moby's load
// --platform skips, quietly, each image of another platform.
func (s *Store) LoadFor(ctx context.Context, r io.Reader, keep PlatformMatch) ([]Loaded, error) {
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(tmp)
	archive := filepath.Join(tmp, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		return nil, err
	}
	// The archive is unpacked first, as any other (its names and links
	// resolved inside it), so that manifest.json may come last.
	src, closeSrc, err := decompress(bufio.NewReaderSize(ctxReader{ctx, r}, 64<<10))
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	x, err := newExtractor(archive)
	if err != nil {
		return nil, err
	}
	x.noDevices = true // docker save writes none; opening one could act on the host
	err = x.extractAll(tar.NewReader(src))
	if err == nil && IsCompressed(src) {
		err = DrainTail(src)
	}
	x.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	root, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	b, err := readIn(root, "manifest.json")
	if errors.Is(err, unix.ENOENT) {
		if _, ierr := readIn(root, "index.json"); ierr == nil {
			return nil, errdefs.Invalid("invalid archive: only an OCI index (index.json), which berth does not read: docker save writes manifest.json too")
		}
		return nil, errdefs.Invalid("invalid archive: no manifest.json (docker load takes what docker save writes; a root file system is for docker import)")
	}
	if err != nil {
		return nil, err
	}
	var manifest []manifestEntry
	if err := json.Unmarshal(b, &manifest); err != nil {
		return nil, errdefs.Invalid("invalid archive: manifest.json: %v", err)
	}
	if manifest == nil {
		return nil, errdefs.Invalid("invalid manifest, manifest cannot be null (but can be [])") // moby's validateManifest
	}
	var out []Loaded
	for i, m := range manifest {
		if keep != nil {
			var oc ociConfig
			raw, err := readIn(root, m.Config)
			if err == nil {
				err = json.Unmarshal(raw, &oc)
			}
			if err != nil {
				return out, errdefs.Invalid("invalid archive: config %q: %v", m.Config, err)
			}
			// Another OS is loadOne's error, as moby checks it first.
			if (oc.OS == "" || oc.OS == "linux") && !keep(oc.OS, oc.Arch, oc.Variant) {
				continue
			}
		}
		img, err := s.loadOne(ctx, root, m, filepath.Join(tmp, fmt.Sprintf("image%d", i)))
		if err != nil {
			return out, err
		}
		loaded := Loaded{Image: img}
		for _, t := range m.RepoTags {
			ref, err := normalizeLoadTag(t)
			if err != nil {
				return out, err
			}
			s.mu.Lock()
			prev, _, _ := s.resolve(ref)
			img, err = s.tagStamped(img.ID, ref, false)
			s.mu.Unlock()
			if err != nil {
				return out, err
			}
			replaced := ""
			if prev != nil && prev.ID != img.ID {
				replaced = prev.ID
			}
			loaded.Image, loaded.Tags, loaded.Replaced = img, append(loaded.Tags, ref), append(loaded.Replaced, replaced)
		}
		out = append(out, loaded)
	}
	return out, nil
}

// normalizeLoadTag is a RepoTags entry as the store keeps tags
// ("name:tag", the default registry's prefix dropped).
func normalizeLoadTag(t string) (string, error) {
	if !reference.HasTag(t) {
		return "", errdefs.Invalid("invalid tag %q", t) // moby's load: a RepoTag names its tag
	}
	ref, err := reference.WithTag(t, "")
	if err != nil {
		return "", errdefs.Invalid("invalid archive: tag %q: %v", t, err)
	}
	return ref, nil
}

// loadOne stores the image m describes, its files read from the unpacked
// archive at root; dir is where it is built.
func (s *Store) loadOne(ctx context.Context, root *os.File, m manifestEntry, dir string) (*Image, error) {
	raw, err := readIn(root, m.Config)
	if err != nil {
		return nil, errdefs.Invalid("invalid archive: config %q: %v", m.Config, err)
	}
	var oc ociConfig
	if err := json.Unmarshal(raw, &oc); err != nil {
		return nil, errdefs.Invalid("invalid archive: config %q: %v", m.Config, err)
	}
	if oc.OS != "" && oc.OS != "linux" {
		return nil, errdefs.Invalid("cannot load %s image on linux", oc.OS)
	}
	// As moby's load: each layer must be the one the config names (its
	// diff ID), so that an image's ID, its config's digest, stands for its
	// files too; an image already here was checked so when it came.
	if len(m.Layers) != len(oc.RootFS.DiffIDs) {
		return nil, errdefs.Invalid("invalid manifest, layers length mismatch: expected %d, got %d", len(oc.RootFS.DiffIDs), len(m.Layers))
	}
	sum := sha256.Sum256(raw)
	id := "sha256:" + hex.EncodeToString(sum[:])
	if img, err := s.byID(id); err == nil {
		return img, nil
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	x, err := newExtractor(rootfs)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	sizes := make([]int64, 0, len(m.Layers))
	for i, l := range m.Layers {
		before := x.size
		if err := x.applyLayer(ctx, root, l, i, oc.RootFS.DiffIDs[i]); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l, err)
		}
		sizes = append(sizes, x.size-before)
	}
	if err := x.applyDirTimes(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	shared, err := s.treeOf(oc.RootFS.DiffIDs, treeLayers)
	if err != nil {
		return nil, err
	}
	return s.adoptWith(dir, &Image{ID: id, Size: x.size, Comment: oc.Comment, Config: imageConfig(oc), Created: oc.Created.UTC(),
		Layers: slices.Clone(oc.RootFS.DiffIDs), Tree: treeLayers, LayerSizes: sizes, History: oc.History, Author: oc.Author}, shared)
}

// applyLayer extracts layer i (plain or compressed) over what the
// earlier ones made, and checks that its uncompressed stream is diffID.
func (x *extractor) applyLayer(ctx context.Context, root *os.File, name string, i int, diffID string) error {
	fd, err := openIn(root, name)
	if err != nil {
		return errdefs.Invalid("invalid archive: %v", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	src, closeSrc, err := decompress(bufio.NewReaderSize(ctxReader{ctx, f}, 64<<10))
	if err != nil {
		return err
	}
	defer closeSrc()
	x.layer = map[string]bool{}
	defer func() { x.layer = nil }()
	h := sha256.New()
	tee := io.TeeReader(src, h)
	if err := x.extractEntries(tar.NewReader(tee)); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil { // the tar's padding after its end
		return errdefs.Invalid("read layer: %v", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return errdefs.Invalid("invalid diffID for layer %d: expected %q, got %q", i, diffID, got)
	}
	return nil
}

// imageConfig is the part of oc a container inherits.
func imageConfig(oc ociConfig) *Config {
	c := oc.Config
	out := &Config{User: c.User, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir,
		Labels: c.Labels, StopSignal: c.StopSignal, OnBuild: c.OnBuild, Shell: c.Shell}
	for p := range c.ExposedPorts {
		if !strings.Contains(p, "/") {
			p += "/tcp" // as moby reads a port without its protocol
		}
		if !slices.Contains(out.ExposedPorts, p) {
			out.ExposedPorts = append(out.ExposedPorts, p)
		}
	}
	sort.Strings(out.ExposedPorts)
	for v := range c.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	sort.Strings(out.Volumes)
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &container.HealthConfig{Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	return out
}

// openIn opens the regular file name inside root, resolved as if root
// were "/" (the archive's links cannot lead out of it).
// It is found with O_PATH and opened for reading only once it is known to
// be a regular file: opening a device can act on it.
func openIn(root *os.File, name string) (int, error) {
	fd, err := OpenRegularIn(root, name)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", name, err)
	}
	return fd, nil
}

// ErrNotRegular is OpenRegularIn's answer for what is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegularIn opens name inside the directory root for reading, its
// links resolved as if root were "/" (openat2 RESOLVE_IN_ROOT): an image,
// or a container, cannot make it lead out. It is pinned with O_PATH and
// reopened through its /proc magic link only once it is known to be a
// regular file (ErrNotRegular otherwise): opening a device node reaches its
// driver, on the host, and a FIFO's open blocks. The reopen goes through a
// /proc opened at start (procDir), so that it works from a thread chrooted
// where /proc is not mounted (a container's file system view).
func OpenRegularIn(root *os.File, name string) (int, error) {
	path, err := unix.Openat2(int(root.Fd()), name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, err
	}
	defer unix.Close(path)
	var st unix.Stat_t
	if err := unix.Fstat(path, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, ErrNotRegular
	}
	if procDir < 0 {
		return -1, errors.New("no /proc to reopen it through")
	}
	return unix.Openat(procDir, fmt.Sprintf("thread-self/fd/%d", path), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
}

// readIn reads the small file name inside root (see openIn).
func readIn(root *os.File, name string) ([]byte, error) {
	fd, err := openIn(root, name)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxConfigSize))
}
