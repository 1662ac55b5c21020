package dockerfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProcessWord(t *testing.T) {
	env := EnvLookup([]string{"A=1", "EMPTY=", "SP=x y", "A=2", "V=v1.2.3", "P=a/b/c.tar.gz", "B=a[x]b"})
	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$A", "2"}, // the last entry wins
		{"${A}b", "2b"},
		{"$Ab", ""},
		{"'$A'", "$A"},
		{`"$A $SP"`, "2 x y"},
		{`\$A`, "$A"},
		{`"a\"b\\c\d"`, `a"b\c\d`},
		{"${NOPE:-def}", "def"},
		{"${EMPTY:-def}", "def"},
		{"${EMPTY-def}", ""},
		{"${NOPE-def}", "def"},
		{"${A:+alt}", "alt"},
		{"${EMPTY:+alt}", ""},
		{"${EMPTY+alt}", "alt"},
		{"${NOPE:-${A}x}", "2x"},
		{"${NOPE:-'q'}", "q"},
		{"$", "$"},
		{"a$", "a$"},
		{"$1x", "x"},
		{"cost: $ 5", "cost: $ 5"},
		// The shell's pattern forms, as buildkit's lexer has them.
		{"${V#v}", "1.2.3"},
		{"${P#*/}", "b/c.tar.gz"},
		{"${P##*/}", "c.tar.gz"},
		{"${P%.*}", "a/b/c.tar"},
		{"${P%%.*}", "a/b/c"},
		{"${P/b/B}", "a/B/c.tar.gz"},
		{"${P//[ac]/x}", "a/b/c.tar.gz"}, // brackets are themselves, as buildkit's
		{"${B/[x]/Y}", "aYb"},
		{"${P%.t*}", "a/b/c"},
		{"${P%%/*}", "a"},
		{"${P#a/b/c.tar.gz}", ""},
		{`${P#a\/}`, "b/c.tar.gz"},
		{"${NOPE#x}", ""},
		// Special and positional parameters are empty.
		{"a$$b", "ab"},
		{"a$?b", "ab"},
		{"$10x", "x"},
	} {
		got, err := Lex{}.ProcessWord(tt.in, env)
		if err != nil || got != tt.want {
			t.Errorf("ProcessWord(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for in, want := range map[string]string{
		"${NOPE:?must be set}": "NOPE: must be set",
		"${EMPTY:?}":           "EMPTY: is not allowed to be empty",
		"${NOPE?}":             "NOPE: is not allowed to be unset",
		"${A":                  "missing '}'",
		"${}":                  "syntax error: bad substitution",
		"${A:#x}":              "unsupported modifier (:#)",
		"${A^x}":               "unsupported modifier (^)",
		`"open`:                "matching double-quote",
		"'open":                "matching single-quote",
	} {
		if _, err := (Lex{}).ProcessWord(in, env); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ProcessWord(%q) = %v, want an error with %q", in, err, want)
		}
	}
	if got, err := (Lex{Escape: '`'}).ProcessWord("C:\\dir `$A", env); err != nil || got != `C:\dir $A` {
		t.Errorf("backtick escape: %q, %v", got, err)
	}
}

// TestPatternLongValue: a pattern over a long value is one pass (a
// quadratic trim took minutes on a megabyte).
func TestPatternLongValue(t *testing.T) {
	long := strings.Repeat("x", 1<<20) + "y" + strings.Repeat("z", 10)
	env := EnvLookup([]string{"L=" + long})
	for in, want := range map[string]string{"${L#*y}": strings.Repeat("z", 10), "${L%%y*}": strings.Repeat("x", 1<<20), "${L%z}": long[:len(long)-1]} {
		if got, err := (Lex{}).ProcessWord(in, env); err != nil || got != want {
			t.Errorf("ProcessWord(%q) wrong (%d bytes), %v", in, len(got), err)
		}
	}
}

