package floor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/bench/internal/harness"
	"github.com/berth-net/berth/internal/firewall/nftables"
)

// natRedirect is the embedded resolver's redirect as Docker writes it,
// and berth did before session 30: NAT, which turns connection tracking
// on for the whole namespace.
const natRedirect = `table ip berth-dns {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001
		ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40002
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 127.0.0.11 udp sport 40001 snat to :53
		ip saddr 127.0.0.11 tcp sport 40002 snat to :53
	}
}
`

// BenchmarkResolverRedirect: what a container's own traffic pays for the
// embedded resolver's redirect in its namespace. Two namespaces on a
// floor bridge exchange 64 bytes each way, on a new connection each and
// on one connection, with berth's stateless redirect in both and with a
// NAT one (Docker's), the two alternating in blocks of 0.3 s; one
// iteration is one block of each. Reported: each variant's median rate
// and the median of the blocks' ratios (rewrite ÷ nat).
//
//	go test -c -o /tmp/floor.test ./bench/internal/floor &&
//	  unshare --net --mount --fork /tmp/floor.test -test.run '^$' -test.bench ResolverRedirect -test.benchtime 10x
func BenchmarkResolverRedirect(b *testing.B) {
	f, _ := newFloor(b, false)
	var ns [2]string
	for i := range ns {
		ns[i] = newSandbox(b)
		if err := f.Attach(ns[i], endpoint(i)); err != nil {
			b.Fatal(err)
		}
	}
	server := endpoint(0).Address.Addr()
	natFile := filepath.Join(b.TempDir(), "nat.nft")
	if err := os.WriteFile(natFile, []byte(natRedirect), 0o644); err != nil {
		b.Fatal(err)
	}
	nft := func(path string, args ...string) {
		b.Helper()
		if out, err := exec.Command("nsenter", append([]string{"--net=" + path, "--", "nft"}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("nft %v: %v\n%s", args, err, out)
		}
	}
	setRedirect := func(nat bool) {
		b.Helper()
		for _, p := range ns {
			nft(p, "add", "table", "ip", nftables.DNSTableName)
			nft(p, "delete", "table", "ip", nftables.DNSTableName)
			if nat {
				nft(p, "-f", natFile)
			} else if err := nftables.RedirectDNS(p, netip.MustParseAddr("127.0.0.11"), 40001, 40002); err != nil {
				b.Fatal(err)
			}
		}
	}
	const block = 300 * time.Millisecond
	rates := map[string][]float64{}
	b.ResetTimer()
	for i := range b.N {
		for _, nat := range []bool{i%2 == 0, i%2 != 0} {
			setRedirect(nat)
			time.Sleep(50 * time.Millisecond)
			for _, fresh := range []bool{true, false} {
				r, err := harness.Exchanges(context.Background(), ns[0], ns[1], server, block, fresh)
				if err != nil {
					b.Fatal(err)
				}
				key := fmt.Sprintf("%s-%s", map[bool]string{true: "nat", false: "rewrite"}[nat], map[bool]string{true: "conns", false: "trips"}[fresh])
				rates[key] = append(rates[key], r)
			}
		}
	}
	b.StopTimer()
	med := func(xs []float64) float64 {
		s := slices.Sorted(slices.Values(xs))
		return s[len(s)/2]
	}
	for _, kind := range []string{"conns", "trips"} {
		rw, nat := rates["rewrite-"+kind], rates["nat-"+kind]
		ratios := make([]float64, len(rw))
		for i := range rw {
			ratios[i] = rw[i] / nat[i]
		}
		b.ReportMetric(med(rw), "rewrite-"+kind+"/s")
		b.ReportMetric(med(nat), "nat-"+kind+"/s")
		b.ReportMetric(med(ratios), kind+"-ratio")
	}
}
