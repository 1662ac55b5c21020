package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"

	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

// DNSTableName is the table RedirectDNS writes inside a container's
// namespace (never the host's).
const DNSTableName = "berth-dns"

// RedirectDNS makes 127.0.0.11:53 inside the network namespace at
// netnsPath lead to the embedded resolver's sockets, which listen on
// 127.0.0.11 at udpPort and tcpPort (ports the kernel picked), as Docker
// does with iptables (libnetwork resolver_linux.go): port 53 stays free for
// the container's own use, a DNS server of its own included. The rules
// replace any earlier table whole (a restarted daemon's resolver has new
// ports; an older berth's table was a NAT chain):
//
//	table ip berth-dns {
//		chain output {
//			type filter hook output priority raw; policy accept;
//			<a UDP query without a checksum, see dnsRules>
//			ip daddr 127.0.0.11 udp dport 53 udp dport set <udpPort>
//			ip daddr 127.0.0.11 tcp dport 53 tcp dport set <tcpPort>
//		}
//		chain postrouting {
//			type filter hook postrouting priority srcnat; policy accept;
//			ip saddr 127.0.0.11 udp sport <udpPort> udp sport set 53
//			ip saddr 127.0.0.11 tcp sport <tcpPort> tcp sport set 53
//			<a refusal of a UDP query, see dnsRules>
//		}
//	}
//
// The ports are rewritten in place, without state, where Docker (and
// berth before) DNATs the queries and SNATs the answers. A NAT rule
// turns connection tracking on for the whole namespace: every flow the
// container makes, to anywhere, then gets a conntrack entry in its own
// namespace on top of the host's, and pays for it on every packet
// (BenchmarkResolverRedirect in bench/internal/floor: 64-byte exchanges
// between two namespaces make 8–18 % more new connections a second
// without it, 0–6 % more round trips on one). With these rules nothing
// in the namespace asks for tracking.
// The query's port is rewritten before conntrack's output hook (raw) and
// the answer's after it (srcnat), so that where the container turns
// tracking on itself both directions read as one flow, between the
// client and the resolver's own port, and its filter chains see what
// Docker's rules let them see: the resolver's port on the way out, 53
// on the way in.
func RedirectDNS(netnsPath string, resolver netip.Addr, udpPort, tcpPort uint16) error {
	if netnsPath == "" {
		return fmt.Errorf("DNS redirect: no namespace")
	}
	err := sandbox.Do(netnsPath, func() error { return RedirectDNSHere(resolver, udpPort, tcpPort) })
	if err != nil {
		return fmt.Errorf("in %q: %w", netnsPath, err)
	}
	return nil
}

// RedirectDNSHere is RedirectDNS in the network namespace of the calling
// thread, which must stay in it meanwhile (one sandbox.Do runs): the
// resolver makes its sockets and their redirect in one visit.
func RedirectDNSHere(resolver netip.Addr, udpPort, tcpPort uint16) error {
	sock, err := openQuietSocket()
	if err != nil {
		return err
	}
	defer sock.close()
	t := dnsTable()
	// A container's first resolver finds no table: it is created, and a
	// table already there fails the batch. Only then is the table
	// deleted and made anew in one batch, whatever chains it had,
	// because deleting a base chain waits for the kernel's RCU grace
	// period (14 ms here, against 0.4 ms for the whole batch without).
	var b quietBatch
	b.newTable(t, true)
	addDNSRedirect(&b, t, resolver, udpPort, tcpPort)
	err = sock.send(&b)
	if errors.Is(err, unix.EEXIST) {
		b = quietBatch{}
		b.newTable(t, false)
		b.delTable(t)
		b.newTable(t, false)
		addDNSRedirect(&b, t, resolver, udpPort, tcpPort)
		err = sock.send(&b)
	}
	if err != nil {
		return fmt.Errorf("redirect %s:53 to the resolver: %w", resolver, err)
	}
	return nil
}

// addDNSRedirect adds RedirectDNS's chains and rules to table t, which is
// empty, to the batch b.
func addDNSRedirect(b *quietBatch, t *nftlib.Table, resolver netip.Addr, udpPort, tcpPort uint16) {
	policy := nftlib.ChainPolicyAccept
	for _, hook := range dnsHooks {
		c := &nftlib.Chain{Name: hook.name, Table: t, Type: nftlib.ChainTypeFilter,
			Hooknum: hook.hook, Priority: hook.prio, Policy: &policy}
		b.newChain(c)
		for _, exprs := range dnsRules(resolver, udpPort, tcpPort, hook.answers) {
			b.appendRule(c, exprs)
		}
	}
}

