package nftables

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/google/go-cmp/cmp"
)

// checkTable compares the kernel's table with the ruleset Build gives for nets.
func checkTable(t *testing.T, ns, step string, nets []firewall.Network) {
	t.Helper()
	rs, err := firewall.Build(nets)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalize(rs.String()), normalize(listTable(t, ns))); diff != "" {
		t.Errorf("%s: table differs (-want +kernel):\n%s", step, diff)
	}
}

func newTestFirewall(t *testing.T) (*Firewall, string) {
	t.Helper()
	ns := nstest.New(t)
	fw, err := New(ns, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := fw.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return fw, ns
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func listTable(t *testing.T, ns string) string {
	t.Helper()
	return output(t, ns, "nft", "list", "table", "inet", "berth")
}

// run runs a command in the namespace bound at ns and fails the test on error.
func run(t *testing.T, ns string, args ...string) {
	t.Helper()
	output(t, ns, args...)
}

func output(t *testing.T, ns string, args ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	handleRE  = regexp.MustCompile(` # handle \d+`)
)

func zeroCounters(s string) string { return counterRE.ReplaceAllString(s, "counter") }

// normalize makes nft listings comparable: counters and handles go, blank
// lines and indentation go, map elements are sorted one per line (the kernel
// lists hash maps in any order and nft wraps lines by width), and the
// table's maps and chains are sorted by their header line (nft lists them in
// creation order, which Add and Del change). Rule order inside a chain stays.
func normalize(s string) string {
	s = handleRE.ReplaceAllString(zeroCounters(s), "")
	var blocks []string
	var cur []string
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "" || strings.HasPrefix(l, "table ") || (l == "}" && cur == nil):
			continue
		case strings.HasPrefix(l, "elements = {"):
			var list []string
			body := strings.TrimPrefix(l, "elements = {")
			for !strings.HasSuffix(body, "}") && i+1 < len(lines) {
				i++
				body += " " + strings.TrimSpace(lines[i])
			}
			for _, e := range strings.Split(strings.TrimSuffix(body, "}"), ",") {
				list = append(list, "element "+strings.Join(strings.Fields(e), " "))
			}
			slices.Sort(list)
			cur = append(cur, list...)
		case l == "}":
			blocks = append(blocks, strings.Join(append(cur, "}"), "\n"))
			cur = nil
		default:
			cur = append(cur, strings.Join(strings.Fields(l), " "))
		}
	}
	slices.Sort(blocks)
	return strings.Join(blocks, "\n") + "\n"
}

func TestNormalize(t *testing.T) {
	a := `table inet berth { # handle 7
	map m {
		type ifname : verdict
		elements = { "b" : jump y,
			     "a" : jump x }
	}

	chain c { # handle 3
		counter packets 12 bytes 900 drop # handle 9
		accept
	}
}
`
	b := `table inet berth {
	chain c {
		counter drop
		accept
	}
	map m {
		type ifname : verdict
		elements = { "a" : jump x, "b" : jump y }
	}
}
`
	if diff := cmp.Diff(normalize(a), normalize(b)); diff != "" {
		t.Errorf("equivalent listings normalise differently (-a +b):\n%s", diff)
	}
	swapped := strings.Replace(b, "counter drop\n\t\taccept", "accept\n\t\tcounter drop", 1)
	if normalize(swapped) == normalize(b) {
		t.Error("normalize hides the order of rules")
	}
}

// matchesGolden requires the table in ns, as the kernel lists it, to be
// firewall's testdata/NAME.nft, and nft -f of that text in another
// namespace to list the same table: the netlink form and the text form
// agree.
func matchesGolden(t *testing.T, ns, name string) {
	t.Helper()
	golden := filepath.Join("..", "testdata", name+".nft")
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	got := listTable(t, ns)
	if diff := cmp.Diff(normalize(string(want)), normalize(got)); diff != "" {
		t.Errorf("kernel table differs from %s (-golden +kernel):\n%s", golden, diff)
	}
	viaNft := nstest.New(t)
	run(t, viaNft, "nft", "-f", golden)
	if diff := cmp.Diff(zeroCounters(listTable(t, viaNft)), zeroCounters(got)); diff != "" {
		t.Errorf("nft -f and netlink give different tables (-nft +netlink):\n%s", diff)
	}
}
