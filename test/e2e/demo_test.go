package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/testworld"
)

// TestDemoScript runs scripts/demo, the README's first command, and checks
// that every step worked and that it left no process behind.
func TestDemoScript(t *testing.T) {
	nstest.RequireRoot(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "demo"))
	cmd.Env = append(os.Environ(), testworld.BinaryEnv+"="+testworld.Binary(t))
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/demo:\n%s", out)
	if err != nil {
		t.Fatalf("scripts/demo: %v", err)
	}
	text := string(out)
	if strings.Contains(text, "(exit status") {
		t.Errorf("a demo step failed (see \"(exit status\" in the log)")
	}
	for _, want := range []string{
		"$ berth network inspect bridge",
		`"com.docker.network.bridge.name": "berth0"`,
		"master berth0",
		"64 bytes from 172.17.0.3",
		"64 bytes from 203.0.113.10",
		"you are 198.51.100.2",
		"table inet berth {",
		// The seed's ip netns steps: its own namespace, and the container's
		// restored from /proc/PID/ns/net.
		"$ ip netns exec demo ip a",
		"demo done",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`\$ ip netns exec \d+ ip link\n1: lo:[^\n]*\n[^\n]*\n2: eth0@`).MatchString(text) {
		t.Errorf("demo output lacks the container's eth0 through ip netns exec PID ip link")
	}
	m := regexp.MustCompile(`berth daemon running in a private host namespace \(pid (\d+)\)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("demo did not report its daemon's pid")
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("demo daemon %d still exists after the demo (kill 0: %v)", pid, err)
	}
}
