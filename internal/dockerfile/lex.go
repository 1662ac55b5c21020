package dockerfile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Lookup gives a variable's value and whether it is set.
type Lookup func(name string) (string, bool)

// EnvLookup looks names up in "KEY=value" entries (the last one wins, as
// a later ENV replaces an earlier one).
func EnvLookup(env []string) Lookup {
	return func(name string) (string, bool) {
		v, ok := "", false
		for _, e := range env {
			if k, val, _ := strings.Cut(e, "="); k == name {
				v, ok = val, true
			}
		}
		return v, ok
	}
}

// Lex reads a Dockerfile's words as buildkit's shell.Lex does: quotes
// removed, the escape character (\ unless the Dockerfile's escape
// directive says `) escaping the next character, and variables replaced:
// $NAME, ${NAME}, and the shell's ${NAME:-word}, ${NAME-word},
// ${NAME:+word}, ${NAME+word}, ${NAME:?message}, ${NAME?message},
// ${NAME#pattern}, ${NAME##pattern}, ${NAME%pattern}, ${NAME%%pattern},
// ${NAME/pattern/string} and ${NAME//pattern/string}.
// Inside double quotes the escape character escapes only ", $ and itself;
// inside single quotes nothing is replaced.
type Lex struct {
	Escape rune
}

// ProcessWord is word with quotes, escapes and variables processed, as
// one word (blanks kept).
func (l Lex) ProcessWord(word string, env Lookup) (string, error) {
	w, err := l.process(word, env, false)
	if err != nil || len(w) == 0 {
		return "", err
	}
	return w[0], nil
}

// ProcessWords is word split into words at blanks outside quotes, after
// variables are replaced (a variable's value with blanks, unquoted, is
// several words: EXPOSE $PORTS).
func (l Lex) ProcessWords(word string, env Lookup) ([]string, error) {
	return l.process(word, env, true)
}

type lexer struct {
	Lex
	src   []rune
	pos   int
	env   Lookup
	split bool
	words []string
	cur   strings.Builder
	in    bool // cur holds a word (maybe empty: "")
	raw   bool // escapes kept as written (a pattern's)
}

func (l Lex) process(word string, env Lookup, split bool) ([]string, error) {
	if l.Escape == 0 {
		l.Escape = '\\'
	}
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	x := &lexer{Lex: l, src: []rune(word), env: env, split: split}
	if err := x.run(0); err != nil {
		return nil, err
	}
	if x.in || !split {
		x.words = append(x.words, x.cur.String())
	}
	return x.words, nil
}

// run reads until the end, or until stop (the "}" that ends a
// ${NAME:-word}'s word) outside quotes.
func (x *lexer) run(stop rune) error {
	for x.pos < len(x.src) {
		ch := x.src[x.pos]
		switch {
		case stop != 0 && ch == stop:
			return nil
		case x.split && (ch == ' ' || ch == '\t'):
			x.pos++
			x.endWord()
		case ch == x.Escape:
			x.pos++
			if x.pos < len(x.src) {
				if x.raw {
					x.cur.WriteRune(ch)
				}
				x.cur.WriteRune(x.src[x.pos])
				x.pos++
			}
			x.in = true
		case ch == '\'':
			if err := x.single(); err != nil {
				return err
			}
		case ch == '"':
			if err := x.double(); err != nil {
				return err
			}
		case ch == '$':
			v, err := x.variable()
			if err != nil {
				return err
			}
			if x.split {
				// Unquoted: the value's blanks separate words.
				for _, r := range v {
					if isBlank(r) {
						x.endWord()
						continue
					}
					x.cur.WriteRune(r)
					x.in = true
				}
				continue
			}
			x.cur.WriteString(v)
			x.in = true
		default:
			x.cur.WriteRune(ch)
			x.pos++
			x.in = true
		}
	}
	if stop != 0 {
		return fmt.Errorf("syntax error: missing '}'")
	}
	return nil
}

func isBlank(r rune) bool { return r == ' ' || r == '\t' }

func (x *lexer) endWord() {
	if x.in {
		x.words = append(x.words, x.cur.String())
		x.cur.Reset()
		x.in = false
	}
}

func (x *lexer) single() error {
	x.pos++ // the quote
	x.in = true
	for x.pos < len(x.src) {
		ch := x.src[x.pos]
		x.pos++
		if ch == '\'' {
			return nil
		}
		x.cur.WriteRune(ch)
	}
	return fmt.Errorf("unexpected end of statement while looking for matching single-quote")
}

