// Package events is the daemon's event log, what `docker events` and
// Docker Compose follow: containers created, started, dying (with their
// exit code), stopped, killed, renamed, restarted and destroyed;
// networks created, connected, disconnected and destroyed; images
// imported, loaded, saved, tagged, untagged, deleted and pruned; volumes
// created, mounted, unmounted, destroyed and pruned. It keeps the
// last events for clients that ask for those since a time, and hands new
// ones to subscribers. Pure: no I/O, no Docker wire types (the API turns
// an Event into Docker's events.Message).
package events

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Kinds of actors, as Docker names them.
const (
	TypeContainer = "container"
	TypeNetwork   = "network"
	TypeImage     = "image"
	TypeVolume    = "volume"
)

// Event is one thing that happened to an actor.
type Event struct {
	Type       string // TypeContainer, TypeNetwork, TypeImage, TypeVolume
	Action     string // "create", "start", "die", ...
	ActorID    string
	Attributes map[string]string // a container's: its labels, "name", "image", and the action's own
	Time       time.Time
}

// keep is how many past events the log keeps for "since" (moby keeps 256).
const keep = 256

// subBuffer is how far a subscriber may fall behind before the events it
// has no room for are dropped (moby's publisher buffer, 1024).
const subBuffer = 1024

// Log keeps the last events and hands new ones to subscribers. Safe for
// concurrent use; Publish never waits for a subscriber.
type Log struct {
	now func() time.Time

	mu        sync.Mutex
	past      []Event
	subs      map[chan Event]struct{}
	published uint64
}

// New returns an empty log; now is the clock (nil: time.Now).
func New(now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{now: now, subs: map[chan Event]struct{}{}}
}

// Publish records e, stamped with the time now, and sends it to every
// subscriber; one whose buffer is full misses e and stays subscribed, as
// moby's publisher drops an event a subscriber has no room for (it ended
// the stream: a docker events watcher exited 0 after a burst, and never
// saw the events after it).
func (l *Log) Publish(e Event) {
	e.Time = l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.past) == keep {
		l.past = slices.Delete(l.past, 0, 1)
	}
	l.past = append(l.past, e)
	l.published++
	for ch := range l.subs {
		select {
		case ch <- e:
		default: // full: this one misses e
		}
	}
}

// Counts returns how many events were published so far and how many
// subscribers there are now (dockerd's events_total and
// events_subscribers_total metrics).
func (l *Log) Counts() (published uint64, subscribers int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.published, len(l.subs)
}

// Subscribe returns the kept events at or after since (none when since
// is zero) and a channel of the events after them, until cancel is
// called (a subscriber that falls too far behind misses events).
func (l *Log) Subscribe(since time.Time) (past []Event, ch <-chan Event, cancel func()) {
	c := make(chan Event, subBuffer)
	l.mu.Lock()
	if !since.IsZero() {
		for _, e := range l.past {
			if !e.Time.Before(since) {
				past = append(past, e)
			}
		}
	}
	l.subs[c] = struct{}{}
	l.mu.Unlock()
	return past, c, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[c]; ok {
			delete(l.subs, c)
			close(c)
		}
	}
}

// Filter selects events as `docker events --filter` does (moby's
// daemon/events/filter.go): each key given must match; several values
// of one key are alternatives.
type Filter struct {
	Types      []string // "container", "network", "image", "volume"
	Actions    []string // "start", "die", ...
	Containers []string // names, IDs or ID prefixes
	Networks   []string // names, IDs or ID prefixes
	Volumes    []string // names or prefixes of them
	Images     []string // an image event's image, a container's image as it was given
	Labels     []string // "key" or "key=value", matched against the attributes
}

// Match reports whether e passes f.
func (f Filter) Match(e Event) bool {
	switch {
	case len(f.Types) > 0 && !slices.Contains(f.Types, e.Type):
		return false
	case len(f.Actions) > 0 && !matchAction(f.Actions, e.Action):
		return false
	case len(f.Containers) > 0 && (e.Type != TypeContainer || !matchActor(f.Containers, e)):
		return false
	case len(f.Networks) > 0 && (e.Type != TypeNetwork || !matchActor(f.Networks, e)):
		return false
	case len(f.Volumes) > 0 && (e.Type != TypeVolume || !matchActor(f.Volumes, e)):
		return false
	case len(f.Images) > 0 && !matchImage(f.Images, e):
		return false
	}
	for _, l := range f.Labels {
		k, v, withValue := strings.Cut(l, "=")
		got, ok := e.Attributes[k]
		if !ok || (withValue && got != v) {
			return false
		}
	}
	return true
}

// matchAction is moby's event filter: exact, but when health_status,
// exec_create or exec_start is among the values (actions that carry a
// suffix, "health_status: healthy") a value matches as a prefix too
// (moby#25798).
func matchAction(actions []string, action string) bool {
	if slices.Contains(actions, action) {
		return true
	}
	fuzzy := slices.ContainsFunc(actions, func(a string) bool {
		return a == "health_status" || a == "exec_create" || a == "exec_start"
	})
	return fuzzy && slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(action, a) })
}

// matchActor is moby's fuzzyMatchName: the actor's ID or its name, or a
// prefix of either (container=web follows web2 and webapp too).
func matchActor(refs []string, e Event) bool {
	for _, r := range refs {
		if r == e.Attributes["name"] || (r != "" && (strings.HasPrefix(e.ActorID, r) || strings.HasPrefix(e.Attributes["name"], r))) {
			return true
		}
	}
	return false
}

// matchImage is moby's matchImage: an image event's ID or name, a
// container event's image, each also without its tag.
func matchImage(refs []string, e Event) bool {
	name := e.Attributes["image"]
	if e.Type == TypeImage {
		name = e.Attributes["name"]
	}
	for _, r := range refs {
		if r == e.ActorID || r == name || r == stripTag(e.ActorID) || (name != "" && r == stripTag(name)) {
			return true
		}
	}
	return false
}

// stripTag is an image reference's familiar name without its tag or
// digest ("docker.io/library/busybox:1.36" is "busybox"), as moby's
// filter strips it; an image ID stays as it is.
func stripTag(ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return ref
	}
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	if rest, ok := strings.CutPrefix(ref, "docker.io/"); ok {
		ref = strings.TrimPrefix(rest, "library/")
	}
	return ref
}
