package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
)

// attachContainer hijacks the connection for docker run's attached mode
// (and docker attach): logs=1 replays what was printed, stream=1 follows.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.backend.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		return err // 404 now, while we can still send a status
	}
	if keys := r.URL.Query().Get("detachKeys"); keys != "" {
		if _, err := detachKeys(keys); err != nil {
			return errdefs.Invalid("Invalid detach keys (%s) provided", keys) // moby's ContainerAttach
		}
	}
	multiplexed := !c.Config.Tty
	q := func(k string) bool { return boolValue(r, k) }
	var stream func(context.Context, Streams) error
	if q("stream") {
		// Before the upgrade's answer: docker run starts the container
		// once it has it, and the output from the start on must be kept.
		if stream, err = s.backend.AttachContainer(r.Context(), c.ID); err != nil {
			return err
		}
	}
	// release lets a prepared attach go when it streams nothing.
	release := func() {
		if stream != nil {
			done, cancel := context.WithCancel(context.Background())
			cancel()
			_ = stream(done, Streams{})
		}
	}
	h, err := s.hijack(w, r, multiplexed)
	if err != nil {
		release()
		return err
	}
	defer h.close(s)
	streams := h.streams(q("stdin"), q("stdout"), q("stderr") && multiplexed)
	if q("logs") {
		opts := LogsOptions{Stdout: streams.Stdout != nil, Stderr: streams.Stderr != nil, Tail: -1}
		if err := s.backend.ContainerLogs(h.ctx, c.ID, opts, orDiscard(streams.Stdout), orDiscard(streams.Stderr)); err != nil {
			h.report(err)
			release()
			return nil
		}
	}
	if stream == nil {
		return nil
	}
	if err := stream(h.ctx, streams); err != nil && h.ctx.Err() == nil {
		s.log.Warn("attach failed", "container", c.ID, "err", err)
		h.report(err)
	}
	return nil
}

// containerLogs streams what the container printed: multiplexed frames
// unless it has a tty (then raw), flushed as they come when following.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	opts := LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Follow: boolValue(r, "follow"), Tail: -1}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.Invalid("Bad parameters: you must choose at least one stream")
	}
	opts.Timestamps = boolValue(r, "timestamps")
	opts.Details = boolValue(r, "details")
	var err error
	if opts.Since, err = logTime(r.URL.Query().Get("since")); err != nil {
		return err
	}
	if u := r.URL.Query().Get("until"); u != "0" { // "0": no bound, as moby's
		if opts.Until, err = logTime(u); err != nil {
			return err
		}
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("tail")); err == nil {
		opts.Tail = max(n, -1) // negative means everything, as in moby
	} // "all", or anything that is not a number: everything, as moby's ContainerLogs

	c, err := s.backend.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !c.Config.LogConfig.Readable() {
		return errdefs.NotImplemented("configured logging driver does not support reading") // moby's ErrReadLogsNotSupported
	}
	if err := s.backend.CheckLogs(r.Context(), c.ID, opts); err != nil {
		return err
	}
	multiplexed := !c.Config.Tty
	ct := mediaRawStream
	if multiplexed && !versionBefore(r, "1.42") {
		ct = mediaMultiplexedStream
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	stdout, stderr := outputs(w, multiplexed, func() { _ = rc.Flush() })
	if !opts.Stdout {
		stdout = nil
	}
	if !opts.Stderr {
		stderr = nil
	}
	ctx, cancel := s.longPoll(r.Context())
	defer cancel()
	// After the 200 an error can only be logged: the client reads frames.
	return s.backend.ContainerLogs(ctx, c.ID, opts, orDiscard(stdout), orDiscard(stderr))
}

// logTime reads a since or until value of the logs API: moby's
// timestamp (parseTimestamp), the form the docker CLI sends for whatever
// its user typed ("10m", a date).
func logTime(v string) (time.Time, error) {
	t, err := parseTimestamp(v)
	if err != nil {
		return time.Time{}, errdefs.Invalid("invalid timestamp %q: %v", v, err)
	}
	return t, nil
}

// parseTimestamp reads moby's timetypes.ParseTimestamps form: seconds
// since the epoch with an optional fraction ("1700000000",
// "1700000000.000000001"), the fraction's digits scaled to nanoseconds;
// "" is the zero time.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	sec, frac, hasFrac := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	var ns int64
	if hasFrac {
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, err
		}
		if ns < 0 {
			return time.Time{}, fmt.Errorf("negative fraction")
		}
		ns = int64(float64(ns) * math.Pow(10, float64(9-len(frac))))
	}
	return time.Unix(s, ns), nil
}
