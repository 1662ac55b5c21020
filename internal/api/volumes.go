package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-net/berth/internal/errdefs"
)

// volumeView is a volume as moby's API shows it (the local driver's).
func volumeView(v VolumeInfo) *volume.Volume {
	out := &volume.Volume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: v.Labels, Options: map[string]string{}}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if v.Size >= 0 {
		out.UsageData = &volume.UsageData{Size: v.Size, RefCount: int64(v.RefCount)}
	}
	return out
}

// createVolume is docker volume create (POST /volumes/create): 201 and the
// volume; a name that exists gives that volume, as moby's local driver.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateOptions
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	v, err := s.backend.CreateVolume(r.Context(), req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, volumeView(v))
}

// inspectVolume is docker volume inspect.
func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := s.backend.Volume(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volumeView(v))
}

// volumeMatches is moby's volume list filter.
func volumeMatches(args filters.Args, v VolumeInfo) bool {
	if args.Contains("name") && !args.Match("name", v.Name) {
		return false
	}
	if args.Contains("driver") && !args.ExactMatch("driver", "local") {
		return false
	}
	if !args.MatchKVList("label", v.Labels) {
		return false
	}
	if args.Contains("dangling") {
		want, _ := boolFilter(args, "dangling") // checked by listVolumes
		return (v.RefCount == 0) == want
	}
	return true
}

// boolFilter is a boolean filter's value, as moby reads it
// (strconv.ParseBool); more than one, or one that is not a boolean, is
// refused in moby's words.
func boolFilter(args filters.Args, key string) (bool, error) {
	vals := args.Get(key)
	if len(vals) == 0 {
		return false, nil
	}
	b, err := strconv.ParseBool(vals[0])
	if len(vals) > 1 || err != nil {
		return false, errdefs.Invalid("invalid filter '%s=%s'", key, strings.Join(vals, ","))
	}
	return b, nil
}

// listVolumes is docker volume ls, and Compose's look for a project's
// volumes, with moby's filters.
func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, map[string]bool{"dangling": true, "driver": true, "label": true, "name": true})
	if err != nil {
		return err
	}
	if _, err := boolFilter(args, "dangling"); err != nil {
		return err
	}
	vs, err := s.backend.Volumes(r.Context(), false)
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: []*volume.Volume{}} // Warnings null, as moby's
	for _, v := range vs {
		if volumeMatches(args, v) {
			out.Volumes = append(out.Volumes, volumeView(v))
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// removeVolume is docker volume rm: 204, a 409 while a container uses it.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.RemoveVolume(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes is docker volume prune: the volumes no container uses,
// the anonymous ones only unless all=true (API 1.42+, Docker 23+), by
// label.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, map[string]bool{"label": true, "label!": true, "all": true})
	if err != nil {
		return err
	}
	var all bool
	switch vals := args.Get("all"); {
	case len(vals) > 1:
		slices.Sort(vals)
		return errdefs.Invalid("invalid filter 'all=%v': only one value is expected", vals) // moby's withPrune
	case len(vals) == 1:
		if all, err = strconv.ParseBool(vals[0]); err != nil {
			return errdefs.Invalid("invalid filter 'all': %v", err)
		}
	}
	// Before API 1.42 prune took named volumes too, and moby keeps that
	// for older clients.
	all = all || lessThan(apiVersion(r.Context()), "1.42")
	deleted, freed, err := s.backend.PruneVolumes(r.Context(), all, func(v VolumeInfo) bool {
		return pruneMatches(args, time.Time{}, v.CreatedAt, v.Labels)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: deleted, SpaceReclaimed: freed})
}
