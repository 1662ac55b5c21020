// Package dockerfile reads Dockerfiles as the legacy builder (moby's,
// over buildkit's parser) reads them: parser directives, instructions
// with their continuation lines, flags and arguments (Parse), build
// stages (Stages) and the shell-like words of their arguments with
// variables replaced (Lex). It runs nothing; internal/build does.
package dockerfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
)

// Node is one instruction as written.
type Node struct {
	// Cmd is the instruction, lower case ("run").
	Cmd string
	// Flags are the --name[=value] words before the arguments.
	Flags []string
	// Args is the rest of the instruction, its continuation lines joined
	// (the escape character and the line break removed).
	Args string
	// Original is the whole instruction so joined: what "Step n/m : …"
	// prints.
	Original string
	// Line is the line it starts on, from 1.
	Line int
}

// File is a parsed Dockerfile.
type File struct {
	Escape rune
	Nodes  []Node
	// Warnings are what the parser would warn about (empty continuation
	// lines), as moby prints them before the build.
	Warnings []string
}

// Error is a parse error at a line, in buildkit's words.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("dockerfile parse error on line %d: %s", e.Line, e.Msg)
}

// heredocRE is buildkit's reHeredoc: a word that starts a heredoc
// (<<EOF, <<-EOF, 0<<"EOF"; not a here-string's <<<).
var heredocRE = regexp.MustCompile(`^(\d*)<<(-?)\s*([^<]*)$`)

// hasHeredoc says whether a RUN, COPY or ADD (ONBUILD's too) starts a
// heredoc: one of its words, split as buildkit splits them (quotes
// kept, so a quoted "<<EOF" is text), is one, with its terminator in it
// or in the next word.
func hasHeredoc(n Node, escape rune) bool {
	cmd, args := n.Cmd, n.Args
	if cmd == "onbuild" {
		var inner string
		inner, args = cutBlank(args)
		cmd = strings.ToLower(inner)
		for strings.HasPrefix(args, "--") {
			_, args = cutBlank(args)
		}
	}
	if cmd != "run" && cmd != "copy" && cmd != "add" {
		return false
	}
	if _, isJSON, _ := ExecForm(args); isJSON {
		return false
	}
	words := SplitRaw(args, escape)
	for i, w := range words {
		m := heredocRE.FindStringSubmatch(w)
		if m != nil && (m[3] != "" || i+1 < len(words)) {
			return true
		}
	}
	return false
}

var directiveRE = regexp.MustCompile(`^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`)

// Parse reads a Dockerfile. Parser directives (# escape=`, # syntax=…)
// are read from its first lines; comments and blank lines are dropped,
// also between continuation lines.
func Parse(r io.Reader) (*File, error) {
	f := &File{Escape: '\\'}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, string(bytes.TrimPrefix(sc.Bytes(), []byte("\xef\xbb\xbf"))))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	i := 0
	seen := map[string]bool{}
	for ; i < len(lines); i++ {
		m := directiveRE.FindStringSubmatch(lines[i])
		if m == nil {
			break
		}
		name := strings.ToLower(m[1])
		if name != "syntax" && name != "escape" && name != "check" {
			break // an unknown one ends the directives, as buildkit's
		}
		if seen[name] {
			return nil, &Error{i + 1, fmt.Sprintf("only one %s parser directive can be used", name)}
		}
		seen[name] = true
		if name == "escape" {
			if m[2] != "\\" && m[2] != "`" {
				return nil, &Error{i + 1, fmt.Sprintf("invalid escape token '%s' does not match ` or \\", m[2])}
			}
			f.Escape = rune(m[2][0])
		}
	}
	esc := string(f.Escape)
	for i < len(lines) {
		line := lines[i]
		start := i
		i++
		trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		var b strings.Builder
		cont, emptyCont := false, false
		text := strings.TrimRightFunc(trimmed, unicode.IsSpace)
		for {
			// A line goes on when it ends with the escape character, not
			// an escaped one (buildkit's lineContinuationRegex).
			if body, ok := strings.CutSuffix(text, esc); ok && !strings.HasSuffix(body, esc) {
				b.WriteString(body)
				cont = true
			} else {
				b.WriteString(text)
				cont = false
			}
			if !cont || i >= len(lines) {
				break
			}
			// The next non-comment line continues this one.
			next := lines[i]
			i++
			nt := strings.TrimSpace(next)
			if strings.HasPrefix(nt, "#") {
				text = esc // a comment inside: skipped, the line goes on
				continue
			}
			if nt == "" {
				emptyCont = true
				text = esc
				continue
			}
			text = strings.TrimRightFunc(next, unicode.IsSpace)
		}
		if emptyCont {
			f.Warnings = append(f.Warnings, fmt.Sprintf("[WARNING]: Empty continuation line found in:\n    %s", b.String()))
		}
		n, err := parseLine(b.String(), start+1)
		if err != nil {
			return nil, err
		}
		if hasHeredoc(n, f.Escape) {
			// Its lines would be read as instructions: say what it is.
			return nil, &Error{n.Line, "heredocs (<<EOF) are BuildKit's, which berth does not have: write the lines as a RUN with && or a file to COPY"}
		}
		f.Nodes = append(f.Nodes, n)
	}
	return f, nil
}

// parseLine splits a joined instruction into its command, flags and
// arguments.
func parseLine(s string, line int) (Node, error) {
	s = strings.TrimSpace(s)
	cmd, rest := cutBlank(s)
	n := Node{Cmd: strings.ToLower(cmd), Original: s, Line: line}
	for strings.HasPrefix(rest, "--") {
		var w string
		w, rest = cutBlank(rest)
		if w == "--" {
			break
		}
		n.Flags = append(n.Flags, w)
	}
	n.Args = rest
	return n, nil
}

// cutBlank splits s at its first run of blanks.
func cutBlank(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}
