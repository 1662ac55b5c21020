package e2e

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/testworld"
)

// The default network, as DESIGN.md fixes it.
var (
	bridgeSubnet  = netip.MustParsePrefix("172.17.0.0/16")
	bridgeGateway = netip.MustParseAddr("172.17.0.1")
)

const defaultBridge = "berth0"

// hostVeth is the host end's name: "veth" and 7 hex characters.
var hostVeth = regexp.MustCompile(`^veth[0-9a-f]{7}$`)

// startWorld makes a world with a running daemon and the busybox image.
func startWorld(t *testing.T, daemonArgs ...string) (*testworld.World, *testworld.Daemon) {
	t.Helper()
	w := testworld.New(t)
	d := w.Start(t, daemonArgs...)
	w.Busybox(t)
	return w, d
}

// runSleeper starts a detached busybox container that sleeps, as the
// seed's `while true; do sleep 3600; done`.
func runSleeper(t *testing.T, w *testworld.World, name string, opts ...string) {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, opts...)
	args = append(args, testworld.BusyboxImage, "sh", "-c", "while true; do sleep 3600; done")
	out := w.MustBerth(t, args...)
	if id := strings.TrimSpace(out); len(id) != 64 {
		t.Errorf("berth run printed %q, want a 64-character ID", out)
	}
}

// inspect runs `berth inspect --format FORMAT name` and returns the trimmed output.
func inspect(t *testing.T, w *testworld.World, format, name string) string {
	t.Helper()
	return strings.TrimSpace(w.MustBerth(t, "inspect", "--format", format, name))
}

func containerIP(t *testing.T, w *testworld.World, name string) netip.Addr {
	t.Helper()
	return parseAddr(t, inspect(t, w, "{{.NetworkSettings.IPAddress}}", name))
}

