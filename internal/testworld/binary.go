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

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if buildDir, err = os.MkdirTemp("", "berth-bin-"); err != nil {
		return "", err
	}
	out := filepath.Join(buildDir, "berth")
	cmd := exec.Command(goTool(), "build", "-o", out, "./cmd/berth")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/berth: %w\n%s", err, msg)
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
