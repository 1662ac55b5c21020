package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	timetypes "github.com/docker/docker/api/types/time"
	"github.com/docker/go-connections/nat"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	name, err := containerName(r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	var body ctypes.CreateRequest
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	bcWarnings, err := createBC(&body, apiVersion(r.Context()))
	if err != nil {
		return err
	}
	cfg, err := createConfig(body, apiVersion(r.Context()))
	if err != nil {
		return err
	}
	if p := r.URL.Query().Get("platform"); p != "" && !versionBefore(r, "1.41") {
		if err := s.checkPlatform(r.Context(), body.Image, p); err != nil {
			return err
		}
	}
	c, warnings, err := s.backend.CreateContainer(r.Context(), name, cfg)
	if err != nil {
		return err
	}
	warnings = append(append(createWarnings(body.HostConfig), warnings...), bcWarnings...)
	if body.HostConfig != nil {
		warnings = append(warnings, discardedResources(body.HostConfig.Resources, apiVersion(r.Context()))...)
	}
	return writeJSON(w, http.StatusCreated, ctypes.CreateResponse{ID: c.ID, Warnings: warnings})
}

// createWarnings are moby's warnings for a create that succeeds but will
// not do all it was asked; the docker CLI prints each as "WARNING: ...".
func createWarnings(hc *ctypes.HostConfig) []string {
	warnings := []string{}
	if hc != nil && hc.NetworkMode.IsHost() && len(hc.PortBindings) > 0 {
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	}
	return warnings
}

// containerListFilters are the docker ps filters berth answers.
var containerListFilters = map[string]bool{
	"id": true, "name": true, "status": true, "label": true, "network": true,
	"ancestor": true, "exited": true, "publish": true, "expose": true,
	"before": true, "since": true, "health": true, "is-task": true, "volume": true, "isolation": true,
}

var containerStatuses = []string{
	container.StatusCreated, container.StatusRunning, container.StatusPaused,
	container.StatusRestarting, container.StatusRemoving, container.StatusExited, container.StatusDead,
}