// networkIP is the container's address on a named network (user networks
// leave the legacy NetworkSettings.IPAddress empty, as Docker does).
func networkIP(t *testing.T, w *testworld.World, name, network string) netip.Addr {
	t.Helper()
	return parseAddr(t, inspect(t, w, `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, name))
}

func containerPID(t *testing.T, w *testworld.World, name string) int {
	t.Helper()
	s := inspect(t, w, "{{.State.Pid}}", name)
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		t.Fatalf("State.Pid of %q = %q, want a positive number", name, s)
	}
	return pid
}

func sandboxKey(t *testing.T, w *testworld.World, name string) string {
	t.Helper()
	key := inspect(t, w, "{{.NetworkSettings.SandboxKey}}", name)
	if !strings.HasPrefix(key, w.ExecRoot+"/netns/") {
		t.Errorf("SandboxKey of %q = %q, want it under %s/netns", name, key, w.ExecRoot)
	}
	return key
}

func itoa(n int) string { return strconv.Itoa(n) }

func parseAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("parse address %q: %v", s, err)
	}
	return a
}

// canPing reports whether container from gets an answer to one ping of addr.
// One try: use it where the answer must be no (pings where it must be yes).
func canPing(t *testing.T, w *testworld.World, from string, addr netip.Addr) bool {
	t.Helper()
	_, _, code := w.Berth(t, "exec", from, "ping", "-c", "1", "-W", "2", addr.String())
	return code == 0
}

// pings is canPing tried again until a reply comes, for checks where the
// answer must be yes: on a loaded machine one ping (a slow first ARP, a
// process not run within its two seconds) proves no drop.
func pings(t *testing.T, w *testworld.World, from string, addr netip.Addr) bool {
	t.Helper()
	return retried(func() bool { return canPing(t, w, from, addr) })
}

// retried calls try until it reports true or a minute has passed, and
// says whether it did. It is for probes (a ping, a request, a datagram)
// that must succeed: a loaded machine may let one try miss its own short
// wait without anything being wrong. The minute only ends a real failure;
// nothing about speed is asserted. A probe that must fail is tried once.
func retried(try func() bool) bool {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if try() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// fetch asks the outside server, from a container, who it is; "" when
// unreachable. One try: use it where the answer must be "" (fetchAnswer
// where there must be one).
func fetch(t *testing.T, w *testworld.World, from string) string {
	t.Helper()
	url := "http://" + testworld.ServerAddr.String() + "/"
	out, _, code := w.Berth(t, "exec", from, "timeout", "10", "wget", "-q", "-O", "-", url)
	if code != 0 {
		return ""
	}
	return out
}

// fetchAnswer is fetch tried again while nothing answers (see retried).
func fetchAnswer(t *testing.T, w *testworld.World, from string) string {
	t.Helper()
	var out string
	retried(func() bool {
		out = fetch(t, w, from)
		return out != ""
	})
	return out
}

// reapGroup is the interface group with which the bridge driver marks the
// host end of a veth pair that Leave cut off (reapGroup in
// internal/driver/bridge): a reaper deletes the marked pairs in batches,
// a little after rm, stop, kill or disconnect returned.
const reapGroup = 0x62657274

// waitReaped waits until no veth pair is left for the bridge driver's
// reaper, so that the links and bridge ports a test lists next are the
// settled ones. A pair still marked after a minute fails the test.
func waitReaped(t *testing.T, w *testworld.World) {
	t.Helper()
	h := w.HostHandle(t)
	eventually(t, "the bridge driver's reaper deleted the veths it was given", func() bool {
		links, err := h.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			return false
		}
		if err != nil {
			t.Fatalf("list links: %v", err)
		}
		for _, l := range links {
			if l.Attrs().Group == reapGroup {
				return false
			}
		}
		return true
	})
}

// checkSandbox verifies a container's network stack from outside it: its
// init's netns is the sandbox, which holds exactly lo and eth0 with addr on
// subnet and a default route via gw (when gw is valid).
func checkSandbox(t *testing.T, w *testworld.World, name string, addr netip.Addr, subnet netip.Prefix, gw netip.Addr) {
	t.Helper()
	key := sandboxKey(t, w, name)
	procNS := "/proc/" + strconv.Itoa(containerPID(t, w, name)) + "/ns/net"
	if !testworld.SameNamespace(procNS, w.HostPath(key)) {
		t.Errorf("%s is not the sandbox %s of %q", procNS, key, name)
	}
	if got := w.LinkNames(t, procNS); !equal(got, []string{"eth0", "lo"}) {
		t.Errorf("links in %q's sandbox = %q, want [eth0 lo]", name, got)
	}
	h := w.Handle(t, procNS)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 of %q: %v", name, err)
	}
	want := netip.PrefixFrom(addr, subnet.Bits()).String()
	if got := ipv4Addrs(t, h, eth0); !equal(got, []string{want}) {
		t.Errorf("eth0 of %q has %q, want [%s]", name, got, want)
	}
	if gw.IsValid() && !hasDefaultVia(t, h, gw) {
		t.Errorf("%q has no default route via %s", name, gw)
	}
}

func ipv4Addrs(t *testing.T, h *netlink.Handle, link netlink.Link) []string {
	t.Helper()
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("addresses of %q: %v", link.Attrs().Name, err)
	}
	var s []string
	for _, a := range addrs {
		s = append(s, a.IPNet.String())
	}
	return s
}

func hasDefaultVia(t *testing.T, h *netlink.Handle, gw netip.Addr) bool {
	t.Helper()
	return slices.Contains(defaultGateways(t, h), gw.String())
}

// defaultGateways lists the gateways of the IPv4 default routes ("" for
// a default route without one).
func defaultGateways(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	var gws []string
	for _, r := range routes {
		if r.Dst != nil && (!r.Dst.IP.Equal(net.IPv4zero) || onesOf(r.Dst) != 0) {
			continue
		}
		gw := ""
		if r.Gw != nil {
			gw = r.Gw.String()
		}
		gws = append(gws, gw)
	}
	return gws
}

func onesOf(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// networkInspect is the part of `network inspect`'s JSON the tests read.
type networkInspect struct {
	Name       string
	ID         string `json:"Id"`
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       struct {
		Driver string
		Config []struct{ Subnet, Gateway string }
	}
	Internal   bool
	Containers map[string]struct {
		Name        string
		EndpointID  string
		MacAddress  string
		IPv4Address string
	}
	Options map[string]string
	Labels  map[string]string
}

// inspectNetwork runs inspect with the given CLI ("berth" or "docker") and
// decodes its one-element array; it also returns the raw objects' keys.
func inspectNetwork(t *testing.T, run func(testing.TB, ...string) (string, string, int), name string) (networkInspect, map[string]json.RawMessage) {
	t.Helper()
	out, errOut, code := run(t, "network", "inspect", name)
	if code != 0 {
		t.Fatalf("network inspect %s: exit %d: %s", name, code, errOut)
	}
	var typed []networkInspect
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &typed); err != nil {
		t.Fatalf("decode network inspect %s: %v\n%s", name, err, out)
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(typed) != 1 || len(raw) != 1 {
		t.Fatalf("network inspect %s printed %d objects (%v), want 1", name, len(typed), err)
	}
	return typed[0], raw[0]
}
