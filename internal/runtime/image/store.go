package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
	"github.com/berth-net/berth/internal/store"
)

// hexRE matches an image ID's hex, or a prefix of it.
var hexRE = regexp.MustCompile(`^[a-f0-9]{1,64}$`)

// Store keeps images as directories <dir>/<hex>/rootfs and their records,
// keyed by ID, in bucket store.BucketImages.
type Store struct {
	dir string
	st  store.Store
	// mu serialises imports and removals: both read tags and directories,
	// then change them.
	mu sync.Mutex
	// trash are the trees of removed images moved aside (under mu), for
	// EmptyTrash.
	trash []string
	// built indexes build steps' images by their BuildKey (Built).
	builtMu sync.Mutex
	built   map[string][]string
}

// NewStore opens the image store in dir (<data-root>/images), creating it,
// and removes what a crash left behind: unfinished imports and image
// directories without a record.
func NewStore(dir string, st store.Store) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create image directory %q: %w", dir, err)
	}
	s := &Store{dir: dir, st: st}
	if err := s.removeOrphans(); err != nil {
		return nil, fmt.Errorf("clean image directory %q: %w", dir, err)
	}
	return s, nil
}

func (s *Store) removeOrphans() error {
	imgs, err := s.List()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, img := range imgs {
		known[hexOf(img.ID)] = true
		known[filepath.Base(filepath.Dir(img.RootfsDir))] = true // a tree it shares
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if known[e.Name()] || !(strings.HasPrefix(e.Name(), tmpPrefix) || hexRE.MatchString(e.Name())) {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(s.dir, e.Name())))
	}
	return errors.Join(errs...)
}

func hexOf(id string) string { return strings.TrimPrefix(id, "sha256:") }

// adoptWith turns the finished import, load or commit in tmp into the
// image img describes (its ID, size, comment, config, layers, tree,
// history…; created now if zero), recording it in one record, or, when
// that image exists already, keeps the existing one (tmp is then removed
// by the caller). shared, when not "", is the rootfs of an image made of
// the same layers, which the new one uses instead of tmp's tree.
func (s *Store) adoptWith(tmp string, img *Image, shared string) (*Image, error) {
	if old, err := s.byID(img.ID); err == nil {
		return old, nil
	} else if !errdefs.Is(err, errdefs.KindNotFound) {
		return nil, err
	}
	final := filepath.Join(s.dir, hexOf(img.ID))
	rootfs := filepath.Join(final, "rootfs")
	if shared != "" {
		rootfs, final = shared, ""
	} else {
		// A directory without a record is a leftover of a crash mid-import.
		if err := os.RemoveAll(final); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, final); err != nil {
			return nil, err
		}
	}
	if img.Created.IsZero() {
		img.Created = time.Now().UTC()
	}
	img.RepoTags, img.RootfsDir = []string{}, rootfs
	err := s.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketImages, img.ID, img) })
	if err != nil && final != "" {
		err = errors.Join(err, os.RemoveAll(final))
	}
	if err != nil {
		return nil, err
	}
	return img, nil
}

// Ways a tree is made from its layers (Image.Tree).
const (
	treeImport = "import"
	treeLayers = "layers"
	treeCommit = "commit"
)

// treeOf returns the rootfs of an image whose tree was made the same way
// (tree) from exactly layers, to share (each import of one tar is an
// image of its own, as in Docker, but berth keeps one tree for them where
// Docker keeps one layer), or "".
func (s *Store) treeOf(layers []string, tree string) (string, error) {
	if len(layers) == 0 {
		return "", nil
	}
	imgs, err := s.List()
	if err != nil {
		return "", err
	}
	for _, img := range imgs {
		if img.Tree == tree && slices.Equal(img.Layers, layers) {
			return img.RootfsDir, nil
		}
	}
	return "", nil
}

// tag gives image id the tag ref ("name:tag"), taking it from any other image.
func (s *Store) tag(id, ref string) (*Image, error) { return s.tagStamped(id, ref, true) }

