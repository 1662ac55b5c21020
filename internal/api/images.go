package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/storage"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
	"github.com/berth-net/berth/internal/runtime/image"
)

// errPullUnsupported answers docker pull, and docker run of an image that
// is not there (the CLI pulls after a 404 from create). NotFound is what a
// registry miss is in Docker, so scripts that check for it keep working.
var errPullUnsupported = errdefs.NotFound("pull is not supported by berth: import a root filesystem with `docker import`")

// createImage is docker import (fromSrc=-, the tar is the body) and docker
// pull (fromImage=), which berth refuses clearly.
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	switch {
	case q.Get("fromImage") != "":
		if p := q.Get("platform"); p != "" {
			// docker run --platform of an image that is here for the
			// host's platform only: the create's 404 made the CLI pull.
			ref := q.Get("fromImage")
			if t := q.Get("tag"); t != "" {
				ref += ":" + t
			}
			if err := s.checkPlatform(r.Context(), ref, p); err != nil {
				return errdefs.NotFound("%s; berth runs images on the host's platform and cannot pull another", err)
			}
		}
		return errPullUnsupported
	case q.Get("fromSrc") == "":
		return errdefs.Invalid("fromSrc or fromImage is required")
	case q.Get("fromSrc") != "-":
		return errdefs.Invalid("importing from a URL is not supported by berth: download %s and import the file", q.Get("fromSrc"))
	}
	// berth runs every image on the host's platform and keeps none of
	// another's: an import labelled for another is refused, not
	// labelled the host's behind the user's back.
	if v := q.Get("platform"); v != "" {
		p, err := parsePlatform(v)
		if err != nil {
			return err
		}
		if !hostPlatform(p) {
			return errdefs.Invalid("berth imports images for the host's platform (linux/%s) only, not %s: it runs every image there", goarch(), p)
		}
	}
	// Checked before the body is read, as moby's RepoTagReference.
	repo, tag := q.Get("repo"), q.Get("tag")
	if _, err := reference.WithTag(repo, tag); err != nil {
		return err
	}
	comment := q.Get("message")
	if comment == "" {
		comment = "Imported from -" // moby's postImagesCreate: "Imported from " + fromSrc
	}
	// The body is the tar stream itself: not bounded, not JSON.
	img, err := s.backend.ImportImage(r.Context(), r.Body, repo, tag, comment, q["changes"])
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return writeJSONMessage(w, map[string]string{"status": img.ID})
}

// loadImages is docker load: the archive docker save writes, in the body.
// As moby's postImagesLoad, the answer is a 200 jsonmessage stream that
// says what was loaded ("Loaded image: name:tag", or the ID of an
// untagged image) or, in it, why not.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	p, ok, err := requestPlatform(r)
	if err != nil {
		return err
	}
	var keep image.PlatformMatch
	if ok && !hostPlatform(p) {
		// berth keeps no image's platform: one of another would be
		// shown, saved and run as the host's.
		return errdefs.Invalid("berth loads images for the host's platform (linux/%s) only, not %s: it runs every image there", goarch(), p)
	}
	if ok {
		// moby's load skips, and says nothing of, each image of the
		// archive whose config is another platform's.
		keep = func(os, arch, variant string) bool {
			if os == "" {
				os = "linux"
			}
			have, err := parsePlatform(os + "/" + arch)
			return err == nil && have.os == p.os && have.arch == p.arch && (p.variant == "" || variant == "" || variant == p.variant)
		}
	}
	loaded, err := s.backend.LoadImages(r.Context(), r.Body, keep)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	var ids strings.Builder
	for _, l := range loaded {
		for i, t := range l.Tags {
			if i < len(l.Replaced) && l.Replaced[i] != "" {
				// moby's setLoadedTag, word for word.
				msg := "The image " + t + " already exists, renaming the old one with ID " + l.Replaced[i] + " to empty string\n"
				if werr := writeJSONMessage(w, map[string]string{"stream": msg}); werr != nil {
					return werr
				}
			}
			if werr := writeJSONMessage(w, map[string]string{"stream": "Loaded image: " + t + "\n"}); werr != nil {
				return werr
			}
		}
		if len(l.Tags) == 0 {
			ids.WriteString("Loaded image ID: " + l.Image.ID + "\n")
		}
	}
	if ids.Len() > 0 {
		if werr := writeJSONMessage(w, map[string]string{"stream": ids.String()}); werr != nil {
			return werr
		}
	}
	if err != nil {
		return writeJSONMessage(w, map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
	}
	return nil
}

