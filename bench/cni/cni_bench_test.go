// Package cnibench measures berth-cni beside the reference plugins a
// runtime would otherwise chain for the same job: bridge (with host-local
// IPAM, which it runs as a second process) then portmap, from Debian's
// containernetworking-plugins. Each iteration times one ADD and one DEL of
// a container with one published port on each side, alternating, in the
// same namespace, and reports both and their ratio.
//
// Run it as root in a private namespace (the namespace the bench runs in is
// the "host" both sides configure):
//
//	apt-get install containernetworking-plugins
//	go build -o /tmp/berth-cni ./cmd/berth-cni
//	BERTH_CNI_BIN=/tmp/berth-cni unshare --net --mount --fork -- bash -c \
//	  'ip link set lo up; go test -run "^$" -bench . -benchtime 100x ./bench/cni/'
//
// Figures are printed (b.ReportMetric), never asserted.
package cnibench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/testworld"
)

// refDir is where Debian's containernetworking-plugins puts the plugins.
const refDir = "/usr/lib/cni"

type plugin struct {
	bin, path string
}

// call runs one plugin command and returns its stdout.
func (p plugin) call(b *testing.B, cmd, id, netns, conf string) []byte {
	c := exec.Command(p.bin)
	c.Env = append(os.Environ(), "CNI_COMMAND="+cmd, "CNI_CONTAINERID="+id, "CNI_NETNS="+netns, "CNI_IFNAME=eth0", "CNI_PATH="+p.path)
	c.Stdin = bytes.NewReader([]byte(conf))
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		b.Fatalf("%s %s %s: %v\n%s%s", filepath.Base(p.bin), cmd, id, err, out.String(), errOut.String())
	}
	return out.Bytes()
}

func BenchmarkAddDelOnePublishedPort(b *testing.B) {
	nstest.RequireRoot(b)
	if _, err := os.Stat(filepath.Join(refDir, "bridge")); err != nil {
		nstest.Unavailable(b, "the reference plugins are not installed (apt-get install containernetworking-plugins)")
	}
	berthBin := testworld.CNIBinary(b)
	ns := nstest.New(b)
	dir := b.TempDir()
	ports := `"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}`
	berthConf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bnet","type":"berth-cni","bridge":"berth0","isGateway":true,"isDefaultGateway":true,
		"ipMasq":true,"dataDir":%q,"capabilities":{"portMappings":true},%s,"ipam":{"type":"host-local","subnet":"10.77.0.0/16"}}`,
		filepath.Join(dir, "berth"), ports)
	bridgeConf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rnet","type":"bridge","bridge":"ref0","isGateway":true,"isDefaultGateway":true,
		"ipMasq":true,"ipam":{"type":"host-local","subnet":"10.78.0.0/16","dataDir":%q}}`, filepath.Join(dir, "ref"))
	portmapConf := func(prev []byte) string {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rnet","type":"portmap","capabilities":{"portMappings":true},%s,"prevResult":%s}`, ports, prev)
	}
	berth := plugin{berthBin, filepath.Dir(berthBin)}
	bridge, portmap := plugin{filepath.Join(refDir, "bridge"), refDir}, plugin{filepath.Join(refDir, "portmap"), refDir}

	var bAdd, bDel, rAdd, rDel []time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("c%d", i)
		berthFirst := i%2 == 0
		for side := range 2 {
			if (side == 0) == berthFirst {
				t0 := time.Now()
				berth.call(b, "ADD", id, ns, berthConf)
				t1 := time.Now()
				berth.call(b, "DEL", id, ns, berthConf)
				bAdd, bDel = append(bAdd, t1.Sub(t0)), append(bDel, time.Since(t1))
				continue
			}
			t0 := time.Now()
			res := bridge.call(b, "ADD", id, ns, bridgeConf)
			var prev json.RawMessage = res
			portmap.call(b, "ADD", id, ns, portmapConf(prev))
			t1 := time.Now()
			portmap.call(b, "DEL", id, ns, portmapConf(prev))
			bridge.call(b, "DEL", id, ns, bridgeConf)
			rAdd, rDel = append(rAdd, t1.Sub(t0)), append(rDel, time.Since(t1))
		}
	}
	med := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(med(bAdd), "berth-add-ms")
	b.ReportMetric(med(rAdd), "ref-add-ms")
	b.ReportMetric(med(bDel), "berth-del-ms")
	b.ReportMetric(med(rDel), "ref-del-ms")
	b.ReportMetric(med(bAdd)/med(rAdd), "add-ratio")
	b.ReportMetric(med(bDel)/med(rDel), "del-ratio")
}
