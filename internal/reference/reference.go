// Package reference is docker's image reference grammar as berth needs
// it: a repository name with an optional tag (berth keeps no digests),
// checked with the rules and the words of distribution/reference's
// ParseNormalizedNamed, and kept in the familiar form docker prints
// ("busybox:latest", not "docker.io/library/busybox:latest"). The daemon
// (import, load, tag, image lookups) and the CLI (which checks a name
// before it uploads anything, as the docker CLI does) share it.
package reference

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// DefaultTag is the tag a reference without one means.
const DefaultTag = "latest"

// nameMax is distribution/reference's NameTotalLengthMax, which counts
// the path, a Docker Hub name with its "library/" (not the registry host).
const nameMax = 255

var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainRE    = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$`)
	tagRE       = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	hexRE       = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// The words distribution/reference uses; the docker CLI prints them as
// they are.
var (
	errFormat    = errors.New("invalid reference format")
	errTagFormat = errors.New("invalid tag format")
)

// SplitTag splits "name:tag" at the last colon after the last slash, so
// that a registry port ("localhost:5000/app") is not taken for a tag. tag
// is "" when ref names none.
func SplitTag(ref string) (name, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// HasTag says whether ref names its tag ("name:tag").
func HasTag(ref string) bool {
	_, tag := SplitTag(ref)
	return tag != ""
}

// Parse checks ref as the docker CLI does before it sends a name (docker
// import, docker tag) and returns it as berth keeps tags: the familiar
// "name:tag", with DefaultTag when ref names none. Errors are
// errdefs.Invalid, in distribution/reference's words. A digest is
// refused: berth's images are imported, never pulled, and have none.
func Parse(ref string) (string, error) {
	name, tag, err := parse(ref)
	if err != nil {
		return "", errdefs.Invalid("%v", err)
	}
	if tag == "" {
		tag = DefaultTag
	}
	return name + ":" + tag, nil
}

// WithTag is moby's RepoTagReference for the repo and tag parameters of
// an import or a tag request: "" for an empty repo (an untagged image),
// else repo with tag in place of the one it names, if any.
func WithTag(repo, tag string) (string, error) {
	if repo == "" {
		if tag != "" {
			return "", errdefs.Invalid("a tag (%q) needs a repository name", tag)
		}
		return "", nil
	}
	name, own, err := parse(repo)
	if err != nil {
		return "", errdefs.Invalid("%v", err)
	}
	switch {
	case tag == "":
		tag = own
	case !tagRE.MatchString(tag):
		return "", errdefs.Invalid("%v", errTagFormat)
	}
	if tag == "" {
		tag = DefaultTag
	}
	return name + ":" + tag, nil
}

// Normalize is ref as the store keeps tags ("name:tag"), or ref itself
// when it is not a name (an ID).
func Normalize(ref string) string {
	if n, err := Parse(ref); err == nil {
		return n
	}
	return ref
}

// Repository is ref's repository as the store names it, without its tag.
func Repository(ref string) string {
	name, _ := SplitTag(Normalize(ref))
	return name
}

// FullName is ref as distribution/reference's String() of its
// normalized form ("docker.io/library/busybox:latest"): what an OCI
// layout's io.containerd.image.name annotation holds.
func FullName(ref string) string {
	name, tag := SplitTag(Normalize(ref))
	domain, rest := splitDomain(name)
	if tag == "" {
		return domain + "/" + rest
	}
	return domain + "/" + rest + ":" + tag
}

// parse is ParseNormalizedNamed with the name made familiar again: the
// repository (without the default registry's prefixes) and the tag ref
// names ("" if none).
func parse(ref string) (name, tag string, err error) {
	if hexRE.MatchString(ref) {
		return "", "", fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", ref)
	}
	if strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("%w: digest references are not supported by berth", errFormat)
	}
	domain, remainder := splitDomain(ref)
	remote, _, _ := strings.Cut(remainder, ":")
	if strings.ToLower(remote) != remote {
		return "", "", fmt.Errorf("%w: repository name (%s) must be lowercase", errFormat, remote)
	}
	path, tag := SplitTag(remainder)
	if strings.HasSuffix(remainder, ":") || (tag != "" && !tagRE.MatchString(tag)) || !domainRE.MatchString(domain) {
		return "", "", errFormat
	}
	for _, c := range strings.Split(path, "/") {
		if !componentRE.MatchString(c) {
			return "", "", errFormat
		}
	}
	if len(path) > nameMax {
		return "", "", fmt.Errorf("%w: repository name must not be more than %d characters", errFormat, nameMax)
	}
	return familiar(domain, path), tag, nil
}

// splitDomain is distribution/reference's splitDockerDomain: the first
// component is a registry host when it holds a "." or a ":", is
// "localhost", or has an upper-case letter; else the name is Docker Hub's,
// and a single component is an official image under "library/".
func splitDomain(name string) (domain, remainder string) {
	i := strings.IndexRune(name, '/')
	if i == -1 || (!strings.ContainsAny(name[:i], ".:") && name[:i] != "localhost" && strings.ToLower(name[:i]) == name[:i]) {
		domain, remainder = "docker.io", name
	} else {
		domain, remainder = name[:i], name[i+1:]
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.ContainsRune(remainder, '/') {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

// familiar is FamiliarName: Docker Hub's names without "docker.io/", and
// official images without "library/".
func familiar(domain, path string) string {
	if domain != "docker.io" {
		return domain + "/" + path
	}
	if rest, ok := strings.CutPrefix(path, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return path
}
