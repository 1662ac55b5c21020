package testworld

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-net/berth/internal/runtime/image/imagetest"
)

// BusyboxImage is the name the world imports its busybox root filesystem as.
const BusyboxImage = "busybox"

// Busybox writes the busybox root filesystem tar (once per world) and
// imports it through the CLI as "busybox", once per world: the image lives
// in the data-root, which survives daemon restarts. A daemon must be running.
func (w *World) Busybox(t testing.TB) string {
	t.Helper()
	w.mu.Lock()
	done := w.images[BusyboxImage]
	w.mu.Unlock()
	if done {
		return BusyboxImage
	}
	tarPath := filepath.Join(w.Dir, "busybox.tar")
	if err := writeBusyboxTar(tarPath); err != nil {
		t.Fatalf("write busybox tar: %v", err)
	}
	w.MustBerth(t, "import", tarPath, BusyboxImage)
	w.mu.Lock()
	w.images[BusyboxImage] = true
	w.mu.Unlock()
	return BusyboxImage
}

func writeBusyboxTar(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := imagetest.WriteBusyboxTar(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
