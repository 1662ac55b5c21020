package reference

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                       "busybox:latest",
		"busybox:1.36":                  "busybox:1.36",
		"docker.io/library/busybox":     "busybox:latest",
		"index.docker.io/library/b:1":   "b:1",
		"library/busybox:x":             "busybox:x",
		"docker.io/me/app":              "me/app:latest",
		"localhost:5000/app":            "localhost:5000/app:latest",
		"localhost/app:v2":              "localhost/app:v2",
		"registry.example.com/a/b:c":    "registry.example.com/a/b:c",
		"a_b.c-d__e":                    "a_b.c-d__e:latest",
		"Registry/app":                  "Registry/app:latest", // an upper-case first part is a host
		"app:V1.0_x-y":                  "app:V1.0_x-y",
		"a:" + strings.Repeat("t", 128): "a:" + strings.Repeat("t", 128),
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestParseRefusals: what docker refuses, in the words its CLI prints
// (checked against docker 28.2.2's import and tag).
func TestParseRefusals(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"BAD":                              "invalid reference format: repository name (library/BAD) must be lowercase",
		"me/App:v1":                        "invalid reference format: repository name (me/App) must be lowercase",
		"":                                 "invalid reference format",
		"a b":                              "invalid reference format",
		"a:":                               "invalid reference format",
		":b":                               "invalid reference format",
		"a/":                               "invalid reference format",
		"/a":                               "invalid reference format",
		"a//b":                             "invalid reference format",
		"a:b:c":                            "invalid reference format",
		"-a":                               "invalid reference format",
		"a-":                               "invalid reference format",
		"a:-x":                             "invalid reference format",
		"host.com/":                        "invalid reference format",
		"a:" + strings.Repeat("t", 129):    "invalid reference format",
		"a@sha256:00":                      "invalid reference format: digest references are not supported by berth",
		hex:                                "invalid repository name (" + hex + "), cannot specify 64-byte hexadecimal strings",
		strings.Repeat("a", 248):           "invalid reference format: repository name must not be more than 255 characters",
		"h.io/" + strings.Repeat("a", 256): "invalid reference format: repository name must not be more than 255 characters",
	} {
		got, err := Parse(in)
		if !errdefs.Is(err, errdefs.KindInvalid) || err.Error() != want {
			t.Errorf("Parse(%q) = %q, %v; want Invalid %q", in, got, err, want)
		}
	}
	// The limit counts the path, library/ included, not the host.
	for _, in := range []string{strings.Repeat("a", 247), "h.io/" + strings.Repeat("a", 255)} {
		if _, err := Parse(in); err != nil {
			t.Errorf("a path of 255: %v", err)
		}
	}
}

// TestWithTag: an import's or a tag request's separate tag replaces the
// one repo names (moby's RepoTagReference, reference.WithTag).
func TestWithTag(t *testing.T) {
	for _, tc := range []struct{ repo, tag, want, err string }{
		{"", "", "", ""},
		{"web", "", "web:latest", ""},
		{"web:1", "", "web:1", ""},
		{"web", "2", "web:2", ""},
		{"web:1", "2", "web:2", ""},
		{"localhost:5000/web", "3", "localhost:5000/web:3", ""},
		{"web", "-x", "", "invalid tag format"},
		{"", "x", "", `a tag ("x") needs a repository name`},
		{"Web", "1", "", "invalid reference format: repository name (library/Web) must be lowercase"},
	} {
		got, err := WithTag(tc.repo, tc.tag)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("WithTag(%q, %q) = %q, %v; want %q", tc.repo, tc.tag, got, err, tc.want)
		}
		if tc.err != "" && (!errdefs.Is(err, errdefs.KindInvalid) || err.Error() != tc.err) {
			t.Errorf("WithTag(%q, %q) = %q, %v; want Invalid %q", tc.repo, tc.tag, got, err, tc.err)
		}
	}
}

func TestNormalizeAndRepository(t *testing.T) {
	for in, want := range map[string][2]string{
		"busybox":                   {"busybox:latest", "busybox"},
		"docker.io/library/busybox": {"busybox:latest", "busybox"},
		"localhost:5000/a:1":        {"localhost:5000/a:1", "localhost:5000/a"},
		"0123abcd":                  {"0123abcd:latest", "0123abcd"},
		"sha256:0123abcd":           {"sha256:0123abcd", "sha256"},
	} {
		if got := Normalize(in); got != want[0] {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want[0])
		}
		if got := Repository(in); got != want[1] {
			t.Errorf("Repository(%q) = %q, want %q", in, got, want[1])
		}
	}
}

func TestFullName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                 "docker.io/library/busybox:latest",
		"busybox:1.36":            "docker.io/library/busybox:1.36",
		"team/app:v1":             "docker.io/team/app:v1",
		"localhost:5000/app:v1":   "localhost:5000/app:v1",
		"reg.example/a/b:2":       "reg.example/a/b:2",
		"docker.io/library/web:1": "docker.io/library/web:1",
	} {
		if got := FullName(in); got != want {
			t.Errorf("FullName(%q) = %q, want %q", in, got, want)
		}
	}
}