// writeJSONMessage writes one line of a jsonmessage stream, terminated as
// moby's streamformatter terminates them.
func writeJSONMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\r', '\n'))
	return err
}

// imageListFilters are moby's acceptedImageFilterTags.
var imageListFilters = map[string]bool{"reference": true, "dangling": true, "label": true, "before": true, "since": true, "until": true}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, imageListFilters)
	if err != nil {
		return err
	}
	span, err := s.imageSpan(r.Context(), args)
	if err != nil {
		return err
	}
	imgs, err := s.backend.Images(r.Context())
	if err != nil {
		return err
	}
	out := []imagetypes.Summary{}
	all, parents := boolValue(r, "all"), map[string]bool{}
	for _, img := range imgs {
		parents[img.Parent] = true
	}
	// dangling=true lists heads alone, with -a too: moby's Heads(), so
	// that an intermediate image (another's parent) is never one.
	danglingOnly, _ := args.GetBoolOrDefault("dangling", false)
	for _, img := range imgs {
		if !span.holds(img.Created) {
			continue
		}
		// An untagged image another was committed from is an
		// intermediate one: shown with -a only, as moby's list.
		if (!all || danglingOnly) && len(img.RepoTags) == 0 && parents[img.ID] {
			continue
		}
		tags, ok, err := imageMatches(img, args)
		if err != nil {
			return err
		}
		if ok {
			sum := imageSummary(img)
			sum.RepoTags = orNone(tags)
			out = append(out, sum)
		}
	}
	// Newest first, as moby sorts them (the ID breaks ties, so that the
	// order is the same from one listing to the next). The backend's list
	// is in that order already; the sort keeps the answer's order the
	// API's own business.
	slices.SortFunc(out, func(a, b imagetypes.Summary) int {
		return cmp.Or(cmp.Compare(b.Created, a.Created), strings.Compare(a.ID, b.ID))
	})
	return writeJSON(w, http.StatusOK, out)
}

// createdSpan is the creation times an image list keeps: after since and
// before before (either zero: no bound).
type createdSpan struct{ since, before time.Time }

func (c createdSpan) holds(t time.Time) bool {
	return (c.before.IsZero() || t.Before(c.before)) && (c.since.IsZero() || t.After(c.since))
}

// imageSpan reads moby's before, until and since filters of docker
// images: before=IMAGE and until=TIMESTAMP keep older images (the
// earliest bound wins), since=IMAGE newer ones (the latest wins).
func (s *Server) imageSpan(ctx context.Context, args filters.Args) (createdSpan, error) {
	var span createdSpan
	created := func(ref string) (time.Time, error) {
		img, err := s.backend.Image(ctx, ref)
		if err != nil {
			return time.Time{}, err
		}
		return img.Created, nil
	}
	for _, ref := range args.Get("before") {
		t, err := created(ref)
		if err != nil {
			return span, err
		}
		if span.before.IsZero() || t.Before(span.before) {
			span.before = t
		}
	}
	for _, v := range args.Get("until") {
		t, err := filterTime(v)
		if err != nil {
			return span, err
		}
		if span.before.IsZero() || t.Before(span.before) {
			span.before = t
		}
	}
	for _, ref := range args.Get("since") {
		t, err := created(ref)
		if err != nil {
			return span, err
		}
		if t.After(span.since) {
			span.since = t
		}
	}
	return span, nil
}

// imageMatches applies docker images filters other than the time ones and
// returns the tags to show: as in moby, a reference filter (a glob on
// "repo" or "repo:tag") also narrows RepoTags to the matching ones, and a
// label filter matches the labels of the image's config.
func imageMatches(img *image.Image, args filters.Args) ([]string, bool, error) {
	if args.Contains("dangling") {
		dangling, err := args.GetBoolOrDefault("dangling", false)
		if err != nil {
			return nil, false, errdefs.WithKind(errdefs.KindInvalid, err)
		}
		if dangling != (len(img.RepoTags) == 0) {
			return nil, false, nil
		}
	}
	if args.Contains("label") && !args.MatchKVList("label", imageLabels(img)) {
		return nil, false, nil
	}
	if !args.Contains("reference") {
		return img.RepoTags, true, nil
	}
	var tags []string
	for _, rt := range img.RepoTags {
		if matchesReference(rt, args.Get("reference")) {
			tags = append(tags, rt)
		}
	}
	return tags, len(tags) > 0, nil
}

