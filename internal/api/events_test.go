package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	eventtypes "github.com/docker/docker/api/types/events"

	"github.com/berth-net/berth/internal/events"
)

// TestEventsSinceUntilAndFilters: the past events between since and until
// that pass the filters, in Docker's message form (the deprecated
// status/id/from still set on container events), as Compose asks for a
// project's.
func TestEventsSinceUntilAndFilters(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	start := time.Now()
	f.events.Publish(events.Event{Type: events.TypeContainer, Action: "start", ActorID: "c1",
		Attributes: map[string]string{"name": "shop-web-1", "image": "busybox", "com.docker.compose.project": "shop"}})
	f.events.Publish(events.Event{Type: events.TypeContainer, Action: "start", ActorID: "c2",
		Attributes: map[string]string{"name": "blog-web-1", "image": "busybox", "com.docker.compose.project": "blog"}})
	f.events.Publish(events.Event{Type: events.TypeNetwork, Action: "connect", ActorID: "n1",
		Attributes: map[string]string{"name": "shop_default", "type": "bridge", "container": "c1"}})
	f.events.Publish(events.Event{Type: events.TypeContainer, Action: "die", ActorID: "c1",
		Attributes: map[string]string{"name": "shop-web-1", "image": "busybox", "com.docker.compose.project": "shop", "exitCode": "3"}})
	until := time.Now()
	q := fmt.Sprintf("since=%d.%09d&until=%d.%09d", start.Unix(), start.Nanosecond(), until.Unix(), until.Nanosecond())
	for _, tc := range []struct {
		filters string
		want    []string
	}{
		{"", []string{"container start c1", "container start c2", "network connect n1", "container die c1"}},
		{`{"label":{"com.docker.compose.project=shop":true}}`, []string{"container start c1", "container die c1"}},
		{`{"type":{"container":true},"event":{"die":true}}`, []string{"container die c1"}},
		{`{"container":{"blog-web-1":true}}`, []string{"container start c2"}},
		{`{"network":{"shop_default":true}}`, []string{"network connect n1"}},
		{`{"volume":{"v":true}}`, nil},
		// Every event is local: scope=swarm matches none (moby's matchScope).
		{`{"scope":{"swarm":true}}`, nil},
		{`{"scope":{"local":true},"event":{"die":true}}`, []string{"container die c1"}},
	} {
		path := "/v1.51/events?" + q
		if tc.filters != "" {
			path += "&filters=" + tc.filters
		}
		rec := call(t, s, http.MethodGet, path, "")
		wantStatus(t, rec, http.StatusOK)
		var got []string
		sc := bufio.NewScanner(rec.Body)
		for sc.Scan() {
			var m eventtypes.Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: line %q: %v", tc.filters, sc.Text(), err)
			}
			got = append(got, fmt.Sprintf("%s %s %s", m.Type, m.Action, m.Actor.ID))
			if m.Type == "container" && (m.Status != string(m.Action) || m.ID != m.Actor.ID || m.From != "busybox" || m.Scope != "local" || m.TimeNano == 0) { //nolint:staticcheck
				t.Errorf("%s: container message %+v lacks the legacy fields or the time", tc.filters, m)
			}
			if m.Action == "die" && m.Actor.Attributes["exitCode"] != "3" {
				t.Errorf("die without its exit code: %+v", m.Actor.Attributes)
			}
		}
		if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
			t.Errorf("filters %s: got %q, want %q", tc.filters, got, tc.want)
		}
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/events?since=20&until=10", ""),
		http.StatusBadRequest, "`since` time (20) cannot be after `until` time (10)")
	// until alone: the kept events up to it, as moby's
	// loadBufferedEvents; a filter key of no kind is ignored, as moby's
	// SubscribeToEvents does not check them.
	rec := call(t, s, http.MethodGet, fmt.Sprintf("/v1.51/events?until=%d.%09d&filters=%s", until.Unix(), until.Nanosecond(),
		url.QueryEscape(`{"colour":{"red":true},"event":{"die":true}}`)), "")
	wantStatus(t, rec, http.StatusOK)
	if got := strings.Count(rec.Body.String(), `"Action":"die"`); got != 1 || strings.Count(rec.Body.String(), "\n") > 1 {
		t.Errorf("until alone: %q, want the one die event kept", rec.Body.String())
	}
}

// TestEventsStream: without until, the stream stays open and each new
// event arrives as it is published, over a real socket (the connection
// leaves the direct loop for net/http, which streams).
func TestEventsStream(t *testing.T) {
	f := newFakeBackend()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(f)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1.51/events?filters=%s HTTP/1.1\r\nHost: docker\r\n\r\n", `%7B%22type%22%3A%7B%22container%22%3Atrue%7D%7D`)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	for _, action := range []string{"create", "start"} {
		f.events.Publish(events.Event{Type: events.TypeNetwork, Action: "create", ActorID: "n"}) // filtered out
		f.events.Publish(events.Event{Type: events.TypeContainer, Action: action, ActorID: "c9", Attributes: map[string]string{"name": "x"}})
		c.SetReadDeadline(time.Now().Add(time.Minute)) // only ends a hang
		if !lines.Scan() {
			t.Fatalf("stream ended before %s: %v", action, lines.Err())
		}
		var m eventtypes.Message
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil || string(m.Action) != action || m.Actor.ID != "c9" {
			t.Fatalf("got %q (%v), want the container's %s", lines.Text(), err, action)
		}
	}
	// A shutdown ends the stream rather than waiting out its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown with an events stream open: %v", err)
	}
	if lines.Scan() {
		t.Errorf("after the shutdown the stream sent %q", lines.Text())
	}
}
