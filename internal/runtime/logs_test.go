package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLastLines: where the last n lines of a log start, with and without a
// final newline, for n beyond the file's lines, and across read blocks;
// and across rotated files read as one stream, a line running from one
// file into the next, and an empty live file after a rotation.
func TestLastLines(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than one read block
	for _, tc := range []struct {
		name  string
		files []string // oldest first; the last is the live file
		n     int
		want  string
	}{
		{"empty", []string{""}, 3, ""},
		{"zero lines", []string{"a\nb\n"}, 0, ""},
		{"last line", []string{"a\nb\nc\n"}, 1, "c\n"},
		{"two of three", []string{"a\nb\nc\n"}, 2, "b\nc\n"},
		{"more than there are", []string{"a\nb\n"}, 5, "a\nb\n"},
		{"no final newline", []string{"a\nb\nc"}, 1, "c"},
		{"no final newline, two", []string{"a\nb\nc"}, 2, "b\nc"},
		{"blank lines count", []string{"a\n\n\n"}, 2, "\n\n"},
		{"a line longer than a block", []string{"a\n" + long + "\nz\n"}, 2, long + "\nz\n"},
		{"into the rotated file", []string{"a\nb\n", "c\nd\n"}, 3, "b\nc\nd\n"},
		{"a line split by a rotation", []string{"a\nb\nc", "c\nd\n"}, 2, "cc\nd\n"},
		{"split line, one more", []string{"a\nb\nc", "c\nd\n"}, 3, "b\ncc\nd\n"},
		{"empty live file", []string{"old\n", "a\nb\n", ""}, 1, "b\n"},
		{"all of three files", []string{"a\n", "b\n", "c\n"}, 9, "a\nb\nc\n"},
		{"zero lines of rotated", []string{"a\n", ""}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for i, content := range tc.files {
				path := filepath.Join(dir, fmt.Sprintf("log%d", i))
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, path)
			}
			idx, off, err := lastLinesAcross(paths, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for i := idx; i < len(paths); i++ {
				b, err := os.ReadFile(paths[i])
				if err != nil {
					t.Fatal(err)
				}
				if i == idx {
					b = b[off:]
				}
				got.Write(b)
			}
			if got.String() != tc.want {
				t.Errorf("last %d lines of %q = %q, want %q", tc.n, tc.files, shorten(got.String()), shorten(tc.want))
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
