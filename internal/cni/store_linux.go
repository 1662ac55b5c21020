package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// stateDir is berth-cni's data directory, held under an exclusive lock
// from open to close: runtimes call plugins concurrently, each call its
// own process, and every call reads and writes the one state file.
type stateDir struct {
	path string
	lock *os.File
}

// openStateDir makes the directory if needed and waits for its lock.
func openStateDir(path string) (*stateDir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, &Error{Code: CodeIOFailure, Msg: "make data directory", Details: err.Error()}
	}
	f, err := os.OpenFile(filepath.Join(path, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &Error{Code: CodeIOFailure, Msg: "open lock file", Details: err.Error()}
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &Error{Code: CodeIOFailure, Msg: "lock data directory", Details: err.Error()}
	}
	return &stateDir{path: path, lock: f}, nil
}

// close releases the lock (closing the file does).
func (d *stateDir) close() { d.lock.Close() }

func (d *stateDir) file() string { return filepath.Join(d.path, "state.json") }

// load reads the state; a directory without one holds an empty state.
func (d *stateDir) load() (*State, error) {
	b, err := os.ReadFile(d.file())
	if errors.Is(err, fs.ErrNotExist) {
		s := NewState()
		s.BootID = bootID()
		return s, nil
	}
	if err != nil {
		return nil, &Error{Code: CodeIOFailure, Msg: "read state", Details: err.Error()}
	}
	s := NewState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, &Error{Code: CodeIOFailure, Msg: fmt.Sprintf("state file %s is corrupt", d.file()), Details: err.Error()}
	}
	if s.Attachments == nil {
		s.Attachments = map[string]*Attached{}
	}
	if s.Networks == nil {
		s.Networks = map[string]NetworkRule{}
	}
	if s.Last == nil {
		s.Last = map[string]netip.Addr{}
	}
	s.afterBoot(bootID())
	return s, nil
}

// bootIDPath is the kernel's boot ID, a new one at each boot.
var bootIDPath = "/proc/sys/kernel/random/boot_id"

func bootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// save replaces the state file atomically and durably: a new file,
// fdatasync'd, renamed over the old one, and the directory synced, so a
// power loss leaves the old state or the new one.
func (d *stateDir) save(s *State) error {
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return &Error{Code: CodeInternal, Msg: "encode state", Details: err.Error()}
	}
	tmp := d.file() + ".new"
	if err := writeSynced(tmp, b); err != nil {
		return &Error{Code: CodeIOFailure, Msg: "write state", Details: err.Error()}
	}
	if err := os.Rename(tmp, d.file()); err != nil {
		return &Error{Code: CodeIOFailure, Msg: "write state", Details: err.Error()}
	}
	if dir, err := os.Open(d.path); err == nil {
		unix.Fdatasync(int(dir.Fd()))
		dir.Close()
	}
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
