package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// procStatus is the lines of the container process's /proc/self/status
// named by keys ("Seccomp", "NoNewPrivs", "CapEff"), as "key:value" with
// the spaces dropped.
func procStatus(t *testing.T, w *testworld.World, args []string, keys ...string) string {
	t.Helper()
	out := mustDocker(t, w, append(args, "cat", "/proc/self/status")...)
	var got []string
	for _, l := range lines(out) {
		k, v, _ := strings.Cut(l, ":")
		for _, want := range keys {
			if k == want {
				got = append(got, k+":"+strings.Join(strings.Fields(v), " "))
			}
		}
	}
	return strings.Join(got, " ")
}

// TestDockerSeccompAndSecurityOpts: a container runs under Docker's
// default seccomp filter (no user namespace of its own: the kernel code
// for namespace owners is out of its reach), --security-opt
// seccomp=unconfined, a profile of the user's own (the CLI sends the
// file's JSON), no-new-privileges (for its execs too) and
// systempaths=unconfined do what they do in Docker, and what berth cannot
// apply is refused in moby's words.
func TestDockerSeccompAndSecurityOpts(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	if got := procStatus(t, w, []string{"run", "--rm", bb}, "Seccomp"); got != "Seccomp:2" {
		t.Errorf("a default container: %q, want a seccomp filter (mode 2)", got)
	}
	_, errOut, code := w.Docker(t, "run", "--rm", bb, "unshare", "-U", "true")
	if code == 0 || !strings.Contains(errOut, "Operation not permitted") {
		t.Errorf("unshare -U under the default filter: exit %d, %q; want EPERM", code, errOut)
	}
	if got := procStatus(t, w, []string{"run", "--rm", "--security-opt", "seccomp=builtin", bb}, "Seccomp"); got != "Seccomp:2" {
		t.Errorf("seccomp=builtin: %q", got)
	}
	unconfined := []string{"run", "--rm", "--security-opt", "seccomp=unconfined", bb}
	if got := procStatus(t, w, unconfined, "Seccomp"); got != "Seccomp:0" {
		t.Errorf("seccomp=unconfined: %q", got)
	}
	if _, errOut, code := w.Docker(t, append(unconfined, "unshare", "-U", "true")...); code != 0 {
		t.Errorf("unshare -U with seccomp=unconfined: exit %d, %q", code, errOut)
	}

	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = w.Docker(t, "run", "--rm", "--security-opt", "seccomp="+profile, bb, "mkdir", "/made")
	if code == 0 || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("mkdir under a profile that refuses it with EACCES: exit %d, %q", code, errOut)
	}

	runDockerSleeper(t, w, "nnp", "--security-opt", "no-new-privileges")
	if got := procStatus(t, w, []string{"exec", "nnp"}, "NoNewPrivs"); got != "NoNewPrivs:1" {
		t.Errorf("an exec in a no-new-privileges container: %q", got)
	}
	if got := dockerInspect(t, w, "{{.HostConfig.SecurityOpt}} {{.HostConfig.Privileged}} {{len .HostConfig.MaskedPaths}}", "nnp"); got != "[no-new-privileges] false 12" {
		t.Errorf("inspect: %q", got)
	}

	const masked = "head -c 8 /proc/timer_list | wc -c"
	if out := runShell(t, w, nil, masked); out != "0" {
		t.Errorf("/proc/timer_list in a default container: %q bytes, want it masked", out)
	}
	if out := runShell(t, w, []string{"--security-opt", "systempaths=unconfined"}, masked); out != "8" {
		t.Errorf("/proc/timer_list with systempaths=unconfined: %q bytes", out)
	}

	for _, c := range []struct{ opt, want string }{
		{"foo=bar", `invalid --security-opt 2: "foo=bar"`},
		{"no-new-privileges=maybe", `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{"apparmor=docker-default", "berth applies no AppArmor profile"},
		{"label=type:svirt_apache_t", "berth applies no SELinux labels"},
	} {
		if _, errOut, code := w.Docker(t, "run", "--rm", "--security-opt", c.opt, bb, "true"); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("--security-opt %s: exit %d, %q; want %q", c.opt, code, errOut, c.want)
		}
	}
	if _, errOut, code := w.Docker(t, "run", "--rm", "--security-opt", "seccomp="+writeFile(t, "{"), bb, "true"); code == 0 {
		t.Errorf("a profile that is not JSON: exit 0, %q", errOut)
	}
}

// runShell is the trimmed output of script in a busybox container run
// with opts (`docker run --rm OPTS busybox sh -c SCRIPT`).
func runShell(t *testing.T, w *testworld.World, opts []string, script string) string {
	t.Helper()
	args := append(append([]string{"run", "--rm"}, opts...), testworld.BusyboxImage, "sh", "-c", script)
	return strings.TrimSpace(mustDocker(t, w, args...))
}

// writeFile writes content to a new file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDockerPrivileged: --privileged gives the container the daemon's
// capabilities, the host's devices, /sys and its cgroups writable, no
// seccomp filter and no masked paths; exec --privileged gives one process
// the capabilities and nothing else.
func TestDockerPrivileged(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	daemonCaps := func() string {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				return "CapEff:" + strings.TrimSpace(v)
			}
		}
		return ""
	}()
	runDockerSleeper(t, w, "priv", "--privileged")
	if got := procStatus(t, w, []string{"exec", "priv"}, "CapEff", "Seccomp"); got != daemonCaps+" Seccomp:0" {
		t.Errorf("a privileged container: %q, want %q and no seccomp", got, daemonCaps)
	}
	out := mustDocker(t, w, "exec", "priv", "sh", "-c", "grep -E ' /sys (sysfs|cgroup)' /proc/mounts; grep ' /sys/fs/cgroup ' /proc/mounts; ls /dev | wc -l; head -c 8 /proc/timer_list | wc -c")
	if strings.Contains(out, " ro,") || strings.Contains(out, " ro ") {
		t.Errorf("a privileged container's /sys or cgroups are read-only:\n%s", out)
	}
	l := lines(out)
	if len(l) < 2 || l[len(l)-1] != "8" {
		t.Errorf("a privileged container's /proc/timer_list is masked:\n%s", out)
	}
	plain := lines(mustDocker(t, w, "run", "--rm", bb, "sh", "-c", "ls /dev | wc -l"))
	if len(l) < 2 || len(plain) != 1 || l[len(l)-2] <= plain[0] && len(l[len(l)-2]) <= len(plain[0]) {
		t.Errorf("/dev has %v entries privileged, %v not: want the host's devices", l, plain)
	}
	// NET_ADMIN among them: a link made in its own namespace.
	mustDocker(t, w, "exec", "priv", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	if got := dockerInspect(t, w, "{{.HostConfig.Privileged}} {{.HostConfig.MaskedPaths}}", "priv"); got != "true []" {
		t.Errorf("inspect of a privileged container: %q", got)
	}

	runDockerSleeper(t, w, "plain")
	if got := procStatus(t, w, []string{"exec", "--privileged", "plain"}, "CapEff", "Seccomp"); got != daemonCaps+" Seccomp:2" {
		t.Errorf("exec --privileged: %q, want %q under the container's filter", got, daemonCaps)
	}
	if got := procStatus(t, w, []string{"exec", "plain"}, "CapEff"); got != "CapEff:00000000a80425fb" {
		t.Errorf("a plain exec: %q, want Docker's default set", got)
	}
}

// TestDockerDevicesAndGroups: --device makes the host's node in the
// container (at another path too) with the cgroup permissions given,
// --device-cgroup-rule lets it open a node it made, a device that is not
// there fails the start in moby's words, and --group-add adds groups by
// name or ID, for its execs too.
func TestDockerDevicesAndGroups(t *testing.T) {
	w, _ := startWorld(t)
	bb := testworld.BusyboxImage
	// /dev/fuse: not among the devices every container has (null, zero,
	// tty…), and opening it does nothing.
	out := mustDocker(t, w, "run", "--rm", "--device", "/dev/fuse:/dev/myfuse:r", bb,
		"sh", "-c", "stat -c '%t:%T' /dev/myfuse; (exec 3</dev/myfuse) && echo read; (exec 3>/dev/myfuse) 2>/dev/null || echo no-write")
	if got := lines(out); len(got) != 3 || got[0] != "a:e5" || got[1] != "read" || got[2] != "no-write" {
		t.Errorf("--device /dev/fuse:/dev/myfuse:r: %q, want the node 10:229, open for reading only", out)
	}
	// CAP_MKNOD makes the node; only a rule lets it be opened.
	const mk = "mknod /dev/f2 c 10 229 && ((exec 3<>/dev/f2) 2>/dev/null && echo opened || echo refused)"
	if out := runShell(t, w, nil, mk); out != "refused" {
		t.Errorf("a node made without a rule: %q", out)
	}
	if out := runShell(t, w, []string{"--device-cgroup-rule", "c 10:229 rw"}, mk); out != "opened" {
		t.Errorf("a node made with --device-cgroup-rule 'c 10:229 rw': %q", out)
	}
	_, errOut, code := w.Docker(t, "run", "--rm", "--device", "/dev/berth-no-such", bb, "true")
	if code == 0 || !strings.Contains(errOut, `error gathering device information while adding custom device "/dev/berth-no-such": no such file or directory`) {
		t.Errorf("a device that is not there: exit %d, %q", code, errOut)
	}
	if got := dockerInspect(t, w, "{{range .HostConfig.Devices}}{{.PathOnHost}}>{{.PathInContainer}}:{{.CgroupPermissions}}{{end}}",
		strings.TrimSpace(mustDocker(t, w, "create", "--device", "/dev/null:/dev/n:rw", bb, "true"))); got != "/dev/null>/dev/n:rw" {
		t.Errorf("inspect's devices: %q", got)
	}

	runDockerSleeper(t, w, "grp", "--group-add", "daemon", "--group-add", "4242")
	for _, args := range [][]string{{"exec", "grp", "id", "-G"}, {"exec", "-u", "nobody", "grp", "id", "-G"}} {
		out := mustDocker(t, w, args...)
		if f := strings.Fields(out); !slices.Contains(f, "4242") || !slices.Contains(f, "1") {
			t.Errorf("docker %s: %q, want the added groups (daemon is 1 in busybox)", strings.Join(args, " "), out)
		}
	}
	_, errOut, code = w.Docker(t, "run", "--rm", "--group-add", "nosuchgroup", bb, "true")
	if code == 0 || !strings.Contains(errOut, "Unable to find group nosuchgroup: no matching entries in group file") {
		t.Errorf("--group-add of an unknown name: exit %d, %q", code, errOut)
	}
}

// TestContainerFilesUnreachableFromHostUsers: what a container's root
// writes (its writable layer, its /etc files, its mounted root) cannot
// be reached by an unprivileged user of the host, not even with the
// world's own directory open to all, as moby's 0710 roots keep it after
// CVE-2021-41091: a setuid-root program planted there would run as root.
func TestContainerFilesUnreachableFromHostUsers(t *testing.T) {
	w, _ := startWorld(t)
	if err := os.Chmod(w.Dir, 0o755); err != nil { // as /var/lib and /run are
		t.Fatal(err)
	}
	id := runDockerSleeper(t, w, "planter")
	mustDocker(t, w, "exec", "planter", "sh", "-c", "cp /bin/busybox /suid && chmod 4755 /suid && cat /bin/busybox > /etc/hostname && chmod 4755 /etc/hostname")
	for _, p := range []string{
		filepath.Join(w.DataRoot, "files", id, "hostname"),
		filepath.Join(w.DataRoot, "containers", id, "upper", "suid"),
		filepath.Join(w.ExecRoot, "containers", id, "rootfs", "suid"),
	} {
		if _, errOut, code := w.InHost(t, "stat", p); code != 0 { // as root, in the daemon's mount namespace
			t.Fatalf("%s is not where the test expects it: %s", p, errOut)
		}
		if out, _, code := w.InHost(t, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "stat", "-c", "%a %U", p); code == 0 {
			t.Errorf("a host user reaches %s: %s", p, out)
		}
	}
	// The API socket in the exec-root stays reachable (for --group).
	if _, errOut, code := w.InHost(t, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "stat", filepath.Join(w.ExecRoot)); code != 0 {
		t.Errorf("the exec-root is closed to host users: %s", errOut)
	}
}
