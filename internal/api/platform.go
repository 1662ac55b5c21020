package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// checkPlatform refuses, as moby's GetImage does, to create a container
// of an image whose platform is not the one asked for (docker run
// --platform): berth runs its images as they are, on the host's
// architecture, so asking for another must not be ignored silently.
// A missing image is left to the create, which says so.
func (s *Server) checkPlatform(ctx context.Context, ref, want string) error {
	p, err := parsePlatform(want)
	if err != nil {
		return err
	}
	if _, err := s.backend.Image(ctx, ref); err != nil {
		return nil
	}
	// The variant is not compared: berth does not know an image's (an
	// arm/v7 image runs on an arm/v8 host), nor the host's own.
	have := platform{os: "linux", arch: goarch()}
	if p.os == have.os && p.arch == have.arch {
		return nil
	}
	return errdefs.NotFound("image with reference %s was found but its platform (%s) does not match the specified platform (%s)", ref, have, p)
}

// hostPlatform reports whether p is the host's (the variant is not
// compared, as checkPlatform does not).
func hostPlatform(p platform) bool { return p.os == "linux" && p.arch == goarch() }

// requestPlatform reads the platform of docker save and load (API 1.48:
// a JSON OCI platform, one at most, as moby's image routes take it);
// ok is false without one.
func requestPlatform(r *http.Request) (p platform, ok bool, err error) {
	if versionBefore(r, "1.48") {
		return platform{}, false, nil // older clients' field is ignored, as moby ignores it
	}
	values := r.URL.Query()["platform"]
	switch {
	case len(values) == 0 || values[0] == "":
		return platform{}, false, nil
	case len(values) > 1:
		return platform{}, false, errdefs.Invalid("multiple platform parameters not supported")
	}
	var oci struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal([]byte(values[0]), &oci); err != nil || oci.OS == "" || oci.Architecture == "" {
		return platform{}, false, errdefs.Invalid("failed to parse platform: %q", values[0])
	}
	s := oci.OS + "/" + oci.Architecture
	if oci.Variant != "" {
		s += "/" + oci.Variant
	}
	p, err = parsePlatform(s)
	return p, err == nil, err
}

// platform is an OCI platform: os/arch[/variant].
type platform struct{ os, arch, variant string }

func (p platform) String() string {
	s := p.os + "/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// parsePlatform reads "os[/arch[/variant]]" or a bare architecture, with
// containerd's normal names for the common aliases (x86_64, aarch64).
func parsePlatform(s string) (platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return platform{}, errdefs.Invalid("%q: invalid platform: expected os[/arch[/variant]]", s)
	}
	var p platform
	switch {
	case len(parts) == 1 && (parts[0] == "linux" || parts[0] == "windows" || parts[0] == "darwin" || parts[0] == "freebsd"):
		p = platform{os: parts[0], arch: goarch()}
	case len(parts) == 1:
		p = platform{os: "linux", arch: parts[0]}
	default:
		p = platform{os: parts[0], arch: parts[1]}
		if len(parts) == 3 {
			p.variant = parts[2]
		}
	}
	switch p.arch {
	case "x86_64", "x86-64":
		p.arch = "amd64"
	case "aarch64":
		p.arch = "arm64"
	case "armhf", "armel":
		p.arch = "arm"
	case "i386", "i686":
		p.arch = "386"
	}
	if p.arch == "arm64" && p.variant == "v8" {
		p.variant = "" // arm64's only variant
	}
	return p, nil
}
