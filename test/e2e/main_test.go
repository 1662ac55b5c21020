package e2e

import (
	"os"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testworld.RemoveBinary()
	os.Exit(code)
}
