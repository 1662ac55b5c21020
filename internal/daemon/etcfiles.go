package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
)

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf, which the runtime bind-mounts into it.
func (d *Daemon) writeEtcFiles(c *container.Container) error {
	if err := os.MkdirAll(filepath.Dir(c.HostsPath), 0o700); err != nil { // bind-mounted by root; the files themselves are 0644
		return err
	}
	if err := writeInPlace(c.HostnamePath, c.Config.Hostname+"\n"); err != nil {
		return err
	}
	if err := writeResolvConf(c.ResolvConfPath, d.resolvConfFor(c)); err != nil {
		return err
	}
	return d.writeHosts(c)
}

// writeResolvConf writes a container's resolv.conf and, beside it, the
// hash of what it wrote, as libnetwork's WriteFile does: a file whose
// hash no longer matches was edited, and is not rewritten while the
// container runs (resolvConfEdited).
func writeResolvConf(path, content string) error {
	if err := writeInPlace(path, content); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(content))
	return os.WriteFile(path+".hash", []byte("sha256:"+hex.EncodeToString(sum[:])), 0o644)
}

// followHostResolvConf writes c's resolv.conf again as a new container of
// its kind would get it, when the file is as berth wrote it last
// (resolvConfUntouched: an edited file stays the user's) and that differs;
// it says whether it wrote. A container sharing another's network
// namespace has the other's file, which only the other's pass writes; one
// with DNS servers of its own (--dns) keeps them.
func (d *Daemon) followHostResolvConf(c *container.Container) (bool, error) {
	if _, shared := container.SharedNetns(c.Config.NetworkMode); shared || c.ResolvConfPath == "" || d.dnsServersSet(c) {
		return false, nil
	}
	path := c.ResolvConfPath
	if !resolvConfUntouched(path) {
		return false, nil
	}
	// The file is what its hash says: compare hashes, not the file,
	// which the container may have swapped for a huge one meanwhile.
	content := d.resolvConfFor(c)
	sum := sha256.Sum256([]byte(content))
	if stored, err := os.ReadFile(path + ".hash"); err == nil && string(stored) == "sha256:"+hex.EncodeToString(sum[:]) {
		return false, nil
	}
	return true, writeResolvConf(path, content)
}

// resolvConfEdited says whether the resolv.conf at path was changed since
// berth wrote it ("This file can be edited; Docker Engine will not make
// further changes once it has been modified"); a file without a hash was
// not.
func resolvConfEdited(path string) bool {
	return resolvConfHashed(path) == hashMismatch
}

// resolvConfUntouched says whether the resolv.conf at path is as berth
// wrote it last, with a hash to show it (a file without one is not
// rewritten when the host's changes).
func resolvConfUntouched(path string) bool {
	return resolvConfHashed(path) == hashMatch
}

type hashState int

const (
	hashNone hashState = iota // no hash, or a file that cannot be read
	hashMatch
	hashMismatch
)

// resolvConfHashed compares the resolv.conf at path with the hash berth
// wrote beside it. The container can write its resolv.conf (it is bound
// in): it is hashed as a stream, and one larger than any berth writes is
// edited without being read (QA round 27: a sparse 1.5 GB file grew the
// daemon by as much, as os.ReadFile; moby's UserModified streams it too).
func resolvConfHashed(path string) hashState {
	want, err := os.ReadFile(path + ".hash")
	if err != nil {
		return hashNone
	}
	f, err := os.Open(path)
	if err != nil {
		return hashNone
	}
	defer f.Close()
	h := sha256.New()
	if n, err := io.Copy(h, io.LimitReader(f, maxEtcFile+1)); err != nil {
		return hashNone
	} else if n > maxEtcFile {
		return hashMismatch
	}
	if string(want) != "sha256:"+hex.EncodeToString(h.Sum(nil)) {
		return hashMismatch
	}
	return hashMatch
}

// maxEtcFile bounds what berth reads of a container's /etc/hosts or
// resolv.conf (the container can write them): far above any berth writes
// (a few hundred bytes; the resolver reads only 6 search domains and 3
// servers). A larger resolv.conf counts as edited, a larger hosts file is
// built again whole.
const maxEtcFile = 1 << 20

