package events

import (
	"testing"
	"time"
)

func TestFilterMatch(t *testing.T) {
	start := Event{Type: TypeContainer, Action: "start", ActorID: "abcdef123456",
		Attributes: map[string]string{"name": "web", "image": "busybox", "com.docker.compose.project": "shop"}}
	connect := Event{Type: TypeNetwork, Action: "connect", ActorID: "0123456789ab",
		Attributes: map[string]string{"name": "front", "type": "bridge", "container": "abcdef123456"}}
	tag := Event{Type: TypeImage, Action: "tag", ActorID: "sha256:99aa", Attributes: map[string]string{"name": "registry.local:5000/app:1.2"}}
	untag := Event{Type: TypeImage, Action: "untag", ActorID: "sha256:99aa", Attributes: map[string]string{"name": "sha256:99aa"}}
	mount := Event{Type: TypeVolume, Action: "mount", ActorID: "data", Attributes: map[string]string{"driver": "local", "container": "abcdef123456"}}
	tests := []struct {
		name string
		f    Filter
		e    Event
		want bool
	}{
		{"no filter", Filter{}, start, true},
		{"type", Filter{Types: []string{"container"}}, start, true},
		{"other type", Filter{Types: []string{"network"}}, start, false},
		{"one of two actions", Filter{Actions: []string{"die", "start"}}, start, true},
		{"health_status matches its suffixed actions", Filter{Actions: []string{"health_status"}}, Event{Type: TypeContainer, Action: "health_status: healthy"}, true},
		{"then other values match as prefixes too", Filter{Actions: []string{"health_status", "sta"}}, start, true},
		{"otherwise exact", Filter{Actions: []string{"sta"}}, start, false},
		{"container by name", Filter{Containers: []string{"web"}}, start, true},
		{"container by ID prefix", Filter{Containers: []string{"abcdef"}}, start, true},
		{"another container", Filter{Containers: []string{"db"}}, start, false},
		// moby's FuzzyMatch on the name: a prefix of it matches too.
		{"container by a prefix of its name", Filter{Containers: []string{"we"}}, start, true},
		{"network by a prefix of its name", Filter{Networks: []string{"fro"}}, connect, true},
		{"container filter on a network event", Filter{Containers: []string{"web"}}, connect, false},
		{"network by name", Filter{Networks: []string{"front"}}, connect, true},
		{"label key=value (Compose's)", Filter{Labels: []string{"com.docker.compose.project=shop"}}, start, true},
		{"label of another project", Filter{Labels: []string{"com.docker.compose.project=blog"}}, start, false},
		{"label key only", Filter{Labels: []string{"com.docker.compose.project"}}, start, true},
		{"every label must match", Filter{Labels: []string{"com.docker.compose.project=shop", "tier=db"}}, start, false},
		{"keys combine", Filter{Types: []string{"container"}, Actions: []string{"die"}}, start, false},
		// moby's matchImage: an image event's ID or name, with or without its tag.
		{"image event by name", Filter{Images: []string{"registry.local:5000/app:1.2"}}, tag, true},
		{"image event by name without the tag", Filter{Images: []string{"registry.local:5000/app"}}, tag, true},
		{"image event by ID", Filter{Images: []string{"sha256:99aa"}}, untag, true},
		{"image event of another image", Filter{Images: []string{"busybox"}}, tag, false},
		{"container event by its image", Filter{Images: []string{"busybox"}}, start, true},
		{"image filter on a volume event", Filter{Images: []string{"busybox"}}, mount, false},
		{"volume by name", Filter{Volumes: []string{"data"}}, mount, true},
		{"volume by a prefix", Filter{Volumes: []string{"da"}}, mount, true},
		{"volume filter on an image event", Filter{Volumes: []string{"data"}}, tag, false},
		{"type volume", Filter{Types: []string{"volume"}}, mount, true},
	}
	for _, tt := range tests {
		if got := tt.f.Match(tt.e); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLogSinceAndSubscribe(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(func() time.Time { now = now.Add(time.Second); return now })
	for i := range keep + 10 {
		l.Publish(Event{Type: TypeContainer, Action: "create", ActorID: string(rune('a' + i%26))})
	}
	past, ch, cancel := l.Subscribe(time.Unix(1000+keep+10-4, 0))
	if len(past) != 5 {
		t.Errorf("%d past events since the 5th to last, want 5", len(past))
	}
	if all, _, c := l.Subscribe(time.Unix(1, 0)); len(all) != keep {
		t.Errorf("%d events kept, want %d", len(all), keep)
	} else {
		c()
	}
	if none, _, c := l.Subscribe(time.Time{}); len(none) != 0 {
		t.Errorf("%d past events with no since, want none", len(none))
	} else {
		c()
	}
	l.Publish(Event{Type: TypeNetwork, Action: "destroy"})
	if e := <-ch; e.Action != "destroy" || e.Time != now {
		t.Errorf("got %+v, want the destroy stamped %v", e, now)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
	cancel() // twice is fine
}

// A subscriber that does not read is never waited for: the events it has
// no room for are dropped, and it stays subscribed for the ones after,
// as moby's publisher (it was cut off, and its stream ended).
func TestSlowSubscriberMissesEventsButStays(t *testing.T) {
	l := New(nil)
	_, ch, cancel := l.Subscribe(time.Time{})
	defer cancel()
	for range subBuffer + 10 {
		l.Publish(Event{Type: TypeContainer, Action: "start"})
	}
	for range subBuffer {
		if e, ok := <-ch; !ok || e.Action != "start" {
			t.Fatalf("buffered event: %v, %v", e, ok)
		}
	}
	l.Publish(Event{Type: TypeContainer, Action: "die"})
	select {
	case e, ok := <-ch:
		if !ok || e.Action != "die" {
			t.Errorf("after the burst: %v, %v; want the die", e, ok)
		}
	default:
		t.Error("a subscriber that fell behind got nothing after it caught up")
	}
}

func TestStripTag(t *testing.T) {
	for in, want := range map[string]string{
		"busybox": "busybox", "busybox:1.36": "busybox", "docker.io/library/busybox:latest": "busybox",
		"docker.io/me/app:2": "me/app", "registry.local:5000/app": "registry.local:5000/app",
		"registry.local:5000/app:1.2": "registry.local:5000/app", "app@sha256:abcd": "app", "sha256:99aa": "sha256:99aa",
	} {
		if got := stripTag(in); got != want {
			t.Errorf("stripTag(%q) = %q, want %q", in, got, want)
		}
	}
}
