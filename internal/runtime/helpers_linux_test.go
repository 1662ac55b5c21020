package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/berth-net/berth/internal/runtime/image/imagetest"
	"github.com/berth-net/berth/internal/store"
)

// busyboxOnce imports the busybox image once per test binary; tests only
// read it (it is every container's read-only lower layer).
var busybox struct {
	once   sync.Once
	dir    string // the image store's directory, removed by TestMain
	rootfs string
	err    error
}

func busyboxRootfs(t testing.TB) string {
	t.Helper()
	busybox.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-runtime-test-images-")
		if err != nil {
			busybox.err = err
			return
		}
		busybox.dir = dir
		s, err := image.NewStore(dir, store.NewMemory())
		if err != nil {
			busybox.err = err
			return
		}
		f, err := os.Open(imagetest.BusyboxTar(t))
		if err != nil {
			busybox.err = err
			return
		}
		defer f.Close()
		img, err := s.Import(context.Background(), f, "busybox", "", "")
		if err != nil {
			busybox.err = err
			return
		}
		busybox.rootfs = img.RootfsDir
	})
	if busybox.err != nil {
		t.Fatalf("import busybox: %v", busybox.err)
	}
	return busybox.rootfs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if busybox.dir != "" {
		os.RemoveAll(busybox.dir)
	}
	os.Exit(code)
}

// newTestRuntime gives a runtime whose directories live in the test's temp dir.
func newTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	nstest.RequireRoot(t)
	base := t.TempDir()
	rt, err := New(Config{
		StateDir:  filepath.Join(base, "exec-root", "runc"),
		BundleDir: filepath.Join(base, "exec-root", "containers"),
		DataDir:   filepath.Join(base, "data-root", "containers"),
		ReaperDir: filepath.Join(base, "exec-root", "reaper"),
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// After the tests' containers are gone (cleanups run last first) and
	// before the temporary directory goes: the reaper must not write into
	// it while it is being removed.
	t.Cleanup(func() { closeAndAwaitReaper(t, rt) })
	return rt
}

// closeAndAwaitReaper closes rt and waits until its reaper, with no
// container left, has exited (it removes its socket as it goes).
func closeAndAwaitReaper(t testing.TB, rt *Runtime) {
	t.Helper()
	rt.Close()
	sock := reaperSocket(rt.cfg.ReaperDir)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); os.IsNotExist(err) {
			return
		}
	}
	t.Errorf("the reaper of %s did not exit after the runtime closed", rt.cfg.ReaperDir)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func randomID(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// busyboxSpec is a container of the busybox image in a fresh namespace.
func busyboxSpec(t *testing.T, args ...string) Spec {
	return Spec{
		ID:        randomID(t),
		RootfsDir: busyboxRootfs(t),
		Args:      args,
		Hostname:  "box",
		NetNSPath: nstest.New(t),
	}
}

// start starts s and makes sure the container, its mount and its files are
// gone when the test ends, whatever happened.
func start(t *testing.T, rt *Runtime, s Spec) Process {
	t.Helper()
	var p Process
	t.Cleanup(func() {
		if err := rt.Delete(s.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// Delete killed the init; take its exit record unless the test did.
		rt.waitProcess(context.Background(), p)
	})
	p, err := rt.Start(context.Background(), s)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return p
}

// startFails starts s, which is expected to fail, and returns Start's
// error. A Start that succeeds anyway is deleted when the test ends, as
// start does, so that the failing test leaves no container behind.
func startFails(t *testing.T, rt *Runtime, s Spec) error {
	t.Helper()
	p, err := rt.Start(context.Background(), s)
	if err == nil {
		t.Cleanup(func() {
			if err := rt.Delete(s.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			rt.waitProcess(context.Background(), p)
		})
	}
	return err
}

// mounted reports whether anything is mounted under dir.
func mounted(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// againAfterExit waits until p, started by rt (closed: the daemon is
// gone), has exited, and returns a new runtime over rt's directories, as
// a daemon that comes back.
func againAfterExit(t *testing.T, rt *Runtime, p Process) *Runtime {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); rt.Alive(p); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the container did not exit")
		}
	}
	again, err := New(rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	return again
}