// defaultHostname is the hostname of a container created without one, as
// moby's newContainer picks it: the host's on the host network, else the
// short ID.
func (d *Daemon) defaultHostname(c *container.Container) string {
	if c.Config.NetworkMode == network.NameHost && d.hostname != "" {
		return d.hostname
	}
	return c.ShortID()
}

// writeHosts writes /etc/hosts as moby's buildHostsFile does: localhost
// lines, then the --add-host entries, then the container's own addresses
// with its hostname (and the bare name of a dotted one), so that an
// --add-host for the container's own name comes first and wins. On the
// host network, without --add-host, it is a copy of the host's file.
func (d *Daemon) writeHosts(c *container.Container) error {
	var b strings.Builder
	if host, ok := d.hostHostsFile(c); ok {
		return writeInPlace(c.HostsPath, host)
	}
	// A container with IPv6 turned off gets no IPv6 lines (moby's
	// etchosts.BuildNoIPv6).
	noIPv6 := ipv6Disabled(c)
	b.WriteString("127.0.0.1\tlocalhost\n")
	if !noIPv6 {
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	for _, h := range c.Config.ExtraHosts {
		name, ips := d.extraHost(h)
		for _, ip := range ips {
			if !(noIPv6 && strings.Contains(ip, ":")) {
				fmt.Fprintf(&b, "%s\t%s\n", ip, name)
			}
		}
	}
	// Legacy links next, as moby adds them to the sandbox's extra hosts
	// before the endpoint's own addresses (a connect of a container
	// without links does not take d.mu for them).
	if len(c.Config.Links) > 0 {
		for _, line := range d.linkHostLines(c.ID) {
			b.WriteString(line + "\n")
		}
	}
	if c.State.SandboxID != "" {
		for _, line := range ownHostsLines(c, d.net.Addresses(c.State.SandboxID)) {
			b.WriteString(line + "\n")
		}
	}
	return writeInPlace(c.HostsPath, b.String())
}

// ownHostsLines are the container's lines for its addresses, as moby's
// makeHostsRecs: the FQDN (hostname, and domainname when set), then the
// bare hostname; no IPv6 ones when the container turns IPv6 off.
func ownHostsLines(c *container.Container, addrs []netip.Addr) []string {
	names := c.Config.Hostname
	if c.Config.Domainname != "" {
		names += "." + c.Config.Domainname
	}
	if short, _, dotted := strings.Cut(names, "."); dotted {
		names += " " + short
	}
	noIPv6 := ipv6Disabled(c)
	var lines []string
	for _, a := range addrs {
		if !(noIPv6 && a.Is6()) {
			lines = append(lines, a.String()+"\t"+names)
		}
	}
	return lines
}

// editHosts changes a running container's /etc/hosts line by line, as
// moby's etchosts.Add, Delete and Update do while a container runs (only
// its start builds the file whole): what the container wrote there
// itself stays. edit gets the file's lines (without their newlines) and
// returns the new ones. A file that cannot be read is built again whole;
// the host network's copy of the host's file is left alone.
func (d *Daemon) editHosts(c *container.Container, edit func([]string) []string) error {
	if hostsIsHostCopy(c) {
		return nil
	}
	b, err := readAtMost(c.HostsPath, maxEtcFile)
	if err != nil {
		return d.writeHosts(c)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) == 0 {
		lines = nil
	}
	lines = edit(lines)
	out := strings.Join(lines, "\n")
	if len(lines) > 0 {
		out += "\n"
	}
	return writeInPlace(c.HostsPath, out)
}

// readAtMost reads the file at path, which the container can write; one
// larger than max is an error, found without reading it whole (a sparse
// file of gigabytes would grow the daemon by as much).
func readAtMost(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, err
}

// hostsAdd appends the container's lines for addrs, its addresses on a
// network connected while it runs (moby's etchosts.Add appends them). It
// is on a connect's path: the lines are written at the file's end, after
// a newline if the last line has none, without reading the file.
func (d *Daemon) hostsAdd(c *container.Container, addrs []netip.Addr) error {
	add := ownHostsLines(c, addrs)
	if len(add) == 0 {
		return nil
	}
	if hostsIsHostCopy(c) {
		return nil
	}
	if err := appendLines(c.HostsPath, add); err != nil {
		return d.writeHosts(c)
	}
	return nil
}

// appendLines writes lines at the end of the file at path, which must
// exist, starting a line of their own.
func appendLines(path string, lines []string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	b := make([]byte, 0, 128)
	if st.Size > 0 {
		var last [1]byte
		if n, err := unix.Pread(fd, last[:], st.Size-1); err != nil || n != 1 {
			return fmt.Errorf("read the end of %s: %v", path, err)
		}
		if last[0] != '\n' {
			b = append(b, '\n')
		}
	}
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	return writeAllAt(fd, b, st.Size)
}

// hostsDelete removes the container's lines for addrs, its addresses on
// a network disconnected while it runs: exactly those lines, as moby's
// etchosts.Delete.
func (d *Daemon) hostsDelete(c *container.Container, addrs []netip.Addr) error {
	drop := ownHostsLines(c, addrs)
	if len(drop) == 0 {
		return nil
	}
	return d.editHosts(c, func(lines []string) []string {
		return slices.DeleteFunc(lines, func(l string) bool { return slices.Contains(drop, l) })
	})
}

// hostsSetLinks puts the fresh line of each link alias (its child's new
// address) in place of the alias's line, as moby's UpdateHostsEntry
// changes the address of an alias's line; an alias without a line yet
// (its child had no address on the bridge at the parent's start) gets
// one at the end.
func (d *Daemon) hostsSetLinks(c *container.Container, fresh map[string]string) error {
	if len(fresh) == 0 {
		return nil
	}
	return d.editHosts(c, func(lines []string) []string {
		done := map[string]bool{}
		for i, l := range lines {
			_, names, ok := strings.Cut(l, "\t")
			alias, _, _ := strings.Cut(names, " ")
			if line, found := fresh[alias]; ok && found && !strings.HasPrefix(l, "#") {
				lines[i], done[alias] = line, true
			}
		}
		for _, alias := range slices.Sorted(maps.Keys(fresh)) {
			if !done[alias] {
				lines = append(lines, fresh[alias])
			}
		}
		return lines
	})
}

// ipv6Disabled reports whether the container turns IPv6 off in its
// namespace (--sysctl net.ipv6.conf.all.disable_ipv6=1, or on lo):
// where moby probes the namespace's loopback for an IPv6 address
// (Sandbox.IPv6Enabled), berth reads the setting that would remove it,
// since its endpoints are made before runc applies the sysctls.
func ipv6Disabled(c *container.Container) bool {
	if !kernelIPv6() {
		return true
	}
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.lo.disable_ipv6"} {
		if v, ok := c.Config.Sysctls[k]; ok && strings.TrimSpace(v) == "1" {
			return true
		}
	}
	return false
}

