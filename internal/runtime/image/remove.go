package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/store"
)

// Users says which containers use an image: the first running one and
// the first stopped one (short IDs; "" when there is none), and whether
// a running docker build does (its base, or a step's image it goes on
// from), which holds it as a running container would.
type Users struct {
	Running, Stopped string
	Build            bool
}

// first is a container that uses the image, running ones first ("a
// build" for a build).
func (u Users) first() string {
	switch {
	case u.Running != "":
		return u.Running
	case u.Stopped != "":
		return u.Stopped
	case u.Build:
		return "a build"
	}
	return ""
}

// Remove works as docker rmi (moby's ImageDelete). By tag it removes that
// tag, and the image too when it was the last one; an image a container
// uses then keeps its last tag (conflict) or, with force, only loses it.
// By ID it removes every tag and the image; without force it refuses an
// image with several tags or one a container uses, and even with force
// one a running container uses (moby's hard conflict). users (nil: no
// container uses anything) names the containers of an image ID.
//
// Where berth differs: an image a stopped container uses is untagged by
// a forced removal by ID but not deleted, because its files are that
// container's lower layer (Docker keeps the layers and drops only the
// image's record; berth has no layer store apart from its images). It
// stays as a dangling image until the container is removed, and a forced
// removal that has no tag left to take is refused as a conflict.
func (s *Store) Remove(ref string, force bool, users func(id string) Users) (untagged, deleted []string, err error) {
	return s.remove(ref, force, true, users)
}

// RemoveNoPrune is Remove that leaves a deleted image's untagged parents
// alone (docker rmi --no-prune: moby's imageDeleteHelper returns before
// it prunes).
func (s *Store) RemoveNoPrune(ref string, force bool, users func(id string) Users) (untagged, deleted []string, err error) {
	return s.remove(ref, force, false, users)
}

func (s *Store) remove(ref string, force, prune bool, users func(id string) Users) (untagged, deleted []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, tagged, err := s.resolve(ref)
	if err != nil {
		return nil, nil, err
	}
	var u Users
	if users != nil {
		u = users(img.ID)
	}
	if tagged != "" {
		untagged, deleted, err = s.removeTag(img, ref, tagged, force, u)
	} else {
		untagged, deleted, err = s.removeByID(img, force, u)
	}
	if err == nil && len(deleted) > 0 && prune {
		deleted = append(deleted, s.pruneParents(img, users)...)
	}
	return untagged, deleted, err
}

// children are the images whose parent is id (docker commit's).
func (s *Store) children(id string) ([]*Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(imgs, func(o *Image) bool { return o.Parent != id }), nil
}

// hasChildren says whether an image among imgs was committed from image
// id (moby's imageStore.Children), for prune, which leaves such an
// untagged image to go with its last child.
func hasChildren(id string, imgs []*Image) bool {
	return slices.ContainsFunc(imgs, func(o *Image) bool { return o.Parent == id })
}

// pruneParents deletes, after img was deleted, its parent and the
// parent's own, as long as each has no tag, no container and no other
// child, as moby's imageDeleteHelper prunes (quietly: the first that must
// stay ends it). It returns the IDs deleted.
func (s *Store) pruneParents(img *Image, users func(id string) Users) []string {
	var deleted []string
	for id := img.Parent; id != ""; {
		parent, err := s.byID(id)
		if err != nil || len(parent.RepoTags) > 0 || (users != nil && users(id).first() != "") {
			break
		}
		if kids, err := s.children(id); err != nil || len(kids) > 0 {
			break
		}
		if err := s.delete(parent); err != nil {
			break
		}
		deleted = append(deleted, parent.ID)
		id = parent.Parent
	}
	return deleted
}

