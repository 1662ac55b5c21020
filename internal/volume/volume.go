// Package volume keeps named volumes, Docker's "local" driver's: a
// directory each under <data-root>/volumes/<name>/_data, with its record
// in berth's store. A container mounts a volume as a bind of that
// directory; the daemon knows which containers use which.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/store"
)

// AnonymousLabel marks a volume made for a container without a name
// (-v /path, an image's VOLUME), as moby's
// com.docker.volume.anonymous: docker rm -v and --rm remove it, and
// volume prune takes it by default.
const AnonymousLabel = "com.docker.volume.anonymous"

// validName is moby's local driver's rule for a volume's name.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CheckName refuses what the local driver does not take as a name, in
// moby's words.
func CheckName(name string) error {
	if len(name) == 1 {
		return errdefs.Invalid("create %s: volume name is too short, names should be at least two alphanumeric characters", name)
	}
	if !validName.MatchString(name) {
		return errdefs.Invalid("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	return nil
}

// Volume is one volume.
type Volume struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// Anonymous says whether v was made for a container without a name.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// Store keeps the volumes under dir.
type Store struct {
	dir string
	st  store.Store
	mu  sync.Mutex
	// Changed, when set, hears of each volume made ("create") and
	// removed ("destroy"), after the fact and outside the lock: the
	// daemon's events.
	Changed func(action, name string)
}

func (s *Store) changed(action, name string) {
	if s.Changed != nil {
		s.Changed(action, name)
	}
}

// NewStore opens the volumes under dir (<data-root>/volumes).
func NewStore(dir string, st store.Store) (*Store, error) {
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, st: st}
	s.finishRemovals()
	// What a copy into a volume that a crash cut short staged.
	if staged, err := filepath.Glob(filepath.Join(dir, "*", stagingName)); err == nil {
		for _, g := range staged {
			_ = os.RemoveAll(g)
		}
	}
	return s, nil
}

// stagingName is the directory beside a volume's _data where the
// image's files are copied before they are moved in (StagingDir).
const stagingName = "_copying"

// StagingDir is where a copy into the volume whose files are at
// mountpoint stages them: on the same file system, outside what
// containers see.
func StagingDir(mountpoint string) string {
	return filepath.Join(filepath.Dir(mountpoint), stagingName)
}

// finishRemovals deals with what a removal moved aside and a crash left
// (forget, Purge): the files of a volume whose record is gone are
// deleted; those of a volume whose record is still there (the crash came
// between the move and the record's delete) go back, so that a docker
// volume rm the daemon did not finish loses nothing.
func (s *Store) finishRemovals() {
	gone, err := filepath.Glob(filepath.Join(s.dir, removingPrefix+"*"))
	if err != nil {
		return
	}
	for _, g := range gone {
		if name := removedName(filepath.Base(g)); name != "" {
			_, err := s.getLocked(name)
			if err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
				continue // the store cannot say: leave the files for the next start
			}
			if err == nil {
				if _, err := os.Lstat(filepath.Join(s.dir, name)); errors.Is(err, os.ErrNotExist) {
					if os.Rename(g, filepath.Join(s.dir, name)) == nil {
						continue
					}
				}
			}
		}
		_ = os.RemoveAll(g)
	}
}

// removingPrefix starts the name of a volume's directory moved aside by
// a removal: .removing-<16 hex>-<volume name>.
const removingPrefix = ".removing-"

// removedName is the volume a moved-aside directory was, or "" (a name
// without one, from an older berth).
func removedName(base string) string {
	rest, ok := strings.CutPrefix(base, removingPrefix)
	if !ok || len(rest) < 18 || rest[16] != '-' {
		return ""
	}
	return rest[17:]
}

// Mountpoint is where volume name's files are, on the host.
func (s *Store) Mountpoint(name string) string { return filepath.Join(s.dir, name, "_data") }

// Create makes the volume name (a random 64-hex one if empty), or
// returns it if it exists, as moby's local driver does for a create of a
// name already there.
func (s *Store) Create(name string, labels map[string]string) (*Volume, error) {
	if name == "" {
		// moby's VolumesService.Create: a volume given no name is
		// anonymous, whoever asks (docker volume create without one too).
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		name = hex.EncodeToString(b)
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	v, made, err := s.create(name, labels)
	if made {
		s.changed("create", name)
	}
	return v, err
}

func (s *Store) create(name string, labels map[string]string) (*Volume, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, err := s.getLocked(name); err == nil {
		return v, false, nil
	}
	if err := os.MkdirAll(s.Mountpoint(name), 0o755); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", name, err)
	}
	v := &Volume{Name: name, Labels: labels, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := s.st.Update(func(tx store.Tx) error { return tx.Put(store.BucketVolumes, name, v) }); err != nil {
		return nil, false, errors.Join(err, os.RemoveAll(filepath.Join(s.dir, name)))
	}
	return v, true, nil
}

// Get returns volume name.
func (s *Store) Get(name string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(name)
}

func (s *Store) getLocked(name string) (*Volume, error) {
	var v Volume
	err := s.st.View(func(tx store.Tx) error { return tx.Get(store.BucketVolumes, name, &v) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, errdefs.NotFound("get %s: no such volume", name)
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// List returns the volumes by name.
func (s *Store) List() ([]*Volume, error) {
	var out []*Volume
	err := s.st.View(func(tx store.Tx) error {
		return tx.ForEach(store.BucketVolumes, func(_ string, raw []byte) error {
			var v Volume
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			out = append(out, &v)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Remove deletes volume name and its files; the caller checks that no
// container uses it.
func (s *Store) Remove(name string) error {
	gone, err := s.Forget(name)
	if err != nil {
		return err
	}
	return Purge(gone)
}

// Forget removes volume name's record and moves its directory aside, at
// once (a create of the same name makes a new one), and returns where it
// went, for Purge to delete outside the caller's locks.
func (s *Store) Forget(name string) (string, error) {
	gone, err := s.forget(name)
	if err == nil {
		s.changed("destroy", name)
	}
	return gone, err
}

func (s *Store) forget(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.getLocked(name); err != nil {
		return "", err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	// The name goes with the files: a crash before the record's delete
	// brings them back at the next start (finishRemovals).
	gone := filepath.Join(s.dir, removingPrefix+hex.EncodeToString(b)+"-"+name)
	if err := os.Rename(filepath.Join(s.dir, name), gone); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("remove %s: %w", name, err)
	}
	if err := s.st.Update(func(tx store.Tx) error { return tx.Delete(store.BucketVolumes, name) }); err != nil {
		// The volume stays, and with it its files.
		if rerr := os.Rename(gone, filepath.Join(s.dir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return "", err
	}
	return gone, nil
}

// Purge deletes what Forget moved aside.
func Purge(gone string) error {
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s: %w", filepath.Base(gone), err)
	}
	return nil
}

// Size is the bytes of the files in volume name (docker system df).
func (s *Store) Size(name string) int64 {
	var n int64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(s.Mountpoint(name), func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() == 0 {
			return nil
		}
		// As moby's directory.Size: every file but directories, by its
		// lstat size, and a file of several hard links once.
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

// Empty says whether volume name has no files yet (a container's first
// mount copies its image's files in: Populate).
func (s *Store) Empty(name string) bool {
	d, err := os.Open(s.Mountpoint(name))
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) == 0
}
