package runtime

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLastLines: where the last n lines of a log start, with and without a
// final newline, for n beyond the file's lines, and across read blocks.
func TestLastLines(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than one read block
	for _, tc := range []struct {
		name, content string
		n             int
		want          string
	}{
		{"empty", "", 3, ""},
		{"zero lines", "a\nb\n", 0, ""},
		{"last line", "a\nb\nc\n", 1, "c\n"},
		{"two of three", "a\nb\nc\n", 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 5, "a\nb\n"},
		{"no final newline", "a\nb\nc", 1, "c"},
		{"no final newline, two", "a\nb\nc", 2, "b\nc"},
		{"blank lines count", "a\n\n\n", 2, "\n\n"},
		{"a line longer than a block", "a\n" + long + "\nz\n", 2, long + "\nz\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			off, err := lastLines(f, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(f)
			if string(got) != tc.want {
				t.Errorf("last %d lines of %q = %q, want %q", tc.n, shorten(tc.content), shorten(string(got)), shorten(tc.want))
			}
		})
	}
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:20] + "…" + s[len(s)-20:]
	}
	return s
}