// mountsVolume is moby's volume filter of docker ps: a mount's
// destination, or its volume's name (a bind's host path), is one of the
// filter's values.
func mountsVolume(c *container.Container, args filters.Args) bool {
	for _, m := range c.Config.Mounts {
		if m.Flag { // --tmpfs: not one of the container's mount points
			continue
		}
		if args.ExactMatch("volume", m.Destination) || m.Source != "" && args.ExactMatch("volume", m.Source) {
			return true
		}
	}
	return false
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, containerListFilters)
	if err != nil {
		return err
	}
	if err := args.WalkValues("status", func(v string) error {
		if !slices.Contains(containerStatuses, v) {
			// moby's foldFilter around ValidateContainerState's words.
			return errdefs.Invalid("invalid filter 'status=%s': invalid value for state (%s): must be one of %s", v, v, strings.Join(containerStatuses, ", "))
		}
		return nil
	}); err != nil {
		return err
	}
	if err := args.WalkValues("exited", func(v string) error {
		if _, err := strconv.Atoi(v); err != nil {
			return errdefs.Invalid("invalid filter 'exited=%s': %v", v, err) // moby's foldFilter
		}
		return nil
	}); err != nil {
		return err
	}
	publish, err := portFilter(args, "publish")
	if err != nil {
		return err
	}
	expose, err := portFilter(args, "expose")
	if err != nil {
		return err
	}
	if err := args.WalkValues("health", func(v string) error {
		if err := ctypes.ValidateHealthStatus(ctypes.HealthStatus(v)); err != nil {
			return errdefs.Invalid("invalid filter 'health=%s': %s", v, err)
		}
		return nil
	}); err != nil {
		return err
	}
	isTask, err := args.GetBoolOrDefault("is-task", false)
	if err != nil {
		return errdefs.WithKind(errdefs.KindInvalid, err)
	}
	// before and since name a container: ps lists the ones created before
	// (after) it, stopped ones counted in the walk, as moby's
	// includeContainerInList.
	var before, since string
	for key, id := range map[string]*string{"before": &before, "since": &since} {
		if err := args.WalkValues(key, func(v string) error {
			c, err := s.backend.Container(r.Context(), v)
			if err != nil {
				return err
			}
			*id = c.ID
			return nil
		}); err != nil {
			return err
		}
	}
	limit, _, err := intValue(r, "limit")
	if err != nil {
		return err
	}
	// As in moby, a limit or a status filter looks at stopped containers
	// too (an exited filter does not: docker ps -a -f exited=N).
	all := boolValue(r, "all") || limit > 0 || args.Contains("status")
	ctrs, err := s.backend.Containers(r.Context())
	if err != nil {
		return err
	}
	// Newest first, as docker ps shows them and as -n/--last counts them.
	slices.SortStableFunc(ctrs, func(a, b *container.Container) int { return b.Created.Compare(a.Created) })
	out := []ctypes.Summary{}
	for _, c := range ctrs {
		if limit > 0 && len(out) == limit {
			break
		}
		if before != "" {
			if c.ID == before {
				before = ""
			}
			continue
		}
		if since != "" && c.ID == since {
			break
		}
		// A restarting container is running for ps, as moby's
		// SetRestarting has it (inspect says Running: true too).
		if !all && !c.Running() && c.State.Status != container.StatusRestarting {
			continue
		}
		// berth runs no swarm tasks. (isolation: every Linux container
		// matches, as moby's excludeByIsolation.)
		if !args.ExactMatch("health", healthStatus(c)) || (args.Contains("is-task") && isTask) || args.Contains("volume") && !mountsVolume(c, args) {
			continue
		}
		if !containerMatches(c, args) {
			continue
		}
		links := s.backend.ContainerLinks(r.Context(), c.ID)
		atts := s.backend.ListedAttachments(r.Context(), c)
		if args.Contains("network") && !onNetwork(atts, args) {
			continue
		}
		sum := containerSummary(c, atts, links, s.now())
		if !lessThan(apiVersion(r.Context()), "1.46") {
			sum.HostConfig.Annotations = c.Config.Annotations // moby's, from 1.46
		}
		if (publish != nil || expose != nil) && !hasPort(sum.Ports, publish, expose) {
			continue
		}
		if boolValue(r, "size") {
			if gone, err := s.addSize(r.Context(), &sum); gone {
				continue // removed while we listed
			} else if err != nil {
				return err
			}
		}
		out = append(out, sum)
	}
	return writeJSON(w, http.StatusOK, out)
}

// addSize puts ps -s's SizeRw and SizeRootFs into sum; gone says the
// container was removed meanwhile.
func (s *Server) addSize(ctx context.Context, sum *ctypes.Summary) (gone bool, err error) {
	sum.SizeRw, sum.SizeRootFs, err = s.backend.ContainerSize(ctx, sum.ID)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return true, nil
	}
	return false, err
}

// portFilter reads the publish or expose filter as moby's portOp does:
// "80", "80/udp" or a range "8000-8010/tcp" (tcp when no protocol is
// given), as a set of "port/proto"; nil when the filter is absent.
func portFilter(args filters.Args, key string) (map[string]bool, error) {
	if !args.Contains(key) {
		return nil, nil
	}
	set := map[string]bool{}
	err := args.WalkValues(key, func(v string) error {
		if strings.Contains(v, ":") {
			return errdefs.Invalid("filter for '%s' should not contain ':': %s", key, v)
		}
		proto, ports := nat.SplitProtoPort(v)
		start, end, err := parsePortRange(ports)
		if err != nil {
			return errdefs.Invalid("error while looking up for %s %s: %s", key, v, err)
		}
		for p := start; p <= end; p++ {
			set[strconv.FormatUint(p, 10)+"/"+proto] = true
		}
		return nil
	})
	return set, err
}

// parsePortRange is ParsePortRange of the go-connections moby 28 vendors
// (v0.5.0), whose errors are strconv's own: `strconv.ParseUint: parsing
// "abc": invalid syntax` (later versions word them otherwise).
func parsePortRange(ports string) (start, end uint64, err error) {
	if ports == "" {
		return 0, 0, errors.New("empty string specified for ports")
	}
	first, last, isRange := strings.Cut(ports, "-")
	if start, err = strconv.ParseUint(first, 10, 16); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, start, nil
	}
	last, _, _ = strings.Cut(last, "-")
	if end, err = strconv.ParseUint(last, 10, 16); err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, fmt.Errorf("invalid range specified for port: %s", ports)
	}
	return start, end, nil
}