func (s *Store) removeTag(img *Image, ref, tagged string, force bool, u Users) (untagged, deleted []string, err error) {
	used := u.first() != ""
	if len(img.RepoTags) > 1 || (used && force) {
		// Forced, the last tag of an image a container uses goes and the
		// image stays: moby's quiet delete keeps it for a running
		// container, and berth for a stopped one too (see Remove).
		if err := s.untag(img, tagged); err != nil {
			return nil, nil, err
		}
		return []string{tagged}, nil, nil
	}
	if used && u.Running == "" && u.Stopped == "" {
		return nil, nil, errdefs.Conflict("conflict: unable to remove repository reference %q (must force) - a running build is using its referenced image %s", ref, ShortID(img.ID))
	}
	if used {
		return nil, nil, errdefs.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, u.first(), ShortID(img.ID))
	}
	if kids, err := s.children(img.ID); err != nil {
		return nil, nil, err
	} else if len(kids) > 0 {
		// moby's quiet delete after an untag: an image with children
		// stays, untagged (an intermediate image).
		if err := s.untag(img, tagged); err != nil {
			return nil, nil, err
		}
		return []string{tagged}, nil, nil
	}
	if err := s.delete(img); err != nil {
		return nil, nil, err
	}
	return []string{tagged}, []string{img.ID}, nil
}

// untag drops tags from img's tags (all of them when none are given).
func (s *Store) untag(img *Image, tags ...string) error {
	img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return len(tags) == 0 || slices.Contains(tags, t) })
	if err := s.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketImages, img.ID, img) }); err != nil {
		return fmt.Errorf("untag %s: %w", ShortID(img.ID), err)
	}
	return nil
}

// removeByID checks moby's conflicts in moby's order: a running container
// (hard), then, unless forced, several tags and a stopped container.
func (s *Store) removeByID(img *Image, force bool, u Users) (untagged, deleted []string, err error) {
	conflict := func(hard bool, why string) error {
		how := "must be forced"
		if hard {
			how = "cannot be forced"
		}
		return errdefs.Conflict("conflict: unable to delete %s (%s) - %s", ShortID(img.ID), how, why)
	}
	kids, err := s.children(img.ID)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case len(kids) > 0:
		return nil, nil, conflict(true, "image has dependent child images")
	case u.Running != "":
		return nil, nil, conflict(true, "image is being used by running container "+u.Running)
	case u.Build:
		return nil, nil, conflict(true, "image is being used by a running build")
	case !force && len(img.RepoTags) > 1:
		return nil, nil, conflict(false, "image is referenced in multiple repositories")
	case !force && u.Stopped != "" && len(img.RepoTags) == 0:
		// -f would not help: say what would.
		return nil, nil, conflict(true, "image is being used by stopped container "+u.Stopped+" (berth keeps an image's files while a container uses them: remove the container first)")
	case !force && u.Stopped != "":
		return nil, nil, conflict(false, "image is being used by stopped container "+u.Stopped)
	case u.Stopped != "":
		if len(img.RepoTags) == 0 {
			return nil, nil, conflict(true, "image is being used by stopped container "+u.Stopped+" (berth keeps an image's files while a container uses them: remove the container first)")
		}
		tags := slices.Clone(img.RepoTags)
		if err := s.untag(img); err != nil {
			return nil, nil, err
		}
		return tags, nil, nil
	}
	if err := s.delete(img); err != nil {
		return nil, nil, err
	}
	return slices.Clone(img.RepoTags), []string{img.ID}, nil
}