func (x *lexer) double() error {
	x.pos++
	x.in = true
	for x.pos < len(x.src) {
		ch := x.src[x.pos]
		switch {
		case ch == '"':
			x.pos++
			return nil
		case ch == '$':
			v, err := x.variable()
			if err != nil {
				return err
			}
			x.cur.WriteString(v)
			continue
		case ch == x.Escape && x.pos+1 < len(x.src):
			if n := x.src[x.pos+1]; n == '"' || n == '$' || n == x.Escape {
				x.pos++
				ch = n
			}
		}
		x.cur.WriteRune(ch)
		x.pos++
	}
	return fmt.Errorf("unexpected end of statement while looking for matching double-quote")
}

// variable reads a $ and what follows it and returns its value: a lone $
// (not followed by a name) is itself.
func (x *lexer) variable() (string, error) {
	x.pos++ // $
	if x.pos >= len(x.src) {
		return "$", nil
	}
	if x.src[x.pos] != '{' {
		name := x.name()
		if name == "" {
			return "$", nil
		}
		v, _ := x.env(name)
		return v, nil
	}
	x.pos++ // {
	if x.pos >= len(x.src) {
		return "", fmt.Errorf("syntax error: missing '}'")
	}
	if c := x.src[x.pos]; c == '{' || c == '}' || c == ':' {
		return "", fmt.Errorf("syntax error: bad substitution")
	}
	name := x.name()
	if x.pos >= len(x.src) {
		return "", fmt.Errorf("syntax error: missing '}'")
	}
	v, set := x.env(name)
	op := x.src[x.pos]
	x.pos++
	mod := string(op)
	colon := op == ':'
	if colon {
		if x.pos >= len(x.src) {
			return "", fmt.Errorf("syntax error: missing '}'")
		}
		op = x.src[x.pos]
		x.pos++
		mod += string(op)
	}
	switch {
	case op == '}' && !colon:
		return v, nil
	case op == '/' && !colon:
		all := x.pos < len(x.src) && x.src[x.pos] == '/'
		if all {
			x.pos++
		}
		pattern, err := x.nested('/', true)
		if err != nil {
			return "", fmt.Errorf("syntax error: missing '/' in ${}")
		}
		repl, err := x.nested('}', true)
		if err != nil {
			return "", err
		}
		re, err := globRegexp(globTokens(pattern, x.Escape), true, false)
		if err != nil {
			return "", fmt.Errorf("invalid pattern (%s) in substitution: %v", pattern, err)
		}
		if all {
			return re.ReplaceAllLiteralString(v, repl), nil
		}
		if loc := re.FindStringIndex(v); loc != nil {
			return v[:loc[0]] + repl + v[loc[1]:], nil
		}
		return v, nil
	case (op == '#' || op == '%') && !colon:
		word, err := x.nested('}', true)
		if err != nil {
			return "", err
		}
		greedy := strings.HasPrefix(word, string(op))
		if greedy {
			word = word[1:]
		}
		out, err := trimMatch(v, word, x.Escape, op == '#', greedy)
		if err != nil {
			return "", fmt.Errorf("invalid pattern (%s) in substitution: %v", word, err)
		}
		return out, nil
	case op != '-' && op != '+' && op != '?':
		return "", fmt.Errorf("unsupported modifier (%s) in substitution", mod)
	}
	word, err := x.nested('}', false)
	if err != nil {
		return "", err
	}
	given := set && (!colon || v != "")
	switch op {
	case '-':
		if !given {
			return word, nil
		}
	case '+':
		if given {
			return word, nil
		}
		return "", nil
	case '?':
		if !given {
			if word == "" {
				word = "is not allowed to be unset"
				if set {
					word = "is not allowed to be empty"
				}
			}
			return "", fmt.Errorf("%s: %s", name, word)
		}
	}
	return v, nil
}