// hasPort is moby's publish/expose match over a container's ps ports: a
// published (host) port in publish, or a container port in expose.
func hasPort(ports []ctypes.Port, publish, expose map[string]bool) bool {
	for _, p := range ports {
		if (p.PublicPort != 0 && publish[fmt.Sprintf("%d/%s", p.PublicPort, p.Type)]) || expose[fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)] {
			return true
		}
	}
	return false
}

// containerMatches applies moby's ps filters: id and name are regular
// expressions, status is exact, label is "key" or "key=value", ancestor
// is the image as named or its ID, exited is the exit code of a stopped one.
// containerMatches applies ps's filters; the name filter matches the
// container's own name only: moby's list.go first picks candidates by
// every name (link names too) but then keeps those whose own name
// matches (includeContainerInList).
func containerMatches(c *container.Container, args filters.Args) bool {
	return args.Match("id", c.ID) &&
		(args.Match("name", c.Name) || args.Match("name", "/"+c.Name)) &&
		args.ExactMatch("status", c.Status()) &&
		args.MatchKVList("label", c.Config.Labels) &&
		matchesAncestor(c, args) &&
		(!args.Contains("exited") || exitedMatches(c, args))
}

// exitedMatches is moby's exited filter: a container that started and is
// not running now, whose exit code is one of the filter's, compared as
// numbers (exited=03 is 3; the values were checked).
func exitedMatches(c *container.Container, args filters.Args) bool {
	if c.Running() || c.State.Status == container.StatusRestarting || c.State.StartedAt.IsZero() {
		return false
	}
	for _, v := range args.Get("exited") {
		if code, err := strconv.Atoi(v); err == nil && code == c.State.ExitCode {
			return true
		}
	}
	return false
}

func matchesAncestor(c *container.Container, args filters.Args) bool {
	if !args.Contains("ancestor") {
		return true
	}
	image, _ := strings.CutSuffix(c.Config.Image, ":latest")
	for _, a := range args.Get("ancestor") {
		a, _ = strings.CutSuffix(a, ":latest")
		if a == image || a == c.Config.ImageID || strings.HasPrefix(c.Config.ImageID, "sha256:"+a) {
			return true
		}
	}
	return false
}

// onNetwork is moby's network filter (daemon/list.go): a network's name,
// or a prefix of its ID (the short ID that network ls prints).
func onNetwork(atts []network.Attachment, args filters.Args) bool {
	for _, a := range atts {
		if a.Network == nil {
			continue
		}
		for _, v := range args.Get("network") {
			if v == a.Network.Name || strings.HasPrefix(a.Network.ID, v) {
				return true
			}
		}
	}
	return false
}