// kernelIPv6 says whether the kernel has IPv6 at all: a host booted
// with ipv6.disable=1 has no /proc/net/if_inet6, and its containers no
// ::1 (moby finds the same by probing the sandbox's loopback, and writes
// no IPv6 lines to /etc/hosts). A var for the tests.
var kernelIPv6 = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/net/if_inet6")
	return err == nil
})

// hostHostsFile is the host's /etc/hosts, with a final newline, for a
// container on the host network without --add-host (one with them gets a
// file of its own, so that they can override the host's names); ok is
// false for other containers or when the file cannot be read (the
// generated lines stand in).
func (d *Daemon) hostHostsFile(c *container.Container) (string, bool) {
	if !hostsIsHostCopy(c) {
		return "", false
	}
	data, err := os.ReadFile(d.hostsFile)
	if err != nil {
		d.log.Warn("reading the host's hosts file for a host-network container", "path", d.hostsFile, "err", err)
		return "", false
	}
	s := string(data)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s, true
}

// hostsIsHostCopy says whether c's /etc/hosts is a copy of the host's
// (the host network without --add-host), which berth never edits.
func hostsIsHostCopy(c *container.Container) bool {
	return c.Config.NetworkMode == network.NameHost && len(c.Config.ExtraHosts) == 0
}

// checkHostGateway refuses to start c when an --add-host entry asks for
// host-gateway and the daemon has no address for it (no --host-gateway-ip
// and no default bridge, under --bridge none), as moby's
// buildSandboxOptions does, in its words.
func (d *Daemon) checkHostGateway(c *container.Container) error {
	for _, h := range c.Config.ExtraHosts {
		if _, ip, _ := strings.Cut(h, ":"); ip == "host-gateway" {
			if _, ips := d.extraHost(h); len(ips) == 0 {
				return errors.New("unable to derive the IP value for host-gateway")
			}
		}
	}
	return nil
}