// delete drops the record first, so a crash before the directory is gone
// leaves an orphan directory that NewStore removes, never a record without
// its files. The tree goes only with the last image that uses it (images
// of one tar share it: treeOf): it is moved aside (s.mu held), and
// EmptyTrash deletes it, which the caller runs without its own locks (a
// big tree took seconds, and every create waited on the daemon's image
// lock meanwhile).
func (s *Store) delete(img *Image) error {
	err := s.st.Update(func(tx store.Tx) error { return tx.Delete(store.BucketImages, img.ID) })
	if err != nil {
		return fmt.Errorf("delete image %s: %w", img.ID, err)
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	for _, o := range imgs {
		if o.RootfsDir == img.RootfsDir {
			return nil
		}
	}
	tree := filepath.Dir(img.RootfsDir)
	if filepath.Dir(tree) != filepath.Clean(s.dir) || !hexRE.MatchString(filepath.Base(tree)) {
		return fmt.Errorf("delete files of image %s: its tree %q is not one of the store's", img.ID, img.RootfsDir)
	}
	// A directory of its own (an orphan for NewStore if a crash comes
	// first): a tree of the same image loaded again and removed again
	// while the first is still being deleted goes beside it.
	trash, err := os.MkdirTemp(s.dir, tmpPrefix+"removed-")
	if err != nil {
		return fmt.Errorf("delete files of image %s: %w", img.ID, err)
	}
	if err := os.Rename(tree, filepath.Join(trash, "tree")); err != nil {
		return errors.Join(fmt.Errorf("delete files of image %s: %w", img.ID, err), os.Remove(trash))
	}
	s.trash = append(s.trash, trash)
	return nil
}

// EmptyTrash deletes the trees of the images removed since it last ran.
func (s *Store) EmptyTrash() error {
	s.mu.Lock()
	trash := s.trash
	s.trash = nil
	s.mu.Unlock()
	var errs []error
	for _, t := range trash {
		if err := os.RemoveAll(t); err != nil {
			errs = append(errs, fmt.Errorf("delete the files of a removed image: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ShortID is an image's (or a container's) ID in the 12-character form
// docker prints.
func ShortID(id string) string {
	h := hexOf(id)
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Removed is one line of a prune's answer: a tag untagged or an image
// deleted (moby's image.DeleteResponse).
type Removed struct{ Untagged, Deleted string }

// JoinRemoved is one image's removal (docker rmi) as Removed lines: its
// tags, then the images deleted.
func JoinRemoved(untagged, deleted []string) []Removed {
	removed := make([]Removed, 0, len(untagged)+len(deleted))
	for _, t := range untagged {
		removed = append(removed, Removed{Untagged: t})
	}
	for _, id := range deleted {
		removed = append(removed, Removed{Deleted: id})
	}
	return removed
}

// Prune removes the images no container uses (users, nil: none) that
// match accepts: only untagged ("dangling") ones unless all is set, as
// docker image prune [-a]. An image goes with all its tags. It returns
// what it removed, image by image as moby's ImagesPrune answers (an
// image's tags, then it and the parents that went with it), and their
// sizes' sum; an image it cannot remove goes to skipped (nil: ignored)
// and the rest go on, as moby logs such an image and goes on.
func (s *Store) Prune(all bool, match func(*Image) bool, users func(id string) Users, skipped func(id string, err error)) (removed []Removed, reclaimed int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	imgs, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	byID := make(map[string]*Image, len(imgs))
	for _, img := range imgs {
		byID[img.ID] = img
	}
	gone := map[string]bool{}
	for _, img := range imgs {
		if gone[img.ID] || (!all && len(img.RepoTags) > 0) || (users != nil && users(img.ID).first() != "") || !match(img) {
			continue
		}
		if len(img.RepoTags) == 0 && hasChildren(img.ID, imgs) {
			continue // an intermediate image: it goes with its last child (moby's prune)
		}
		u, d, err := s.removeByID(img, true, Users{})
		if err != nil {
			if skipped != nil {
				skipped(img.ID, err)
			}
			continue
		}
		if len(d) > 0 {
			d = append(d, s.pruneParents(img, users)...)
		}
		for _, t := range u {
			removed = append(removed, Removed{Untagged: t})
		}
		for _, id := range d {
			removed = append(removed, Removed{Deleted: id})
		}
		for _, id := range d {
			gone[id] = true
			if o := byID[id]; o != nil {
				if _, err := os.Stat(o.RootfsDir); errors.Is(err, os.ErrNotExist) {
					reclaimed += o.Size // its tree went (one other images share stays)
				}
			}
		}
	}
	return removed, reclaimed, nil
}
