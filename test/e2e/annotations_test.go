package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestAnnotations: docker run --annotation reaches runc's OCI spec as
// given (moby's WithAnnotations) and inspect's HostConfig.Annotations.
func TestAnnotations(t *testing.T) {
	w, _ := startWorld(t)
	id := strings.TrimSpace(mustDocker(t, w, "run", "-d", "--annotation", "com.example.team=net", "--annotation", "org.example.empty=",
		testworld.BusyboxImage, "sleep", "600"))
	if got := dockerInspect(t, w, "{{json .HostConfig.Annotations}}", id); got != `{"com.example.team":"net","org.example.empty":""}` {
		t.Errorf("inspect HostConfig.Annotations: %s", got)
	}
	b, err := os.ReadFile(w.HostPath(filepath.Join(w.ExecRoot, "containers", id, "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct{ Annotations map[string]string }
	if err := json.Unmarshal(b, &spec); err != nil || spec.Annotations["com.example.team"] != "net" || len(spec.Annotations) != 2 {
		t.Errorf("the OCI spec's annotations: %v, %v", spec.Annotations, err)
	}
}
