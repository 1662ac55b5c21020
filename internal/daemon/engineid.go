package daemon

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// loadEngineID reads the daemon's engine ID from path, or makes one (a
// random UUID, as dockerd's loadOrCreateID writes /var/lib/docker/engine-id)
// and writes it there: it is docker info's ID, and the ULA prefix of
// networks with IPv6 is derived from it (ipam.ULAPool), so it must
// outlive restarts of the daemon for their subnets to stay apart.
func loadEngineID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read engine ID: %w", err)
	}
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	tmp := filepath.Join(filepath.Dir(path), ".engine-id.tmp")
	if err := os.WriteFile(tmp, []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("write engine ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write engine ID: %w", err)
	}
	return id, nil
}