// pauseContainer is docker pause: 204.
func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.PauseContainer(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unpauseContainer is docker unpause: 204.
func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.UnpauseContainer(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateContainer is docker update: the restart policy, validated as at
// create, and the limits (moby's router: a PidsLimit of 0 or less is
// "unlimited"); the resources berth does not apply are refused by their
// flag's name; those moby's update leaves as they are (swappiness, the
// OOM killer, ulimits) are left so here too, for clients that send back
// the whole Resources they read.
func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) error {
	var body ctypes.UpdateConfig
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	if err := unappliedHostConfig(&ctypes.HostConfig{Resources: body.Resources}); err != nil {
		return err
	}
	if err := ctypes.ValidateRestartPolicy(body.RestartPolicy); err != nil {
		return errdefs.Invalid("%w", err)
	}
	u := container.ContainerUpdate{
		RestartPolicy: container.RestartPolicy{Name: string(body.RestartPolicy.Name), MaximumRetryCount: body.RestartPolicy.MaximumRetryCount},
		Resources:     resourcesOf(body.Resources, 0, 0),
	}
	if p := body.PidsLimit; p != nil && *p <= 0 {
		u.Resources.PidsLimit = new(int64) // unlimited
	}
	u.Resources.MemorySwappiness, u.Resources.OomKillDisable, u.Resources.Ulimits = nil, false, nil
	warnings, err := s.backend.UpdateContainer(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return err
	}
	warnings = append(warnings, discardedResources(body.Resources, apiVersion(r.Context()))...)
	return writeJSON(w, http.StatusOK, ctypes.UpdateResponse{Warnings: warnings})
}

// containerChanges is docker diff: moby's FilesystemChange list (an
// empty list, not null, when nothing changed).
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	changes, err := s.backend.ContainerChanges(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []ctypes.FilesystemChange{}
	for _, c := range changes {
		out = append(out, ctypes.FilesystemChange{Path: c.Path, Kind: ctypes.ChangeType(c.Kind)})
	}
	return writeJSON(w, http.StatusOK, out)
}

// topContainer is docker top: moby's TopResponse of ps's titles and rows.
func (s *Server) topContainer(w http.ResponseWriter, r *http.Request) error {
	top, err := s.backend.TopContainer(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ctypes.TopResponse{Titles: top.Titles, Processes: top.Processes})
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.backend.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	atts, err := s.backend.ContainerAttachments(r.Context(), c.ID)
	if err != nil {
		return err
	}
	links := s.backend.ContainerLinks(r.Context(), c.ID)
	var sizes *[2]int64
	if boolValue(r, "size") {
		rw, rootfs, err := s.backend.ContainerSize(r.Context(), c.ID)
		if err != nil {
			return err
		}
		sizes = &[2]int64{rw, rootfs}
	}
	execs := s.backend.ContainerExecIDs(r.Context(), c.ID)
	return writeJSON(w, http.StatusOK, containerInspect(c, atts, links, execs, apiVersion(r.Context()), sizes))
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	// moby: a JSON object of 7+ bytes was a HostConfig, which start no
	// longer takes; "{}" and "null" from old clients are fine.
	if r.ContentLength > 7 || r.ContentLength == -1 {
		return errdefs.Invalid("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
	}
	if err := s.backend.StartContainer(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopOptions(r *http.Request) (*int, string, error) {
	t, ok, err := intValue(r, "t")
	if err != nil {
		return nil, "", err
	}
	var timeout *int
	if ok {
		timeout = &t
	}
	signal := ""
	if !versionBefore(r, "1.42") {
		signal = r.URL.Query().Get("signal")
	}
	return timeout, signal, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	timeout, signal, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.backend.StopContainer(r.Context(), r.PathValue("id"), timeout, signal); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// restartContainer is stop (already stopped is fine) then start.
func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	timeout, signal, err := stopOptions(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.backend.RestartContainer(r.Context(), id, timeout, signal); err != nil {
		return fmt.Errorf("Cannot restart container %s: %w", id, err) // moby's words (daemon/restart.go)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.backend.KillContainer(r.Context(), id, r.URL.Query().Get("signal")); err != nil {
		return fmt.Errorf("cannot kill container: %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// renameContainer is docker rename: ?name= is the new name.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.RenameContainer(r.Context(), r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneContainers is docker container prune (and the first step of docker
// system prune): the stopped containers that match moby's filters, label,
// label! and until (a time or a duration before now, as moby's
// getUntilFromPruneFilters reads it). SpaceReclaimed is what the removed
// containers' writable layers held.
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, map[string]bool{"label": true, "label!": true, "until": true})
	if err != nil {
		return err
	}
	until, err := pruneUntil(args)
	if err != nil {
		return err
	}
	deleted, reclaimed, err := s.backend.PruneContainers(r.Context(), func(c *container.Container) bool {
		return pruneMatches(args, until, c.Created, c.Config.Labels)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ctypes.PruneReport{ContainersDeleted: deleted, SpaceReclaimed: uint64(max(reclaimed, 0))})
}

// pruneMatches applies a prune's until, label and label! filters to an
// object created at created with labels (moby's matchLabels: label! only
// when given, since MatchKVList passes an absent key).
func pruneMatches(args filters.Args, until, created time.Time, labels map[string]string) bool {
	if !until.IsZero() && created.After(until) {
		return false
	}
	if !args.MatchKVList("label", labels) {
		return false
	}
	return !args.Contains("label!") || !args.MatchKVList("label!", labels)
}

// pruneUntil is a prune's until filter, zero without one.
func pruneUntil(args filters.Args) (time.Time, error) {
	vals := args.Get("until")
	switch len(vals) {
	case 0:
		return time.Time{}, nil
	case 1:
	default:
		return time.Time{}, errdefs.Invalid("more than one until filter specified")
	}
	return filterTime(vals[0])
}

// filterTime reads a filter's time as moby does: a timestamp, an RFC 3339
// date or a duration before now ("10m").
func filterTime(v string) (time.Time, error) {
	ts, err := timetypes.GetTimestamp(v, time.Now())
	if err != nil {
		return time.Time{}, errdefs.WithKind(errdefs.KindInvalid, err)
	}
	sec, nsec, err := timetypes.ParseTimestamps(ts, 0)
	if err != nil {
		return time.Time{}, errdefs.WithKind(errdefs.KindInvalid, err)
	}
	return time.Unix(sec, nsec), nil
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	var err error
	if boolValue(r, "link") {
		err = s.backend.RemoveLink(r.Context(), r.PathValue("id"))
	} else {
		err = s.backend.RemoveContainer(r.Context(), r.PathValue("id"), boolValue(r, "force"), boolValue(r, "v"))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// waitContainer sends its status and headers at once and the result when
// the condition is met: docker run waits for the headers before it starts
// the container, so a late header would deadlock the CLI.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	cond := r.URL.Query().Get("condition")
	if versionBefore(r, "1.30") {
		cond = ""
	}
	switch ctypes.WaitCondition(cond) {
	case "", ctypes.WaitConditionNotRunning, ctypes.WaitConditionNextExit, ctypes.WaitConditionRemoved:
	default:
		return errdefs.Invalid("invalid condition: %q", cond)
	}
	if cond == "" {
		cond = string(ctypes.WaitConditionNotRunning)
	}
	ctx, cancel := s.longPoll(r.Context())
	defer cancel()
	ch, err := s.backend.WaitContainer(ctx, r.PathValue("id"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	if !versionBefore(r, "1.30") {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
	}
	var res WaitResult
	select {
	case r, ok := <-ch:
		if !ok {
			// No result (the daemon is stopping): an empty body makes the
			// client report an error rather than a made-up exit code 0.
			return nil
		}
		res = r
	case <-ctx.Done():
		return nil // the client gave up (docker run -d cancels after start) or we stop
	}
	resp := waitResponse{StatusCode: res.StatusCode}
	if res.Err != "" {
		resp.Error = &waitExitError{Message: res.Err}
	}
	return json.NewEncoder(w).Encode(resp)
}

// waitResponse is the wait body with "Error" always present (null when
// the container exited normally), in the order Docker documents it; the
// v28 type omits it.
type waitResponse struct {
	StatusCode int
	Error      *waitExitError
}

type waitExitError struct {
	Message string
}

func resizeSize(r *http.Request) (uint, uint, error) {
	h, _, err := uintValue(r, "h")
	if err != nil {
		return 0, 0, errdefs.Invalid("invalid resize height %q", r.URL.Query().Get("h"))
	}
	wd, _, err := uintValue(r, "w")
	if err != nil {
		return 0, 0, errdefs.Invalid("invalid resize width %q", r.URL.Query().Get("w"))
	}
	return h, wd, nil
}

func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := resizeSize(r)
	if err != nil {
		return err
	}
	if err := s.backend.ResizeContainer(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// archivePath is the path query of docker cp's requests (moby's
// ArchiveFormValues).
func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.Invalid("bad parameter: path cannot be empty")
	}
	return p, nil
}

// setPathStat puts st in moby's X-Docker-Container-Path-Stat header:
// its container.PathStat as JSON, base64-encoded.
func setPathStat(h http.Header, st container.PathStat) error {
	b, err := json.Marshal(ctypes.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget})
	if err != nil {
		return err
	}
	h.Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

// containerArchive is docker cp out of a container: HEAD answers what is
// at the path (the stat header alone), GET sends it as a tar stream too.
func (s *Server) containerArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		st, err := s.backend.ContainerStatPath(r.Context(), r.PathValue("id"), p)
		if err != nil {
			return err
		}
		if err := setPathStat(w.Header(), st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	content, st, err := s.backend.ContainerArchivePath(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	defer content.Close()
	if err := setPathStat(w.Header(), st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	s.sendStream(w, r, content)
	return nil
}

// extractToContainer is docker cp into a container: the request's body,
// a tar stream, unpacked into the directory at the path.
func (s *Server) extractToContainer(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	body := &settledBody{r: r.Body}
	err = s.backend.ContainerExtractToDir(r.Context(), r.PathValue("id"), p,
		boolValue(r, "copyUIDGID"), boolValue(r, "noOverwriteDirNonDir"), body)
	body.settle(http.NewResponseController(w), settleWait)
	if err != nil {
		// Refused before the archive was read (a read-only path, no such
		// directory): read it on, up to a bound in size and time, so that
		// the client has written it all when the answer comes. net/http
		// closes a connection whose body is left unread, and the docker
		// CLI, still writing, said "broken pipe" instead of the error (a
		// flake of TestBindAndTmpfsMounts, session 18). A client that
		// stopped sending is not waited for past the bound.
		drainRefused(w, r.Body)
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// settledBody is a request body given to a backend that reads it from a
// goroutine of its own (docker cp's copier, which feeds the extraction
// through a pipe so that a start or a remove can end it): that goroutine
// can still be inside a Read when the backend returns, waiting for the
// client's last bytes after the archive's end. The handler must not
// return then: net/http's finishRequest aborts a read under way (a read
// deadline in the past), the body fails, and the connection is closed
// while the client still writes its chunked body's end, which the docker
// CLI reported as "broken pipe" (CI flakes of TestVolumes and TestDockerCp,
// sessions 35 and 36: the copier's read ended in "i/o timeout" a
// millisecond after the extraction returned). settle, called once the
// backend has returned, makes later reads fail and waits for the one
// under way.
type settledBody struct {
	r       io.Reader
	mu      sync.Mutex
	settled bool
	reading chan struct{} // closed when the read under way ends; nil: none
}

// errBodySettled is what a read after settle returns.
var errBodySettled = errors.New("request body no longer readable: the request was answered")

func (b *settledBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.settled {
		b.mu.Unlock()
		return 0, errBodySettled
	}
	done := make(chan struct{})
	b.reading = done
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.reading = nil
		b.mu.Unlock()
		close(done)
	}()
	return b.r.Read(p)
}

// settle ends the body's use by the backend: a read under way is waited
// for up to wait (the client's last bytes come at once), then cut with a
// read deadline (a client that stopped sending: its connection closes
// after the answer, as before).
func (b *settledBody) settle(rc *http.ResponseController, wait time.Duration) {
	b.mu.Lock()
	b.settled = true
	done := b.reading
	b.mu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	if rc.SetReadDeadline(time.Now()) == nil {
		<-done
	}
}

// settleWait bounds how long an answer waits for the backend's last read
// of a body.
const settleWait = time.Second

// maxRefusedArchive and refusedArchiveWait bound how much of a refused
// docker cp archive is read and dropped before the answer, and for how
// long; past them the connection closes under the client, as it did for
// every refusal before.
const (
	maxRefusedArchive  = 64 << 20
	refusedArchiveWait = time.Second
)

// drainRefused reads body on within those bounds. The read deadline is
// the connection's (net/http's), or none on a writer without one (the
// tests' recorder, whose body is in memory). It stays: the answer closes
// the connection, and net/http's own reading of what is left after the
// handler must not wait for a client that stopped sending either.
func drainRefused(w http.ResponseWriter, body io.Reader) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedArchiveWait))
	_, _ = io.CopyN(io.Discard, body, maxRefusedArchive)
}

// exportContainer is docker export: the container's root file system as
// a tar stream.
func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) error {
	content, err := s.backend.ContainerExport(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer content.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	s.sendStream(w, r, content)
	return nil
}

// sendStream copies a tar stream into the started response. A stream cut
// short (the container started or was removed, a read failed) aborts the
// response, so that the client sees it fail, not a short archive that
// ends cleanly.
func (s *Server) sendStream(w http.ResponseWriter, r *http.Request, content io.Reader) {
	if _, err := io.Copy(w, content); err != nil {
		s.log.Warn("api stream cut short", "method", r.Method, "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}
