package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestLegacyLinks: docker run --link on the default bridge, as moby does
// it: the child's address in the parent's /etc/hosts under the alias, the
// child's hostname and name; its ports and environment in the parent's;
// the link in inspect and ps; a child that comes back on another address
// updates the running parent's file; a parent whose child is not running
// does not start; docker rm --link forgets the link.
func TestLegacyLinks(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "db", "-e", "PASSWORD=gordon", "--expose", "6379", testworld.BusyboxImage, "sleep", "600")
	dbIP := containerIP(t, w, "db").String()
	dbHost := dockerInspect(t, w, "{{.Config.Hostname}}", "db")
	mustDocker(t, w, "run", "-d", "--name", "web", "--link", "db:database", "-e", "DATABASE_ENV_PASSWORD=mine", testworld.BusyboxImage, "sleep", "600")

	hosts := mustDocker(t, w, "exec", "web", "cat", "/etc/hosts")
	if want := dbIP + "\tdatabase " + dbHost + " db\n"; !strings.Contains(hosts, want) {
		t.Errorf("web's /etc/hosts lacks %q:\n%s", want, hosts)
	}
	webIP := containerIP(t, w, "web").String()
	if i, j := strings.Index(hosts, "\tdatabase "), strings.Index(hosts, webIP+"\t"); i < 0 || j < i {
		t.Errorf("the link's line should come before the container's own address, as in Docker:\n%s", hosts)
	}
	env := lines(mustDocker(t, w, "exec", "web", "env"))
	for _, want := range []string{
		"DATABASE_PORT=tcp://" + dbIP + ":6379",
		"DATABASE_PORT_6379_TCP=tcp://" + dbIP + ":6379",
		"DATABASE_PORT_6379_TCP_ADDR=" + dbIP,
		"DATABASE_PORT_6379_TCP_PORT=6379",
		"DATABASE_PORT_6379_TCP_PROTO=tcp",
		"DATABASE_NAME=/web/database",
		"DATABASE_ENV_PASSWORD=mine", // the container's own -e wins over the link's
	} {
		if !slices.Contains(env, want) {
			t.Errorf("web's environment lacks %q:\n%s", want, strings.Join(env, "\n"))
		}
	}
	// A bare -e KEY (KEY unset where the CLI runs, so sent bare) unsets
	// KEY, here a link's variable, and is not passed on itself (moby's
	// ReplaceOrAppendEnvValues).
	for _, k := range []string{"DATABASE_NAME", "BERTH_E2E_NEVER_SET"} {
		if _, ok := os.LookupEnv(k); ok {
			t.Fatalf("%s is set in the test's environment: the CLI would send its value", k)
		}
	}
	bare := lines(mustDocker(t, w, "run", "--rm", "--link", "db:database", "-e", "DATABASE_NAME", "-e", "BERTH_E2E_NEVER_SET", testworld.BusyboxImage, "env"))
	if !slices.Contains(bare, "DATABASE_PORT_6379_TCP_PORT=6379") || slices.ContainsFunc(bare, func(l string) bool {
		return strings.HasPrefix(l, "DATABASE_NAME") || strings.HasPrefix(l, "BERTH_E2E_NEVER_SET")
	}) {
		t.Errorf("run -e DATABASE_NAME -e BERTH_E2E_NEVER_SET (bare): want the link's other variables and neither of those:\n%s", strings.Join(bare, "\n"))
	}
	if !retried(func() bool {
		_, _, code := w.Docker(t, "exec", "web", "ping", "-c", "1", "-W", "1", "database")
		return code == 0
	}) {
		t.Errorf("web cannot ping its link by the alias")
	}
	if got := dockerInspect(t, w, "{{json .HostConfig.Links}}", "web"); got != `["/db:/web/database"]` {
		t.Errorf("web's HostConfig.Links = %s", got)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "ps", "--no-trunc", "--filter", "name=^db$", "--format", "{{.Names}}")); got != "db,web/database" {
		t.Errorf("docker ps --no-trunc names db %q, want db,web/database", got)
	}

	// The child comes back on another address: the running parent sees
	// it, in the link's line alone (moby's UpdateHostsEntry): a line web
	// added itself stays.
	mustDocker(t, w, "exec", "web", "sh", "-c", "echo '7.7.7.7\tuseredit' >> /etc/hosts")
	mustDocker(t, w, "stop", "-t", "0", "db")
	mustDocker(t, w, "run", "-d", "--name", "squatter", testworld.BusyboxImage, "sleep", "600") // takes db's old address
	mustDocker(t, w, "start", "db")
	newIP := containerIP(t, w, "db").String()
	if newIP == dbIP {
		t.Fatalf("db came back on its old address %s; the test wants another", dbIP)
	}
	hosts = mustDocker(t, w, "exec", "web", "cat", "/etc/hosts")
	if want := newIP + "\tdatabase " + dbHost + " db\n"; !strings.Contains(hosts, want) || strings.Contains(hosts, dbIP+"\t") {
		t.Errorf("after db came back on %s, web's /etc/hosts lacks %q or still has %s:\n%s", newIP, want, dbIP, hosts)
	}
	if !strings.Contains(hosts, "7.7.7.7\tuseredit\n") {
		t.Errorf("after db came back, web's own line is gone:\n%s", hosts)
	}
	// An exec gets the links' variables as they are now, as moby's exec does.
	if got := strings.TrimSpace(mustDocker(t, w, "exec", "web", "sh", "-c", "echo $DATABASE_PORT_6379_TCP_ADDR")); got != newIP {
		t.Errorf("exec in web: DATABASE_PORT_6379_TCP_ADDR=%s, want db's new address %s", got, newIP)
	}
	// The link's name is a name of db's, as in moby's name registry.
	if got := dockerInspect(t, w, "{{.Name}}", "web/database"); got != "/db" {
		t.Errorf("inspect web/database: %q, want /db", got)
	}
	// ps's name filter matches a container's own name only (moby's
	// includeContainerInList), not its link names.
	if got := strings.TrimSpace(mustDocker(t, w, "ps", "--filter", "name=web/database", "--format", "{{.Names}}")); got != "" {
		t.Errorf("ps --filter name=web/database: %q, want nothing", got)
	}

	// A parent whose child is not running does not start, nor exec, in
	// moby's words.
	mustDocker(t, w, "stop", "-t", "0", "db")
	if _, errOut, code := w.Docker(t, "exec", "web", "true"); code == 0 || !strings.Contains(errOut, "Cannot link to a non running container: /db AS /web/database") { // moby refuses at exec create
		t.Errorf("exec in web with db stopped: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "stop", "-t", "0", "web")
	if _, errOut, code := w.Docker(t, "start", "web"); code == 0 || !strings.Contains(errOut, "Cannot link to a non running container: /db AS /web/database") {
		t.Errorf("start web with db stopped: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--link", "nope:x", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "could not get container for nope") {
		t.Errorf("--link to a missing container: exit %d, %q", code, errOut)
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--network", "host", "--link", "db", testworld.BusyboxImage, "true"); code == 0 || !strings.Contains(errOut, "host type networking can't be used with links") {
		t.Errorf("--link on the host network: exit %d, %q", code, errOut)
	}

	// docker rm --link forgets the link and leaves both containers.
	mustDocker(t, w, "rm", "--link", "web/database")
	if got := dockerInspect(t, w, "{{json .HostConfig.Links}}", "web"); got != "null" {
		t.Errorf("after rm --link, web's HostConfig.Links = %s", got)
	}
	mustDocker(t, w, "start", "web")
	if _, errOut, code := w.Docker(t, "rm", "--link", "db"); code == 0 || !strings.Contains(errOut, "cannot remove the default link name") {
		t.Errorf("rm --link db: exit %d, %q", code, errOut)
	}
	if got := dockerInspect(t, w, "{{.State.Status}}", "db"); got != "exited" {
		t.Errorf("db after rm --link: %q, want it still there", got)
	}
	// rm --link of a running parent's link takes its line out of the
	// parent's /etc/hosts at once.
	mustDocker(t, w, "run", "-d", "--name", "kv", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "run", "-d", "--name", "app", "--link", "kv:cache", testworld.BusyboxImage, "sleep", "600")
	if hosts := mustDocker(t, w, "exec", "app", "cat", "/etc/hosts"); !strings.Contains(hosts, "\tcache ") {
		t.Fatalf("app's /etc/hosts lacks the link:\n%s", hosts)
	}
	mustDocker(t, w, "rm", "--link", "app/cache")
	if hosts := mustDocker(t, w, "exec", "app", "cat", "/etc/hosts"); strings.Contains(hosts, "\tcache ") {
		t.Errorf("after rm --link, app's /etc/hosts still has the link:\n%s", hosts)
	}
	// An exec's environment is built afresh, as moby's: no variables of
	// the removed link, the container's own and the defaults still there.
	env = lines(mustDocker(t, w, "exec", "app", "env"))
	if slices.Contains(env, "CACHE_NAME=/app/cache") || !slices.Contains(env, "HOSTNAME="+dockerInspect(t, w, "{{.Config.Hostname}}", "app")) {
		t.Errorf("exec in app after rm --link: %q", env)
	}
	// A link's name names the child on every command, as moby's
	// {name:.*} routes take it: rm without --link removes the child.
	mustDocker(t, w, "run", "-d", "--name", "p2", "--link", "kv:store", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "logs", "p2/store")
	mustDocker(t, w, "rm", "-f", "p2/store")
	if _, errOut, code := w.Docker(t, "inspect", "kv"); code == 0 || !strings.Contains(errOut, "No such object: kv") {
		t.Errorf("after rm -f p2/store, inspect kv: exit %d, %q; want kv removed", code, errOut)
	}
	if got := dockerInspect(t, w, "{{.State.Status}}", "p2"); got != "running" {
		t.Errorf("p2 after rm -f p2/store: %q, want it untouched", got)
	}
}

// TestLinkFollowsNameAcrossDaemonRestart: a link whose child was removed
// points, after a daemon restart, at the container that has the child's
// name then, as moby registers links again by name at each start.
func TestLinkFollowsNameAcrossDaemonRestart(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "c2", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "create", "--name", "p2", "--link", "c2", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "rm", "-f", "c2")
	mustDocker(t, w, "run", "-d", "--name", "c2", testworld.BusyboxImage, "sleep", "600")
	if _, errOut, code := w.Docker(t, "start", "p2"); code == 0 || !strings.Contains(errOut, "Cannot link to a non running container: /c2 AS /p2/c2") {
		t.Errorf("start p2 before a daemon restart: exit %d, %q (moby keeps the removed child too)", code, errOut)
	}
	d.Stop()
	w.Start(t)
	mustDocker(t, w, "start", "p2")
	ip := containerIP(t, w, "c2").String()
	if hosts := mustDocker(t, w, "exec", "p2", "cat", "/etc/hosts"); !strings.Contains(hosts, ip+"\tc2 ") {
		t.Errorf("p2's /etc/hosts lacks the new c2 (%s):\n%s", ip, hosts)
	}
}

// TestLinksOnUserNetwork: on a user-defined network --link (and Compose's
// links:) is a name alias that only the linking container resolves, to
// its target's address on that network.
func TestLinksOnUserNetwork(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "shop")
	mustDocker(t, w, "run", "-d", "--name", "pg", "--network", "shop", testworld.BusyboxImage, "sleep", "600")
	pgIP := networkIP(t, w, "pg", "shop").String()
	mustDocker(t, w, "run", "-d", "--name", "app", "--network", "shop", "--link", "pg:store", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "run", "-d", "--name", "other", "--network", "shop", testworld.BusyboxImage, "sleep", "600")

	out, _, code := w.Docker(t, "exec", "app", "nslookup", "store")
	if code != 0 || !strings.Contains(out, pgIP) {
		t.Errorf("app: nslookup store: exit %d\n%s\nwant %s", code, out, pgIP)
	}
	if out, _, code := w.Docker(t, "exec", "other", "nslookup", "store"); code == 0 || strings.Contains(out, pgIP) {
		t.Errorf("other (no link) resolved store: exit %d\n%s", code, out)
	}
	if got := dockerInspect(t, w, `{{json (index .NetworkSettings.Networks "shop").Links}}`, "app"); got != `["pg:store"]` {
		t.Errorf("app's Networks.shop.Links = %s", got)
	}
	if got := dockerInspect(t, w, "{{json .HostConfig.Links}}", "app"); got != "null" {
		t.Errorf("app's HostConfig.Links = %s, want null (moby keeps no legacy link on a user network)", got)
	}
	// docker network connect --link gives the alias on that network.
	mustDocker(t, w, "network", "create", "back")
	mustDocker(t, w, "run", "-d", "--name", "cache", "--network", "back", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "network", "connect", "--link", "cache:kv", "back", "app")
	cacheIP := networkIP(t, w, "cache", "back").String()
	if out, _, code := w.Docker(t, "exec", "app", "nslookup", "kv"); code != 0 || !strings.Contains(out, cacheIP) {
		t.Errorf("app: nslookup kv after connect --link: exit %d\n%s\nwant %s", code, out, cacheIP)
	}
}
