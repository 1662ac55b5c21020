package image

import (
	"regexp"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// DefaultTag is the tag a reference without one means, as in docker.
const DefaultTag = "latest"

// The grammar of docker's reference package, reduced to what import needs:
// an optional registry host (with a dot, a port or "localhost"), then
// lower-case path components joined by "/", then an optional tag.
var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainRE    = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	hexRE       = regexp.MustCompile(`^[a-f0-9]{1,64}$`)
)

// splitTag splits "name:tag" at the last colon after the last slash, so that
// a registry port ("localhost:5000/app") is not mistaken for a tag.
func splitTag(ref string) (name, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// validName reports whether name is a repository name docker would accept.
func validName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 && isDomain(parts[0]) {
		parts = parts[1:]
	}
	for _, p := range parts {
		if !componentRE.MatchString(p) {
			return false
		}
	}
	return true
}

func isDomain(s string) bool {
	return (strings.ContainsAny(s, ".:") || s == "localhost") && domainRE.MatchString(s)
}

// familiar drops the Docker Hub prefixes, so "docker.io/library/busybox" and
// "busybox" name the same repository, as docker prints it.
func familiar(name string) string {
	for _, p := range []string{"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			name = rest
			break
		}
	}
	if rest, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(rest, "/") {
		name = rest
	}
	return name
}

// parseTagged turns what the user typed into "name:tag". It fails with
// errdefs.Invalid for what docker calls an invalid reference format.
func parseTagged(ref string) (string, error) {
	if strings.Contains(ref, "@") {
		return "", errdefs.Invalid("invalid reference format: digest references are not supported: %q", ref)
	}
	name, tag := splitTag(ref)
	if tag == "" {
		if strings.HasSuffix(ref, ":") {
			return "", errdefs.Invalid("invalid reference format: %q", ref)
		}
		tag = DefaultTag
	}
	if !validName(name) {
		if strings.ToLower(name) != name && validName(strings.ToLower(name)) {
			return "", errdefs.Invalid("invalid reference format: repository name (%s) must be lowercase", name)
		}
		return "", errdefs.Invalid("invalid reference format: %q", ref)
	}
	if len(name) == 64 && hexRE.MatchString(name) {
		return "", errdefs.Invalid("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", name)
	}
	if !tagRE.MatchString(tag) {
		return "", errdefs.Invalid("invalid reference format: bad tag %q", tag)
	}
	return familiar(name) + ":" + tag, nil
}

// importTag is the tag an import records: "" for an untagged import, else
// repo (which may carry its own tag when tag is empty) with tag.
func importTag(repo, tag string) (string, error) {
	if repo == "" {
		if tag != "" {
			return "", errdefs.Invalid("a tag (%q) needs a repository name", tag)
		}
		return "", nil
	}
	if tag != "" {
		if _, t := splitTag(repo); t != "" {
			return "", errdefs.Invalid("invalid reference format: %q already has a tag, and tag %q was given too", repo, tag)
		}
		repo += ":" + tag
	}
	return parseTagged(repo)
}

// Normalize is ref as the store keeps tags ("name:tag"), or ref itself
// when it is not a name (an ID).
func Normalize(ref string) string {
	if n, err := parseTagged(ref); err == nil {
		return n
	}
	return ref
}

// HasTag says whether ref names its tag ("name:tag").
func HasTag(ref string) bool {
	_, tag := splitTag(ref)
	return tag != ""
}

// Repository is ref's repository as the store names it, without its tag.
func Repository(ref string) string {
	name, _ := splitTag(Normalize(ref))
	return name
}