// tagStamped is tag; stamp sets the image's LastTagTime, as moby's
// TagImage does (docker tag, build, commit, import) and its load's
// setLoadedTag does not.
func (s *Store) tagStamped(id, ref string, stamp bool) (*Image, error) {
	var out *Image
	err := s.st.Update(func(tx store.Tx) error {
		imgs, err := listTx(tx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			has := slices.Contains(img.RepoTags, ref)
			switch {
			case img.ID == id:
				out = img
				if has {
					continue
				}
				img.RepoTags = append(img.RepoTags, ref)
				if stamp {
					img.LastTagTime = time.Now().UTC()
				}
			case has:
				img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return t == ref })
			default:
				continue
			}
			if err := tx.Put(store.BucketImages, img.ID, img); err != nil {
				return err
			}
		}
		if out == nil {
			return errdefs.NotFound("No such image: %s", id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tag %q: %w", ref, err)
	}
	return out, nil
}

// List returns every image, newest first, as docker images prints them.
func (s *Store) List() ([]*Image, error) {
	var imgs []*Image
	err := s.st.View(func(tx store.Tx) error {
		var err error
		imgs, err = listTx(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		if !imgs[i].Created.Equal(imgs[j].Created) {
			return imgs[i].Created.After(imgs[j].Created)
		}
		return imgs[i].ID < imgs[j].ID
	})
	return imgs, nil
}

func listTx(tx store.Tx) ([]*Image, error) {
	var imgs []*Image
	err := tx.ForEach(store.BucketImages, func(key string, raw []byte) error {
		img := &Image{}
		if err := json.Unmarshal(raw, img); err != nil {
			return fmt.Errorf("decode image %q: %w", key, err)
		}
		if img.RepoTags == nil {
			img.RepoTags = []string{}
		}
		imgs = append(imgs, img)
		return nil
	})
	return imgs, err
}

func (s *Store) byID(id string) (*Image, error) {
	img := &Image{}
	err := s.st.View(func(tx store.Tx) error { return tx.Get(store.BucketImages, id, img) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, errdefs.NotFound("No such image: %s", id)
	}
	if err != nil {
		return nil, err
	}
	if img.RepoTags == nil {
		img.RepoTags = []string{}
	}
	return img, nil
}

// Get finds an image as docker does: "sha256:<hex>", "name", "name:tag",
// or a full or unique partial hex ID. A name wins over an ID prefix that
// happens to look the same.
func (s *Store) Get(ref string) (*Image, error) {
	img, _, err := s.resolve(ref)
	return img, err
}

// resolve returns the image ref names and, when ref named it by a tag, that tag.
func (s *Store) resolve(ref string) (*Image, string, error) {
	if rest, ok := strings.CutPrefix(ref, "sha256:"); ok && len(rest) == 64 && hexRE.MatchString(rest) {
		// A full ID: one record read, not every image's (a build looks up
		// each step's image so).
		img, err := s.byID(ref)
		return img, "", err
	}
	imgs, err := s.List()
	if err != nil {
		return nil, "", err
	}
	if rest, ok := strings.CutPrefix(ref, "sha256:"); ok {
		img, err := byPrefix(imgs, rest, ref)
		return img, "", err
	}
	tagged, terr := reference.Parse(ref)
	if terr == nil {
		for _, img := range imgs {
			if slices.Contains(img.RepoTags, tagged) {
				return img, tagged, nil
			}
		}
	}
	img, err := byPrefix(imgs, ref, ref)
	if terr == nil && errdefs.Is(err, errdefs.KindNotFound) {
		// moby names a missing image by its tagged name (ErrImageDoesNotExist
		// applies reference.TagNameOnly): "No such image: busybox:latest".
		err = errdefs.NotFound("No such image: %s", tagged)
	}
	return img, "", err
}

func byPrefix(imgs []*Image, prefix, ref string) (*Image, error) {
	if !hexRE.MatchString(prefix) {
		return nil, errdefs.NotFound("No such image: %s", ref)
	}
	var found *Image
	for _, img := range imgs {
		if !strings.HasPrefix(hexOf(img.ID), prefix) {
			continue
		}
		if found != nil {
			return nil, errdefs.Invalid("multiple images found with provided prefix: %s", prefix)
		}
		found = img
	}
	if found == nil {
		return nil, errdefs.NotFound("No such image: %s", ref)
	}
	return found, nil
}

// Tag gives the image ref names the tag repo:tag (tag "latest" if empty),
// taking it from any image that had it (docker tag).
func (s *Store) Tag(ref, repo, tag string) (*Image, error) {
	newRef, err := reference.WithTag(repo, tag)
	if err != nil {
		return nil, err
	}
	if newRef == "" {
		return nil, errdefs.Invalid("a repository name is required")
	}
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tag(img.ID, newRef)
}