// extraHost reads one --add-host entry, "name:IP" (checked at create): the
// IP without the brackets an IPv6 address may carry, or for "host-gateway"
// the daemon's --host-gateway-ip addresses, else the default bridge's
// gateway addresses, its IPv4 one and, when it has IPv6, its IPv6 one, as
// Docker 28's default host-gateway-ips are (setHostGatewayIP): a line
// each. None when there is no such address.
func (d *Daemon) extraHost(h string) (name string, ips []string) {
	name, ip, ok := strings.Cut(h, ":")
	if !ok {
		return "", nil
	}
	if ip != "host-gateway" {
		return name, []string{strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")}
	}
	if gws := d.netSettings.hostGateway; len(gws) > 0 {
		for _, a := range gws {
			ips = append(ips, a.String())
		}
		return name, ips
	}
	n, err := d.net.Network(network.NameBridge)
	if err == nil && !d.netSettings.noBridge { // one kept under --bridge none is no one's gateway
		for _, c := range []*network.IPConfig{n.IPv4, n.IPv6} {
			if c != nil && c.Gateway.IsValid() {
				ips = append(ips, c.Gateway.String())
			}
		}
	}
	if len(ips) == 0 {
		d.log.Warn("no host-gateway address for --add-host: the default bridge has no gateway", "entry", h)
	}
	return name, ips
}

// resolvConfFor is the container's /etc/resolv.conf, as Docker writes it
// for its kind of network (resolvconf.go): the resolver's on a
// user-defined network, the host's file on the host network and on none
// (with the container's --dns, --dns-search and --dns-option over it, as
// everywhere), and without the servers a container cannot reach on the
// default bridge.
func (d *Daemon) resolvConfFor(c *container.Container) string {
	if d.dnsRunning(c.State.SandboxID) {
		rc, _, _ := d.resolverConf(c)
		return rc.String()
	}
	if c.Config.NetworkMode == network.NameHost {
		return d.resolv.get().withOverrides(d.dnsSettings(c)).String()
	}
	rc := d.originResolv().withOverrides(d.dnsSettings(c))
	if c.Config.NetworkMode == network.NameNone {
		// The none network's join rewrites the file as any network's
		// without a resolver does (moby's sbJoin → updateDNS, IPv6 off).
		return rc.forLegacy(false).String()
	}
	ipv6 := false
	if d.net != nil { // nil in tests without a network controller
		if n, err := d.net.Network(network.NameBridge); err == nil {
			ipv6 = n.IPv6 != nil
		}
	}
	return rc.forLegacy(ipv6).String()
}

// originResolv is the host configuration a container without a resolver
// starts from (moby's resolvconf.Path): systemd-resolved's list of the
// real servers when the host's file names only its stub, 127.0.0.53,
// which a container cannot reach; else the host's file.
func (d *Daemon) originResolv() resolvConf {
	rc := d.resolv.get()
	if d.resolvSystemd != nil && len(rc.nameservers) == 1 && rc.nameservers[0] == systemdStub {
		return d.resolvSystemd.get()
	}
	return rc
}

var systemdStub = netip.MustParseAddr("127.0.0.53")

// writeInPlace writes in place when the file exists (it may be
// bind-mounted into a running container, and a rename would not show
// there) and creates it otherwise. It writes over the old bytes and then
// cuts the file to length instead of opening with O_TRUNC: ext4 answers a
// truncation to zero followed by a rewrite by flushing the file at close
// (auto_da_alloc), which cost 0.3 ms of every connect. It cuts only a file
// that was longer (an fstat is cheaper than a truncation, which ext4
// journals), and uses the system calls directly: os.OpenFile also tries to
// register a regular file with the runtime's poller. 20-39 µs → 20 µs at
// p50 and 73-85 µs → 28-31 µs at p90 for a small file on ext4, measured
// here (a connect writes /etc/hosts once).
func writeInPlace(path, content string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	err = writeAllAt(fd, []byte(content), 0)
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	if err == nil && st.Size > int64(len(content)) {
		err = unix.Ftruncate(fd, int64(len(content)))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// writeAllAt writes b at offset at of fd, over as many calls as it takes.
func writeAllAt(fd int, b []byte, at int64) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], at+int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}
