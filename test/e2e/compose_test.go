package e2e

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/testworld"
)

// composeProject is a small application as Compose users write one: a web
// server published on the host and on two networks, an API built from a
// Dockerfile and known on the internal network by an alias too, and a
// client that waits for the web server's health check and runs under
// an init (the shell alone, as PID 1, would ignore the stop's SIGTERM).
// The servers are given a second to stop (httpd as PID 1 ignores it too).
const composeProject = `services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello from web > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
    ports: ["8080:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/index.html"]
      interval: 1s
      retries: 30
    stop_grace_period: 1s
    networks: [front, back]
  api:
    build: ./api
    environment: [GREETING=hello from api]
    volumes: [data:/data]
    stop_grace_period: 1s
    networks:
      back:
        aliases: [backend]
  client:
    image: busybox
    command: ["sh", "-c", "while true; do sleep 3600; done"]
    init: true
    depends_on:
      web:
        condition: service_healthy
    networks: [back]
networks:
  front: {}
  back:
    internal: true
volumes:
  data: {}
`

// composeAPIDockerfile is the api service's image: built by Compose
// through the daemon's builder.
const composeAPIDockerfile = `FROM busybox
RUN mkdir /www
CMD ["sh", "-c", "echo \"$GREETING\" > /www/index.html; exec httpd -f -p 8000 -h /www"]
`