// imageLabels are the labels of img's config (LABEL of docker import
// --change, or of a loaded image's config); nil when it has none.
func imageLabels(img *image.Image) map[string]string {
	if img.Config == nil {
		return nil
	}
	return img.Config.Labels
}

func matchesReference(repoTag string, patterns []string) bool {
	repo := repoTag
	if i := strings.LastIndex(repoTag, ":"); i > strings.LastIndex(repoTag, "/") {
		repo = repoTag[:i]
	}
	for _, p := range patterns {
		if m, _ := path.Match(p, repoTag); m {
			return true
		}
		if m, _ := path.Match(p, repo); m {
			return true
		}
	}
	return false
}

func imageSummary(img *image.Image) imagetypes.Summary {
	labels := imageLabels(img)
	if labels == nil {
		labels = map[string]string{}
	}
	return imagetypes.Summary{
		ID:          img.ID,
		ParentID:    img.Parent,
		RepoTags:    orNone(img.RepoTags),
		RepoDigests: []string{},
		Created:     img.Created.Unix(),
		Size:        img.Size,
		SharedSize:  -1,
		Containers:  -1,
		Labels:      labels,
	}
}

// inspectImage serves GET /images/{name}/json; the name may hold "/".
func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request) error {
	if name, ok := strings.CutSuffix(r.PathValue("name"), "/history"); ok && name != "" {
		return s.history(w, r, name)
	}
	if name, ok := strings.CutSuffix(r.PathValue("name"), "/get"); ok && name != "" {
		return s.save(w, r, []string{name})
	}
	name, ok := strings.CutSuffix(r.PathValue("name"), "/json")
	if !ok || name == "" {
		pageNotFound(w, r)
		return nil
	}
	img, err := s.backend.Image(r.Context(), name)
	if err != nil {
		return err
	}
	resp := imageInspect(img)
	// The fields moby still fills for older clients (image_routes.go):
	// Compose v1 reads ContainerConfig to recreate a container, and fails
	// with KeyError without it (an imported image's is empty).
	if v := apiVersion(r.Context()); lessThan(v, "1.45") {
		resp.ContainerConfig = &ctypes.Config{}
		if lessThan(v, "1.44") {
			resp.VirtualSize = resp.Size
		}
	}
	return writeJSON(w, http.StatusOK, resp)
}

func imageInspect(img *image.Image) imagetypes.InspectResponse {
	comment := img.Comment
	if comment == "" && len(img.History) > 0 {
		comment = img.History[len(img.History)-1].Comment // moby's, for a commit's
	}
	return imagetypes.InspectResponse{
		ID:           img.ID,
		RepoTags:     orNone(img.RepoTags),
		RepoDigests:  []string{},
		Parent:       img.Parent,
		Author:       img.Author,
		Comment:      comment,
		Created:      img.Created.UTC().Format(time.RFC3339Nano),
		Config:       imageConfigView(img.Config),
		Architecture: goarch(),
		Os:           "linux",
		Size:         img.Size,
		GraphDriver:  storage.DriverData{Name: graphDriver, Data: map[string]string{}},
		RootFS:       imagetypes.RootFS{Type: "layers", Layers: imageLayers(img)},
		Metadata:     imagetypes.Metadata{LastTagTime: img.LastTagTime},
	}
}

// imageLayers are img's layer digests: none for an image of config
// steps alone on scratch (it has history, and no layer); an image
// recorded before berth kept them (no history either) shows its ID,
// which for an import without changes was its layer's digest.
func imageLayers(img *image.Image) []string {
	if len(img.Layers) > 0 || len(img.History) > 0 {
		return img.Layers
	}
	return []string{img.ID}
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	untagged, deleted, err := s.backend.RemoveImage(r.Context(), r.PathValue("name"), boolValue(r, "force"), boolValue(r, "noprune"))
	if err != nil {
		return err
	}
	out := []imagetypes.DeleteResponse{}
	for _, u := range untagged {
		out = append(out, imagetypes.DeleteResponse{Untagged: u})
	}
	for _, d := range deleted {
		out = append(out, imagetypes.DeleteResponse{Deleted: d})
	}
	return writeJSON(w, http.StatusOK, out)
}