// dnsHooks are the chains of RedirectDNS's table: the queries' and the
// answers'.
var dnsHooks = []struct {
	name    string
	hook    *nftlib.ChainHook
	prio    *nftlib.ChainPriority
	answers bool
}{
	{"output", nftlib.ChainHookOutput, nftlib.ChainPriorityRaw, false},
	{"postrouting", nftlib.ChainHookPostrouting, nftlib.ChainPriorityNATSource, true},
}

// UnredirectDNS removes RedirectDNS's table from the namespace at
// netnsPath, if it is there: a container whose first resolver was made
// for a connect that then failed is left as it was.
func UnredirectDNS(netnsPath string) error {
	if netnsPath == "" {
		return fmt.Errorf("DNS redirect: no namespace")
	}
	return sandbox.Do(netnsPath, func() error {
		sock, err := openQuietSocket()
		if err != nil {
			return err
		}
		defer sock.close()
		var b quietBatch
		t := dnsTable()
		b.newTable(t, false)
		b.delTable(t) // added first: no error when it was missing
		if err := sock.send(&b); err != nil {
			return fmt.Errorf("remove the DNS redirect in %q: %w", netnsPath, err)
		}
		return nil
	})
}

// dnsTable is the DNS redirect's table.
func dnsTable() *nftlib.Table {
	return &nftlib.Table{Family: nftlib.TableFamilyIPv4, Name: DNSTableName}
}

// dnsRules are the rules of RedirectDNS's chain for the queries, or with
// answers its chain for the answers. The third of these gives a refusal
// its port back: a query to a resolver that is gone (a killed daemon's,
// until the next one serves) is answered by the kernel with an ICMP port
// unreachable that quotes the rewritten port, which the client's socket,
// connected to port 53, would not take, and its lookup would wait out
// its timeout (5 s in glibc) where Docker's is refused at once:
//
//	ip saddr A icmp type destination-unreachable icmp code port-unreachable
//		@th,64,8 0x45 @th,136,8 17 @th,192,32 A @th,240,16 udpPort @th,240,16 set 53
//
// (the quoted IPv4 header without options, for UDP to A from udpPort).
func dnsRules(a netip.Addr, udpPort, tcpPort uint16, answers bool) [][]expr.Any {
	addr := a.As4()
	be := binaryutil.BigEndian.PutUint16
	if !answers {
		// A UDP query sent without a checksum (0: SO_NO_CHECK) keeps
		// none: the kernel's update would make a wrong one of it, and
		// the query would be dropped as corrupt. NAT leaves it alone
		// too. First, so that the rule after it, which mends the
		// checksum, no longer matches the rewritten port.
		unchecked := portRewrite(addr, unix.IPPROTO_UDP, 16, 2, 53, udpPort)
		write := unchecked[len(unchecked)-1].(*expr.Payload)
		write.CsumType, write.CsumOffset = expr.CsumTypeNone, 0
		unchecked = slices.Insert(unchecked, len(unchecked)-2, []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 6, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be(0)},
		}...)
		return [][]expr.Any{
			unchecked,
			portRewrite(addr, unix.IPPROTO_UDP, 16, 2, 53, udpPort),
			portRewrite(addr, unix.IPPROTO_TCP, 16, 2, 53, tcpPort),
		}
	}
	th := func(offset, n uint32, want []byte) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want},
		}
	}
	refused := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMP}},
	}
	refused = append(refused, th(0, 2, []byte{3, 3})...) // destination unreachable, port unreachable
	refused = append(refused, th(8, 1, []byte{0x45})...)
	refused = append(refused, th(17, 1, []byte{unix.IPPROTO_UDP})...)
	refused = append(refused, th(24, 4, addr[:])...)
	refused = append(refused, th(30, 2, be(udpPort))...)
	refused = append(refused,
		&expr.Immediate{Register: 1, Data: be(53)},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseTransportHeader,
			Offset: 30, Len: 2, CsumType: expr.CsumTypeInet, CsumOffset: 2}) // the ICMP checksum
	return [][]expr.Any{
		portRewrite(addr, unix.IPPROTO_UDP, 12, 0, udpPort, 53),
		portRewrite(addr, unix.IPPROTO_TCP, 12, 0, tcpPort, 53),
		refused,
	}
}

