package testworld

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names the variable that points at a prebuilt berth binary;
// scripts/test sets it so that every test package shares one build.
const BinaryEnv = "BERTH_BIN"

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
	dirOnce   sync.Once
	dirErr    error
)

// Binary returns the berth binary: $BERTH_BIN if set, else ./cmd/berth
// built once per test process into a temp dir (RemoveBinary deletes it).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build berth: %v", buildErr)
	}
	return buildPath
}

// RemoveBinary deletes what Binary built; call it from TestMain after m.Run.
func RemoveBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

var (
	cniOnce sync.Once
	cniPath string
	cniErr  error
)

// CNIBinary returns berth-cni: $BERTH_CNI_BIN if set, else ./cmd/berth-cni
// built once per test process beside Binary's build.
func CNIBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_CNI_BIN"); p != "" {
		return p
	}
	cniOnce.Do(func() { cniPath, cniErr = buildCmd("berth-cni") })
	if cniErr != nil {
		t.Fatalf("build berth-cni: %v", cniErr)
	}
	return cniPath
}

func build() (string, error) { return buildCmd("berth") }

// buildCmd builds ./cmd/NAME into the shared temp dir.
func buildCmd(name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dirOnce.Do(func() { buildDir, dirErr = os.MkdirTemp("", "berth-bin-") })
	if dirErr != nil {
		return "", dirErr
	}
	out := filepath.Join(buildDir, name)
	cmd := exec.Command(goTool(), "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, msg)
	}
	return out, nil
}

// moduleRoot is the directory of the go.mod governing the test's package.
func moduleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a module (go env GOMOD = %q)", mod)
	}
	return filepath.Dir(mod), nil
}

// goTool finds go on PATH, else beside the runtime that built this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