func TestProcessWords(t *testing.T) {
	env := EnvLookup([]string{"PORTS=80 443", "EMPTY="})
	for in, want := range map[string][]string{
		"$PORTS 53/udp":    {"80", "443", "53/udp"},
		`"$PORTS"`:         {"80 443"},
		"a$EMPTY b":        {"a", "b"},
		"$EMPTY":           nil,
		`"" x`:             {"", "x"},
		"  lead\ttrail  ":  {"lead", "trail"},
		`one\ word "two"`:  {"one word", "two"},
		"${PORTS:-1 2} 3 ": {"80", "443", "3"},
	} {
		got, err := Lex{}.ProcessWords(in, env)
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("ProcessWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSplitRaw(t *testing.T) {
	got := SplitRaw(`A="a b" B='c d' C=e\ f D=${X:-g h}  E`, '\\')
	want := []string{`A="a b"`, `B='c d'`, `C=e\ f`, `D=${X:-g h}`, "E"}
	if !cmp.Equal(got, want) {
		t.Errorf("SplitRaw = %q, want %q", got, want)
	}
}

func TestParse(t *testing.T) {
	src := "\ufeff# syntax=docker/dockerfile:1\n# escape=\\\n\n# a comment\nFROM busybox AS Build\n" +
		"RUN echo a \\\n  # inside\n\n  && echo b\n" +
		"copy --from=build --chown=1:2 /a /b\n" +
		"  ENV A=1\t\n" +
		"RUN --mount=type=cache,target=/x -- ls\n" +
		"CMD [\"sh\"]"
	f, err := Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{Cmd: "from", Args: "busybox AS Build", Original: "FROM busybox AS Build", Line: 5},
		{Cmd: "run", Args: "echo a   && echo b", Original: "RUN echo a   && echo b", Line: 6},
		{Cmd: "copy", Flags: []string{"--from=build", "--chown=1:2"}, Args: "/a /b", Original: "copy --from=build --chown=1:2 /a /b", Line: 10},
		{Cmd: "env", Args: "A=1", Original: "ENV A=1", Line: 11},
		{Cmd: "run", Flags: []string{"--mount=type=cache,target=/x"}, Args: "ls", Original: "RUN --mount=type=cache,target=/x -- ls", Line: 12},
		{Cmd: "cmd", Args: `["sh"]`, Original: `CMD ["sh"]`, Line: 13},
	}
	if diff := cmp.Diff(want, f.Nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "Empty continuation line") {
		t.Errorf("warnings = %q", f.Warnings)
	}
	if f.Escape != '\\' {
		t.Errorf("escape = %q", f.Escape)
	}

	f, err = Parse(strings.NewReader("# escape=`\nFROM scratch\nCOPY a `\n  b\nRUN dir c:\\\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Escape != '`' || f.Nodes[1].Args != "a   b" || f.Nodes[2].Args != `dir c:\` {
		t.Errorf("backtick escape: %q %+v", f.Escape, f.Nodes)
	}
	// An escaped escape ends the line; an unknown directive ends the
	// directives.
	f, err = Parse(strings.NewReader("# foo=bar\n# escape=`\nFROM x\nRUN echo a\\\\\nRUN b"))
	if err != nil || f.Escape != '\\' || len(f.Nodes) != 3 || f.Nodes[1].Args != `echo a\\` {
		t.Errorf("escaped escape, unknown directive: %v %q %+v", err, f.Escape, f.Nodes)
	}
	// A here-string and a shift are not heredocs.
	if _, err := Parse(strings.NewReader("FROM a\nRUN cat <<< hi\nRUN echo $((1<<2)) \"x <<EOF y\"\nRUN [\"a\", \"<<EOF\"]")); err != nil {
		t.Errorf("here-string: %v", err)
	}
	// A directive after an instruction is a comment.
	f, err = Parse(strings.NewReader("FROM x\n# escape=`\nRUN a \\\n b"))
	if err != nil || f.Escape != '\\' || f.Nodes[1].Args != "a  b" {
		t.Errorf("late directive: %v %q %+v", err, f.Escape, f.Nodes)
	}
	for src, want := range map[string]string{
		"# escape=x\nFROM a":                   "invalid escape token 'x'",
		"FROM a\nRUN <<EOF\necho hi\nEOF":      "heredocs (<<EOF) are BuildKit's",
		"FROM a\nCOPY <<-\"END\" /x\nhi\nEND":  "heredocs (<<EOF) are BuildKit's",
		"FROM a\nRUN cat 0<<EOF\nhi\nEOF":      "heredocs (<<EOF) are BuildKit's",
		"FROM a\nONBUILD RUN cat << END-1\nhi": "heredocs (<<EOF) are BuildKit's",
		"# escape=`\n# escape=\\\nFROM a":      "only one escape parser directive",
	} {
		if _, err := Parse(strings.NewReader(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", src, err, want)
		}
	}
}

func TestStages(t *testing.T) {
	f, err := Parse(strings.NewReader("ARG V=1\nARG B\nFROM --platform=$P busybox:$V AS one\nRUN a\nFROM one\nCOPY --from=one x y\n"))
	if err != nil {
		t.Fatal(err)
	}
	meta, stages, err := Stages(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta) != 2 || meta[0].Args != "V=1" || len(stages) != 2 {
		t.Fatalf("meta %+v stages %+v", meta, stages)
	}
	if s := stages[0]; s.Name != "one" || s.Base != "busybox:$V" || s.Platform != "$P" || len(s.Commands) != 1 {
		t.Errorf("stage 0 = %+v", s)
	}
	if s := stages[1]; s.Name != "" || s.Base != "one" || len(s.Commands) != 1 || s.Commands[0].Cmd != "copy" {
		t.Errorf("stage 1 = %+v", s)
	}
	for src, want := range map[string]string{
		"RUN x":                            "line 1: no build stage in current context",
		"FROM a\nFOO bar":                  "line 2: unknown instruction: FOO",
		"FROM a b":                         "FROM requires either one or three arguments",
		"FROM a AS 1x":                     `invalid name for build stage: "1x"`,
		"FROM --plat=x a":                  "unknown flag: plat",
		"FROM --platform=a --platform=b a": "duplicate flag specified: platform",
	} {
		f, err := Parse(strings.NewReader(src))
		if err == nil {
			_, _, err = Stages(f)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

func TestExecForm(t *testing.T) {
	for in, want := range map[string][]string{`["a", "b c"]`: {"a", "b c"}, ` [] `: {}} {
		got, ok, err := ExecForm(in)
		if !ok || err != nil || !cmp.Equal(got, want) {
			t.Errorf("ExecForm(%q) = %q %v %v", in, got, ok, err)
		}
	}
	for _, in := range []string{"echo [a]", "[not json", `{"a":1}`} {
		if _, ok, err := ExecForm(in); ok || err != nil {
			t.Errorf("ExecForm(%q) = %v %v, want the shell form", in, ok, err)
		}
	}
	if _, ok, err := ExecForm(`["a", 1]`); !ok || err == nil {
		t.Errorf("a non-string array: %v %v", ok, err)
	}
}
