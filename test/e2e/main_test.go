package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/testworld"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 { // every test skips (or fails under CI=true) without root
		code := m.Run()
		testworld.RemoveBinary()
		os.Exit(code)
	}
	before, err := ownNamespace()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: read the test process's own network namespace:", err)
		os.Exit(1)
	}
	code := m.Run()
	testworld.RemoveBinary()
	// Every test works in worlds of its own; the namespace the tests were
	// started in must come out exactly as it went in.
	after, err := ownNamespace()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: read the test process's own network namespace:", err)
		code = 1
	} else if diff := cmp.Diff(before, after); diff != "" {
		fmt.Fprintf(os.Stderr, "e2e: the tests changed their own network namespace (-before +after):\n%s", diff)
		code = 1
	}
	os.Exit(code)
}

// namespaceState is what a test could change by mistake in the namespace
// it runs in: links, addresses, routes, forwarding and nftables tables.
type namespaceState struct {
	Links, Addrs, Routes, Tables []string
	IPForward                    string
}

func ownNamespace() (namespaceState, error) {
	var s namespaceState
	links, err := netlink.LinkList()
	if err != nil {
		return s, err
	}
	for _, l := range links {
		s.Links = append(s.Links, l.Attrs().Name)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return s, err
	}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, a.IPNet.String())
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return s, err
	}
	for _, r := range routes {
		s.Routes = append(s.Routes, r.String())
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return s, err
	}
	s.IPForward = strings.TrimSpace(string(fwd))
	tables, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return s, fmt.Errorf("nft list tables: %w", err)
	}
	s.Tables = strings.Fields(string(tables))
	for _, l := range [][]string{s.Links, s.Addrs, s.Routes} {
		sort.Strings(l)
	}
	return s, nil
}
