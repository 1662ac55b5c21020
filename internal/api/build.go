package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/build"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// BuildOptions are a docker build request's (moby's BuildOptions, the
// legacy builder's part).
type BuildOptions struct {
	build.Options
	// Tags are -t's, "name[:tag]".
	Tags []string
	// Container is what each RUN's container is made from: the request's
	// network mode, extra hosts, cgroup parent and resources, and no logs
	// (moby's hostConfigFromOptions).
	Container container.Config
}

// buildImage is POST /build, as moby's postBuild with the legacy builder
// (the docker CLI's without buildx): the body is the context as a tar
// (perhaps compressed), the answer a jsonmessage stream of the build's
// output ("stream"), each stage's image ID ("aux", from API 1.30) and,
// once output began, its error. With q=1 only the image ID is written
// (or, on failure, the output and the error).
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request) error {
	opts, err := buildOptions(r)
	if err != nil {
		return err
	}
	sw := &buildStream{w: w}
	if rc := http.NewResponseController(w); rc != nil {
		sw.flush = func() { _ = rc.Flush() }
	}
	quiet := boolValue(r, "q")
	var held bytes.Buffer
	var dst io.Writer = sw
	if quiet {
		dst = &held
	}
	lw := &lockedStream{w: dst}
	out := build.Output{
		Stdout: streamLines{w: lw},
		Stderr: streamLines{w: lw, prefix: "\033[91m", suffix: "\033[0m"},
	}
	if !lessThan(apiVersion(r.Context()), "1.30") {
		out.Aux = func(id string) error { return lw.message(map[string]any{"aux": map[string]string{"ID": id}}) }
	}
	id, err := s.backend.BuildImage(r.Context(), r.Body, opts, out)
	// The build's writers are done; the lock keeps it so for any late one.
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.w = io.Discard
	if err != nil {
		if quiet && held.Len() > 0 {
			_, _ = sw.Write(held.Bytes())
		}
		if !sw.started {
			return err // nothing written yet: an error response, as moby's
		}
		detail := map[string]any{"message": err.Error()}
		if se := (*build.StepError)(nil); errors.As(err, &se) {
			detail["code"] = se.Code
		}
		return writeJSONMessage(sw, map[string]any{"errorDetail": detail, "error": err.Error()})
	}
	if quiet {
		return writeJSONMessage(sw, map[string]string{"stream": id + "\n"})
	}
	return nil
}

// buildOptions reads POST /build's query.
func buildOptions(r *http.Request) (BuildOptions, error) {
	q := r.URL.Query()
	switch v := q.Get("version"); v {
	case "", "1":
	case "2":
		return BuildOptions{}, errdefs.Invalid("berth has no BuildKit: build with the legacy builder (DOCKER_BUILDKIT=0, or the docker CLI without buildx)")
	default:
		return BuildOptions{}, errdefs.Invalid("invalid version %q", v)
	}
	if rc := q.Get("remote"); rc != "" {
		return BuildOptions{}, errdefs.Invalid("berth builds from the context sent with the request, not from a remote one (%s)", rc)
	}
	if boolValue(r, "squash") {
		return BuildOptions{}, errdefs.Invalid("squash is only supported with experimental mode")
	}
	if len(q["securityopt"]) > 0 {
		return BuildOptions{}, errdefs.Invalid("security options are not supported on linux")
	}
	if iso := q.Get("isolation"); iso != "" && iso != "default" {
		return BuildOptions{}, errdefs.Invalid("unsupported isolation: %q", iso) // moby's on Linux
	}
	opts := BuildOptions{Tags: q["t"], Options: build.Options{
		Dockerfile: q.Get("dockerfile"),
		Target:     q.Get("target"),
		NoCache:    boolValue(r, "nocache"),
		// --rm is the default; --force-rm implies it.
		Remove:      q.Get("rm") == "" || boolValue(r, "rm") || boolValue(r, "forcerm"),
		ForceRemove: boolValue(r, "forcerm"),
		Pull:        boolValue(r, "pull"),
	}}
	if !lessThan(apiVersion(r.Context()), "1.32") {
		opts.Platform = q.Get("platform")
	}
	for key, into := range map[string]any{"buildargs": &opts.BuildArgs, "labels": &opts.Labels, "cachefrom": &opts.CacheFrom} {
		if v := q.Get(key); v != "" {
			if err := json.Unmarshal([]byte(v), into); err != nil {
				return BuildOptions{}, errdefs.Invalid("error reading %s: %v", key, err)
			}
		}
	}
	hc := &ctypes.HostConfig{NetworkMode: ctypes.NetworkMode(q.Get("networkmode")), ExtraHosts: q["extrahosts"],
		LogConfig: ctypes.LogConfig{Type: "none"}}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	hc.CgroupParent = q.Get("cgroupparent")
	hc.CpusetCpus, hc.CpusetMems = q.Get("cpusetcpus"), q.Get("cpusetmems")
	for key, into := range map[string]*int64{"memory": &hc.Memory, "memswap": &hc.MemorySwap, "cpushares": &hc.CPUShares,
		"cpuquota": &hc.CPUQuota, "cpuperiod": &hc.CPUPeriod, "shmsize": &hc.ShmSize} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return BuildOptions{}, errdefs.Invalid("invalid %s: %v", key, err)
			}
			*into = n
		}
	}
	if v := q.Get("ulimits"); v != "" {
		if err := json.Unmarshal([]byte(v), &hc.Ulimits); err != nil {
			return BuildOptions{}, errdefs.Invalid("error reading ulimit settings: %v", err)
		}
	}
	cfg, err := createConfig(ctypes.CreateRequest{Config: &ctypes.Config{Image: "build", Cmd: []string{"true"}}, HostConfig: hc},
		apiVersion(r.Context()))
	if err != nil {
		return BuildOptions{}, err
	}
	opts.Container = cfg
	return opts, nil
}

// buildStream writes the answer's header with its first bytes, so that
// an error before any output is an error response.
type buildStream struct {
	w       http.ResponseWriter
	flush   func()
	started bool
}

func (b *buildStream) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.w.Header().Set("Content-Type", "application/json")
		b.w.WriteHeader(http.StatusOK)
	}
	n, err := b.w.Write(p)
	if b.flush != nil {
		b.flush()
	}
	return n, err
}

// lockedStream serialises the messages of a build's writers (a RUN's
// output comes from the attach's goroutine).
type lockedStream struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedStream) message(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(append(b, '\r', '\n'))
	return err
}

// streamLines writes each write as a "stream" message (moby's
// streamformatter: stderr's in red).
type streamLines struct {
	w              *lockedStream
	prefix, suffix string
}

func (s streamLines) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.w.message(map[string]string{"stream": s.prefix + string(p) + s.suffix}); err != nil {
		return 0, err
	}
	return len(p), nil
}
