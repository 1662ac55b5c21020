package api

import (
	"maps"
	"net/http"
	"slices"

	ctypes "github.com/docker/docker/api/types/container"
	imagetypes "github.com/docker/docker/api/types/image"

	"github.com/berth-net/berth/internal/reference"
	"github.com/berth-net/berth/internal/runtime/image"
)

// CommitOptions are docker commit's: the image's config as the request
// gives it (nil: the container's), Dockerfile instructions to apply to
// it, the history entry's author and comment, the tag, and whether to
// pause a running container meanwhile.
type CommitOptions struct {
	Config          *image.Config
	Changes         []string
	Author, Comment string
	Repo, Tag       string
	Pause           bool
}

// commit is docker commit (POST /commit), as moby's postCommit: pause
// unless pause says otherwise, the repository and tag
// checked before anything is done, an optional config in the body (the
// docker CLI sends null), 201 with the new image's ID.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pause := q.Get("pause") == "" || boolValue(r, "pause") // from API 1.13, which is older than berth's oldest
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		tag = "" // moby's RepoTagReference: no repository, no tag
	}
	if _, err := reference.WithTag(repo, tag); err != nil {
		return err
	}
	var body *ctypes.Config
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	id, err := s.backend.CommitContainer(r.Context(), q.Get("container"), CommitOptions{
		Config: commitConfigOf(body), Changes: q["changes"], Author: q.Get("author"), Comment: q.Get("comment"),
		Repo: repo, Tag: tag, Pause: pause,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ctypes.CommitResponse{ID: id})
}

// commitConfigOf is the part of a commit request's config an image keeps.
func commitConfigOf(c *ctypes.Config) *image.Config {
	if c == nil {
		return nil
	}
	out := &image.Config{User: c.User, Env: slices.Clone(c.Env), Cmd: slices.Clone(c.Cmd), Entrypoint: slices.Clone(c.Entrypoint),
		WorkingDir: c.WorkingDir, Labels: maps.Clone(c.Labels), StopSignal: c.StopSignal, Healthcheck: healthConfigOf(c.Healthcheck),
		OnBuild: slices.Clone(c.OnBuild)}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, string(p))
	}
	slices.Sort(out.ExposedPorts)
	out.Volumes = slices.Sorted(maps.Keys(c.Volumes))
	return out
}

// history is docker history, as moby's ImageHistory: the image's history
// entries, newest first, with the size of the layer each made; the
// newest carries the image's ID and tags, the one before its parent's,
// and so on while a parent is here; the rest are "<missing>".
func (s *Server) history(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := s.backend.Image(r.Context(), name)
	if err != nil {
		return err
	}
	items := img.HistoryItems()
	out := make([]imagetypes.HistoryResponseItem, len(items))
	for i, it := range items {
		out[i] = imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: it.CreatedBy, Comment: it.Comment, Size: it.Size}
		if !it.Created.IsZero() { // an entry without a time (OCI allows it) is moby's 0
			out[i].Created = it.Created.Unix()
		}
	}
	for i, cur := 0, img; i < len(out); i++ {
		out[i].ID = cur.ID
		if len(cur.RepoTags) > 0 {
			out[i].Tags = slices.Clone(cur.RepoTags)
		}
		if cur.Parent == "" {
			break
		}
		if cur, err = s.backend.Image(r.Context(), cur.Parent); err != nil {
			break
		}
	}
	return writeJSON(w, http.StatusOK, out)
}
