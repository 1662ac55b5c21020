package build

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// ignorePattern is one line of a .dockerignore.
type ignorePattern struct {
	re      *regexp.Regexp
	exclude bool // "!pattern": what it matches is kept
}

// readIgnore reads the .dockerignore at p, as moby's ignorefile.ReadAll:
// comments and blank lines dropped, "!" negates, patterns cleaned and
// taken from the context's root.
func readIgnore(p string) ([]ignorePattern, error) {
	b, err := readRegular(p)
	if err != nil {
		return nil, err
	}
	var out []ignorePattern
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ip := ignorePattern{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			ip.exclude, line = true, strings.TrimSpace(rest)
		}
		line = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(line)), "/")
		if line == "" {
			continue
		}
		re, err := regexp.Compile(patternRegexp(line))
		if err != nil {
			continue // a bad pattern matches nothing
		}
		ip.re = re
		out = append(out, ip)
	}
	return out, nil
}

// patternRegexp is a .dockerignore pattern as a regular expression, as
// moby's patternmatcher reads it: "**" any number of directories, "*"
// and "?" within one name, character classes as they are, "\" escaping.
func patternRegexp(p string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; {
		case ch == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				b.WriteString("(.*/)?")
			} else {
				b.WriteString(".*")
			}
		case ch == '*':
			b.WriteString("[^/]*")
		case ch == '?':
			b.WriteString("[^/]")
		case ch == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			b.WriteString(p[i : i+end+1])
			i += end
		case ch == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// ignored says whether the patterns exclude file (or a directory it is
// in): the last pattern that matches decides.
func ignored(file string, patterns []ignorePattern) bool {
	file = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(file)), "/")
	out := false
	for _, p := range patterns {
		matched := false
		for f := file; f != "." && f != ""; f = path.Dir(f) {
			if p.re.MatchString(f) {
				matched = true
				break
			}
		}
		if matched {
			out = !p.exclude
		}
	}
	return out
}

// removeIgnoredBuildFiles removes the Dockerfile and .dockerignore from
// the context once read, when its .dockerignore excludes them, as moby's
// removeDockerfile: the docker CLI always sends both (the builder needs
// them), so a COPY . must not take what the user excluded.
func removeIgnoredBuildFiles(dir, dockerfile string) error {
	rel, err := inScope(dir, ".dockerignore", true) // a link in the context stays in it
	if err != nil {
		return err
	}
	patterns, err := readIgnore(filepath.Join(dir, rel))
	if err != nil {
		return nil // none (or not a file): nothing is excluded
	}
	for _, f := range []string{".dockerignore", dockerfile} {
		if !ignored(f, patterns) {
			continue
		}
		rel, err = inScope(dir, f, false)
		if err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(dir, rel)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