// trimMatch removes from v the shortest (or, greedy, longest) prefix
// (or suffix) that pattern matches: ${V#p}, ${V##p}, ${V%p}, ${V%%p}. As
// buildkit's: one match of the pattern anchored at the start, its stars
// lazy for the shortest; a suffix is a prefix of the reversed value by
// the reversed pattern. One pass: a long value costs no more than its
// length.
func trimMatch(v string, pattern string, escape rune, prefix, greedy bool) (string, error) {
	toks := globTokens(pattern, escape)
	rv := []rune(v)
	if !prefix {
		slices.Reverse(toks)
		slices.Reverse(rv)
	}
	re, err := globRegexp(toks, greedy, true)
	if err != nil {
		return "", err
	}
	loc := re.FindStringIndex(string(rv))
	if loc == nil {
		return v, nil
	}
	rest := []rune(string(rv)[loc[1]:])
	if !prefix {
		slices.Reverse(rest)
	}
	return string(rest), nil
}

// globTokens splits a shell pattern into its parts as regular
// expressions: "*" any run, "?" one character, anything else (brackets
// too, as buildkit's lexer takes them) itself, the escape character
// quoting the next.
func globTokens(p string, escape rune) []string {
	var toks []string
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch ch := rs[i]; {
		case ch == escape && i+1 < len(rs):
			i++
			toks = append(toks, regexp.QuoteMeta(string(rs[i])))
		case ch == '*':
			toks = append(toks, "*")
		case ch == '?':
			toks = append(toks, "(?s:.)")
		default:
			toks = append(toks, regexp.QuoteMeta(string(ch)))
		}
	}
	return toks
}

// globRegexp joins pattern parts into a regular expression: stars greedy
// or lazy, anchored at the start or not.
func globRegexp(toks []string, greedy, anchored bool) (*regexp.Regexp, error) {
	var b strings.Builder
	if anchored {
		b.WriteString("^")
	}
	for _, t := range toks {
		switch {
		case t == "*" && greedy:
			b.WriteString("(?s:.*)")
		case t == "*":
			b.WriteString("(?s:.*?)")
		default:
			b.WriteString(t)
		}
	}
	return regexp.Compile(b.String())
}

// nested reads the word of a ${NAME:-word} up to stop ("}", or the "/"
// of a replacement's pattern), processed as one word; raw keeps the
// escape characters, for a pattern.
func (x *lexer) nested(stop rune, raw bool) (string, error) {
	sub := &lexer{Lex: x.Lex, src: x.src, pos: x.pos, env: x.env, raw: raw}
	if err := sub.run(stop); err != nil {
		return "", err
	}
	x.pos = sub.pos + 1 // past the stop
	return sub.cur.String(), nil
}

// name reads a variable name: letters, digits and _ not starting with a
// digit; digits alone are a positional parameter and one of the shell's
// special parameters ($$, $?, …) is itself, both always empty here.
func (x *lexer) name() string {
	start := x.pos
	if x.pos < len(x.src) && unicode.IsDigit(x.src[x.pos]) {
		for x.pos < len(x.src) && unicode.IsDigit(x.src[x.pos]) {
			x.pos++
		}
		return string(x.src[start:x.pos])
	}
	if x.pos < len(x.src) && strings.ContainsRune("@*#?-$!0", x.src[x.pos]) {
		x.pos++
		return string(x.src[start:x.pos])
	}
	for x.pos < len(x.src) {
		ch := x.src[x.pos]
		if ch != '_' && !unicode.IsLetter(ch) && !unicode.IsDigit(ch) {
			break
		}
		x.pos++
	}
	return string(x.src[start:x.pos])
}

// SplitRaw splits s into words at blanks outside quotes (and outside a
// ${…}), keeping the
// quotes and escapes for ProcessWord (buildkit's parseWords, which ENV,
// LABEL and the like split their arguments with before expanding them).
func SplitRaw(s string, escape rune) []string {
	if escape == 0 {
		escape = '\\'
	}
	var out []string
	var cur strings.Builder
	var quote rune
	in, braces := false, 0
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		ch := rs[i]
		switch {
		case quote != '\'' && ch == '$' && i+1 < len(rs) && rs[i+1] == '{':
			braces++
		case braces > 0 && ch == '}':
			braces--
		case quote == 0 && braces == 0 && isBlank(ch):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
			continue
		case ch == escape && i+1 < len(rs) && quote != '\'':
			cur.WriteRune(ch)
			i++
			ch = rs[i]
		case quote == 0 && (ch == '"' || ch == '\''):
			quote = ch
		case ch == quote:
			quote = 0
		}
		cur.WriteRune(ch)
		in = true
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}