// pruneImages is docker image prune: untagged images no container uses,
// or with dangling=false (-a) every image no container uses, filtered by
// moby's until, label and label! on the labels of the image's config.
func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, map[string]bool{"dangling": true, "label": true, "label!": true, "until": true})
	if err != nil {
		return err
	}
	dangling, err := args.GetBoolOrDefault("dangling", true)
	if err != nil {
		return errdefs.WithKind(errdefs.KindInvalid, err)
	}
	all := !dangling
	until, err := pruneUntil(args)
	if err != nil {
		return err
	}
	removed, reclaimed, err := s.backend.PruneImages(r.Context(), all, func(img *image.Image) bool {
		return pruneMatches(args, until, img.Created, imageLabels(img))
	})
	if err != nil {
		return err
	}
	rep := imagetypes.PruneReport{SpaceReclaimed: uint64(max(reclaimed, 0))}
	for _, rm := range removed { // image by image, as moby's
		rep.ImagesDeleted = append(rep.ImagesDeleted, imagetypes.DeleteResponse{Untagged: rm.Untagged, Deleted: rm.Deleted})
	}
	return writeJSON(w, http.StatusOK, rep)
}

// pruneBuildCache is docker builder prune (and docker system prune's last
// step): berth has no BuildKit cache to remove (a legacy build's cache is
// its intermediate images, which image prune takes).
func pruneBuildCache(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, build.CachePruneReport{})
}

// notFoundPlugin answers the docker inspect fallback chain with moby's
// words: berth has no plugins.
func notFoundPlugin(w http.ResponseWriter, r *http.Request) {
	writeError(w, errdefs.NotFound("plugin %q not found", r.PathValue("name")))
}

// imageConfigView is a loaded image's config as image inspect shows it;
// an imported image's is empty.
func imageConfigView(c *image.Config) *dockerspec.DockerOCIImageConfig {
	out := &dockerspec.DockerOCIImageConfig{}
	if c == nil {
		return out
	}
	out.User, out.Env, out.Entrypoint, out.Cmd = c.User, c.Env, c.Entrypoint, c.Cmd
	out.WorkingDir, out.Labels, out.StopSignal, out.OnBuild = c.WorkingDir, c.Labels, c.StopSignal, c.OnBuild
	out.Shell = c.Shell
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			out.ExposedPorts[p] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		out.Volumes = map[string]struct{}{}
		for _, v := range c.Volumes {
			out.Volumes[v] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	return out
}

// postImage serves POST /images/NAME/tag (docker tag: 201, as moby's
// postImagesTag) and refuses /push by name; image names have slashes, so
// the action is the last element.
func (s *Server) postImage(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if ref, ok := strings.CutSuffix(name, "/tag"); ok && ref != "" {
		q := r.URL.Query()
		if err := s.backend.TagImage(r.Context(), ref, q.Get("repo"), q.Get("tag")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	if ref, ok := strings.CutSuffix(name, "/push"); ok && ref != "" {
		return notImplemented("docker push")(w, r)
	}
	pageNotFound(w, r)
	return nil
}

// saveImages is docker save of several images (GET /images/get?names=…);
// GET /images/NAME/get saves one (inspectImage).
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) error {
	return s.save(w, r, r.URL.Query()["names"])
}

// save writes the archive of refs, a tar stream; an error before any of
// it is written is answered as one (a missing image is a 404), after it
// the stream is cut (sendStream's rule).
func (s *Server) save(w http.ResponseWriter, r *http.Request, refs []string) error {
	p, ok, err := requestPlatform(r)
	if err != nil {
		return err
	}
	if ok && !hostPlatform(p) {
		// Every image here is the host's platform (moby's
		// takeLayerReference, word for word).
		return errors.New("no suitable export target found for platform " + p.String())
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.backend.SaveImages(r.Context(), refs, w); err != nil {
		if rw, ok := w.(*responseWriter); ok && rw.started {
			s.log.Warn("api stream cut short", "method", r.Method, "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
		w.Header().Del("Content-Type")
		return err
	}
	return nil
}