// portRewrite is "ip daddr A <proto> dport FROM <proto> dport set TO"
// (addrAt 16, portAt 2), or the same of saddr and sport (12, 0); the
// kernel mends the checksum.
func portRewrite(addr [4]byte, proto byte, addrAt, portAt uint32, from, to uint16) []expr.Any {
	csumAt := uint32(6) // the UDP checksum's offset in its header
	if proto == unix.IPPROTO_TCP {
		csumAt = 16
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrAt, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portAt, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(from)},
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(to)},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseTransportHeader,
			Offset: portAt, Len: 2, CsumType: expr.CsumTypeInet, CsumOffset: csumAt},
	}
}

// DNSRedirected returns the ports the redirect RedirectDNS wrote in the
// namespace at netnsPath points at, if its table is exactly what
// RedirectDNS makes (its two chains, their two rules each for resolver,
// ports not 0); ok is false otherwise: no table yet, an older berth's
// NAT chain, or one changed from inside the container (another chain, a
// drop policy), which RedirectDNS must write again. A re-adopted
// container's resolver listens on those ports if it can and leaves the
// redirect as it is: no commit in the namespace.
func DNSRedirected(netnsPath string, resolver netip.Addr) (udpPort, tcpPort uint16, ok bool) {
	if netnsPath == "" {
		return 0, 0, false
	}
	// One socket for the four requests below: otherwise each makes its
	// own in the namespace (0.64 → 0.41–0.45 ms a call here).
	conn, done, err := dial(netnsPath, nftlib.AsLasting())
	if err != nil {
		return 0, 0, false
	}
	defer done()
	defer conn.CloseLasting()
	// A dormant table (flags set from inside the container) redirects
	// nothing.
	t, err := conn.ListTableOfFamily(DNSTableName, nftlib.TableFamilyIPv4)
	if err != nil || t.Flags != 0 {
		return 0, 0, false
	}
	chains, err := conn.ListChainsOfTableFamily(nftlib.TableFamilyIPv4)
	if err != nil {
		return 0, 0, false
	}
	var own []*nftlib.Chain
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == DNSTableName {
			own = append(own, c)
		}
	}
	if len(own) != len(dnsHooks) {
		return 0, 0, false
	}
	var ports [2]uint16
	for _, hook := range dnsHooks { // the queries' chain first: it gives the ports
		i := slices.IndexFunc(own, func(c *nftlib.Chain) bool { return c.Name == hook.name })
		if i < 0 || !isDNSChain(own[i], hook.hook, hook.prio) {
			return 0, 0, false
		}
		rules, err := conn.GetRules(t, own[i])
		if err != nil {
			return 0, 0, false
		}
		if !hook.answers && len(rules) == 3 {
			ports = [2]uint16{queryPort(rules[1].Exprs), queryPort(rules[2].Exprs)}
		}
		want := dnsRules(resolver, ports[0], ports[1], hook.answers)
		if ports[0] == 0 || ports[1] == 0 || len(rules) != len(want) {
			return 0, 0, false
		}
		for j := range want {
			if !reflect.DeepEqual(rules[j].Exprs, want[j]) {
				return 0, 0, false
			}
		}
	}
	return ports[0], ports[1], true
}

// isDNSChain reports whether c is a chain RedirectDNS makes on hook at
// priority prio.
func isDNSChain(c *nftlib.Chain, hook *nftlib.ChainHook, prio *nftlib.ChainPriority) bool {
	return c.Type == nftlib.ChainTypeFilter &&
		c.Hooknum != nil && *c.Hooknum == *hook &&
		c.Priority != nil && *c.Priority == *prio &&
		c.Policy != nil && *c.Policy == nftlib.ChainPolicyAccept
}

// queryPort is the port a query's dnsRewrite rule writes, or 0.
func queryPort(exprs []expr.Any) uint16 {
	for _, e := range exprs {
		if im, ok := e.(*expr.Immediate); ok && im.Register == 1 && len(im.Data) == 2 {
			return binaryutil.BigEndian.Uint16(im.Data)
		}
	}
	return 0
}
