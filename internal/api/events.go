package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	eventtypes "github.com/docker/docker/api/types/events"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/events"
)

// events serves GET /events: the events since ?since (a Unix time, with
// nanoseconds after a dot, as the docker CLI sends it) that match
// ?filters, then each new one as it happens, one JSON message per line,
// until ?until, until the client goes away or until the server shuts
// down. With ?until alone the kept events up to it are sent, as moby's
// loadBufferedEvents does. Docker Compose follows a project's containers
// this way (up in the foreground, logs -f). Filter keys are not checked,
// as moby's SubscribeToEvents does not: those of kinds berth has no
// events of (plugin, daemon, ...) match nothing of theirs, and unknown
// ones are ignored.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	args, err := parseFilters(r, nil)
	if err != nil {
		return err
	}
	f := events.Filter{
		Types: args.Get("type"), Actions: args.Get("event"), Containers: args.Get("container"),
		Networks: args.Get("network"), Volumes: args.Get("volume"), Images: args.Get("image"), Labels: args.Get("label"),
	}
	// A filter on a kind berth has no events of matches nothing, and so
	// does a scope other than local, every event's (moby's matchScope).
	none := slices.ContainsFunc([]string{"plugin", "daemon", "node", "service", "secret", "config"},
		func(key string) bool { return len(args.Get(key)) > 0 }) || args.Contains("scope") && !args.ExactMatch("scope", "local")
	since, err := eventTime(r, "since")
	if err != nil {
		return err
	}
	until, err := eventTime(r, "until")
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return errdefs.Invalid("`since` time (%s) cannot be after `until` time (%s)", r.URL.Query().Get("since"), r.URL.Query().Get("until"))
	}
	from := since
	if from.IsZero() && !until.IsZero() {
		from = time.Unix(0, 1) // every event kept
	}
	past, ch, cancel := s.backend.Events(from)
	defer cancel()
	ctx, stop := s.longPoll(r.Context())
	defer stop()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	// send writes e if it matches; false once e is past until.
	send := func(e events.Event) (bool, error) {
		if !until.IsZero() && e.Time.After(until) {
			return false, nil
		}
		if !none && f.Match(e) {
			if err := enc.Encode(eventMessage(e)); err != nil {
				return false, err
			}
			return true, rc.Flush()
		}
		return true, nil
	}
	for _, e := range past {
		if more, err := send(e); !more || err != nil {
			return nil // the response has started: an error only ends it
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			if more, err := send(e); !more || err != nil {
				return nil
			}
		case <-deadline:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// eventTime parses ?since or ?until: Unix seconds, optionally with
// nanoseconds after a dot (moby's timetypes.ParseTimestamps).
func eventTime(r *http.Request, key string) (time.Time, error) {
	v := r.URL.Query().Get(key)
	t, err := parseTimestamp(v)
	if err != nil {
		return time.Time{}, errdefs.Invalid("invalid value for %s: %q", key, v)
	}
	return t, nil
}

// eventMessage is e as Docker's API sends it, with the deprecated
// status, id and from of container events still filled, as moby's are.
func eventMessage(e events.Event) eventtypes.Message {
	m := eventtypes.Message{
		Type: eventtypes.Type(e.Type), Action: eventtypes.Action(e.Action),
		Actor: eventtypes.Actor{ID: e.ActorID, Attributes: e.Attributes},
		Scope: "local", Time: e.Time.Unix(), TimeNano: e.Time.UnixNano(),
	}
	switch e.Type {
	case events.TypeContainer:
		m.Status, m.ID, m.From = e.Action, e.ActorID, e.Attributes["image"] //nolint:staticcheck // still sent by moby
	case events.TypeImage:
		m.Status, m.ID = e.Action, e.ActorID //nolint:staticcheck // still sent by moby
	}
	return m
}
