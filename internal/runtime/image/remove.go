package image

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/store"
)

// Remove works as docker rmi. By tag it removes that tag, and the image
// too when it was the last one; an image a container uses then keeps its
// last tag (conflict) or, with force, only loses it. By ID it removes every
// tag and the image; without force it refuses an image with several tags
// or one a container uses. inUse (nil: never) tells whether a container
// uses an image ID; the caller refuses running containers itself if it
// wants docker's "cannot be forced" case.
func (s *Store) Remove(ref string, force bool, inUse func(id string) bool) (untagged, deleted []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, tagged, err := s.resolve(ref)
	if err != nil {
		return nil, nil, err
	}
	used := inUse != nil && inUse(img.ID)
	if tagged != "" {
		return s.removeTag(img, ref, tagged, force, used)
	}
	return s.removeByID(img, force, used)
}

func (s *Store) removeTag(img *Image, ref, tagged string, force, used bool) (untagged, deleted []string, err error) {
	if len(img.RepoTags) > 1 || (used && force) {
		img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return t == tagged })
		err := s.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketImages, img.ID, img) })
		if err != nil {
			return nil, nil, fmt.Errorf("untag %q: %w", tagged, err)
		}
		return []string{tagged}, nil, nil
	}
	if used {
		return nil, nil, errdefs.Conflict("conflict: unable to remove repository reference %q (must force) - a container is using its referenced image %s", ref, shortID(img.ID))
	}
	if err := s.delete(img); err != nil {
		return nil, nil, err
	}
	return []string{tagged}, []string{img.ID}, nil
}

func (s *Store) removeByID(img *Image, force, used bool) (untagged, deleted []string, err error) {
	if !force && len(img.RepoTags) > 1 {
		return nil, nil, errdefs.Conflict("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(img.ID))
	}
	if !force && used {
		return nil, nil, errdefs.Conflict("conflict: unable to delete %s (must be forced) - image is being used by a container", shortID(img.ID))
	}
	if err := s.delete(img); err != nil {
		return nil, nil, err
	}
	return slices.Clone(img.RepoTags), []string{img.ID}, nil
}

// delete drops the record first, so a crash before the directory is gone
// leaves an orphan directory that NewStore removes, never a record without
// its files.
func (s *Store) delete(img *Image) error {
	err := s.st.Update(func(tx store.Tx) error { return tx.Delete(store.BucketImages, img.ID) })
	if err != nil {
		return fmt.Errorf("delete image %s: %w", img.ID, err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, hexOf(img.ID))); err != nil {
		return fmt.Errorf("delete files of image %s: %w", img.ID, err)
	}
	return nil
}

// shortID is the 12-character form docker prints.
func shortID(id string) string {
	h := hexOf(id)
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Prune removes the images no container uses (inUse, nil: none) that
// match accepts: only untagged ("dangling") ones unless all is set, as
// docker image prune [-a]. An image goes with all its tags. It returns
// the tags removed, the images deleted and their sizes' sum; an image it
// cannot remove goes to skipped (nil: ignored) and the rest go on, as
// moby logs such an image and goes on.
func (s *Store) Prune(all bool, match func(*Image) bool, inUse func(id string) bool, skipped func(id string, err error)) (untagged, deleted []string, reclaimed int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	imgs, err := s.List()
	if err != nil {
		return nil, nil, 0, err
	}
	for _, img := range imgs {
		if (!all && len(img.RepoTags) > 0) || (inUse != nil && inUse(img.ID)) || !match(img) {
			continue
		}
		u, d, err := s.removeByID(img, true, false)
		if err != nil {
			if skipped != nil {
				skipped(img.ID, err)
			}
			continue
		}
		untagged, deleted, reclaimed = append(untagged, u...), append(deleted, d...), reclaimed+img.Size
	}
	return untagged, deleted, reclaimed, nil
}