// TestComposeProject: the real docker compose (v5, a CLI plugin of the
// docker CLI) brings a project up on berth and down again: its networks
// (one internal), services that find each other by service name, alias
// and container name through the embedded DNS, a published port the
// outside world reaches, a health-gated dependency, an image built from a
// Dockerfile, a named volume, scaling a service up (its name then answers
// with every replica's address) and down, a one-off run, and down -v
// leaving the host as it was before up.
func TestComposeProject(t *testing.T) {
	testworld.RequireCompose(t)
	w, _ := startWorld(t)
	dir := writeContext(t, map[string]string{"compose.yaml": composeProject, "api/Dockerfile": composeAPIDockerfile})
	file := filepath.Join(dir, "compose.yaml")
	compose := func(args ...string) string {
		t.Helper()
		return w.MustCompose(t, append([]string{"-f", file, "-p", "shop"}, args...)...)
	}
	before := snapshot(t, w)
	t.Cleanup(func() { w.Compose(t, "-f", file, "-p", "shop", "down", "-v", "--timeout", "1") })

	compose("up", "-d", "--wait")

	var ps []struct{ Service, State, Health string }
	for _, line := range strings.Split(strings.TrimSpace(compose("ps", "--format", "json")), "\n") {
		var c struct{ Service, State, Health string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("compose ps line %q: %v", line, err)
		}
		ps = append(ps, c)
	}
	slices.SortFunc(ps, func(a, b struct{ Service, State, Health string }) int { return strings.Compare(a.Service, b.Service) })
	want := []struct{ Service, State, Health string }{{"api", "running", ""}, {"client", "running", ""}, {"web", "running", "healthy"}}
	if diff := cmp.Diff(want, ps); diff != "" {
		t.Errorf("compose ps after up --wait (-want +got):\n%s", diff)
	}

	if got := mustDocker(t, w, "network", "inspect", "-f", `{{.Internal}} {{index .Labels "com.docker.compose.network"}} {{index .Labels "com.docker.compose.project"}}`, "shop_back"); strings.TrimSpace(got) != "true back shop" {
		t.Errorf("shop_back: internal, network and project labels %q, want \"true back shop\"", strings.TrimSpace(got))
	}

	// Service names, aliases and container names resolve on the networks
	// the two containers share. (Every wget here is bounded by timeout(1):
	// busybox 1.35's own -T crashes with SIGSEGV on these machines.)
	get := func(service, url string) string {
		t.Helper()
		var out string
		if !retried(func() bool {
			var code int
			out, _, code = w.Compose(t, "-f", file, "-p", "shop", "exec", "-T", service, "timeout", "5", "wget", "-q", "-O", "-", url)
			return code == 0
		}) {
			t.Errorf("%s could not get %s", service, url)
		}
		return strings.TrimSpace(out)
	}
	for _, c := range []struct{ from, url, want string }{
		{"client", "http://web/index.html", "hello from web"},
		{"client", "http://backend:8000/", "hello from api"},
		{"client", "http://api:8000/", "hello from api"},
		{"web", "http://shop-api-1:8000/", "hello from api"},
	} {
		if got := get(c.from, c.url); got != c.want {
			t.Errorf("%s: GET %s = %q, want %q", c.from, c.url, got, c.want)
		}
	}

	// web (on the front network too) reaches the outside world; client,
	// only on the internal network, does not.
	server := "http://" + testworld.ServerAddr.String() + "/"
	if got := get("web", server); !strings.HasPrefix(got, "you are ") {
		t.Errorf("web: GET %s = %q, want the outside server's answer", server, got)
	}
	if out, _, code := w.Compose(t, "-f", file, "-p", "shop", "exec", "-T", "client", "timeout", "2", "wget", "-q", "-O", "-", server); code == 0 {
		t.Errorf("client on the internal network reached the outside server: %q", out)
	}

	// The published port answers the outside world on the host's address.
	published := "http://" + testworld.HostAddr.String() + ":8080/index.html"
	var page string
	if !retried(func() bool {
		var code int
		page, _, code = w.InOutside(t, "timeout", "5", "busybox", "wget", "-q", "-O", "-", published)
		return code == 0
	}) || strings.TrimSpace(page) != "hello from web" {
		t.Errorf("outside: GET %s = %q, want web's page", published, page)
	}

	// Scaled up, the service name answers with every replica.
	compose("up", "-d", "--wait", "--scale", "client=3")
	var replicas []netip.Addr
	for _, id := range strings.Fields(compose("ps", "-q", "client")) {
		replicas = append(replicas, parseAddr(t, strings.TrimSpace(mustDocker(t, w, "inspect", "-f", `{{(index .NetworkSettings.Networks "shop_back").IPAddress}}`, id))))
	}
	if len(slices.Compact(addrList(replicas...))) != 3 {
		t.Fatalf("client scaled to 3 has addresses %v, want three distinct ones", replicas)
	}
	wantLookup(t, w, "shop-web-1", "client", replicas...)
	compose("up", "-d", "--wait", "--scale", "client=1")
	if ids := strings.Fields(compose("ps", "-q", "client")); len(ids) != 1 {
		t.Errorf("client scaled back to 1 has %d containers", len(ids))
	}

	// A one-off container of a service joins the project's networks.
	if out := compose("run", "--rm", "client", "timeout", "5", "wget", "-q", "-O", "-", "http://backend:8000/"); strings.TrimSpace(out) != "hello from api" {
		t.Errorf("run --rm client: GET http://backend:8000/ = %q", out)
	}

	// The named volume keeps what api writes across a recreate.
	compose("exec", "-T", "api", "sh", "-c", "echo kept > /data/file")
	compose("up", "-d", "--wait", "--force-recreate", "api")
	if got := strings.TrimSpace(compose("exec", "-T", "api", "cat", "/data/file")); got != "kept" {
		t.Errorf("after a recreate api's /data/file holds %q, want kept", got)
	}

	compose("down", "-v")
	if out := strings.TrimSpace(mustDocker(t, w, "ps", "-aq")); out != "" {
		t.Errorf("containers left after down -v: %s", out)
	}
	if out := mustDocker(t, w, "network", "ls", "--filter", "label=com.docker.compose.project=shop", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("networks left after down -v: %s", out)
	}
	if out := mustDocker(t, w, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("volumes left after down -v: %s", out)
	}
	if diff := cmp.Diff(before, snapshot(t, w)); diff != "" {
		t.Errorf("host after down -v differs from before up (-before +after):\n%s", diff)
	}
}
