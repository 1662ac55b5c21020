package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client/clienttest"
)

// A field the typed struct lacks is still reachable: the template is run
// again on the raw JSON, as docker does.
func TestInspectFallsBackToRawJSON(t *testing.T) {
	s := clienttest.New(t)
	s.Handle("GET /containers/{ref}/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Id":"` + web1ID + `","State":{"Pid":7},"BerthExtra":{"Zone":"blue"}}`))
	})
	got := runBerth(t, s.Host, "", "inspect", "-f", "{{.BerthExtra.Zone}} {{.State.Pid}}", "web1")
	if diff := cmp.Diff(result{stdout: "blue 7\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got = runBerth(t, s.Host, "", "inspect", "-f", "{{.Missing}}", "web1")
	if got.code != 1 || !strings.HasPrefix(got.stderr, "template parsing error: ") {
		t.Errorf("missing key: %+v", got)
	}
}

func TestInspectManyKeepsOrderAndJSONArray(t *testing.T) {
	s := cannedDaemon(t)
	got := runBerth(t, s.Host, "", "inspect", "--format", "json", "web1", "bridge", "busybox")
	if got.code != 0 {
		t.Fatalf("%+v", got)
	}
	if !strings.HasPrefix(got.stdout, `[{"Id":"`+web1ID+`"`) || !strings.Contains(got.stdout, `},{"Name":"bridge"`) || !strings.HasSuffix(got.stdout, "}]\n") {
		t.Errorf("stdout %q", got.stdout)
	}
}

func TestHelpFlags(t *testing.T) {
	s := cannedDaemon(t)
	for _, args := range [][]string{{"--help"}, {"network", "ls", "-h"}, {"run", "--help"}, {"exec", "--help"}, {"image", "import", "--help"}} {
		got := runBerth(t, s.Host, "", args...)
		if got.code != 0 || !strings.Contains(got.stdout, "Usage:") {
			t.Errorf("%v: %+v", args, got)
		}
	}
	if got := runBerth(t, s.Host, "", "--version"); got.stdout != "berth version 0.1.0-dev, build unknown\n" {
		t.Errorf("--version: %+v", got)
	}
}
