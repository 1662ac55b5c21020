package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Throughput runs an iperf3 server in the namespace at serverNS (on addr)
// and a TCP client in clientNS for dur, and returns the receiver's bits
// per second. Both run from the host's iperf3 through nsenter, so the
// container images need not hold it and the packets take the container's
// datapath (its veth, the bridge, the rules).
func Throughput(ctx context.Context, serverNS, clientNS string, addr netip.Addr, dur time.Duration) (float64, error) {
	port := "5201"
	srv := exec.CommandContext(ctx, "nsenter", "--net="+serverNS, "--", "iperf3", "-s", "-1", "-B", addr.String(), "-p", port)
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("start iperf3 server: %w", err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	// iperf3 -t takes whole seconds (and 0 would mean "forever").
	secs := strconv.Itoa(max(int(dur.Round(time.Second)/time.Second), 1))
	// The server needs a moment to listen; the client retries on refusal.
	var bps float64
	var err error
	for range 50 {
		cli := exec.CommandContext(ctx, "nsenter", "--net="+clientNS, "--", "iperf3", "-c", addr.String(), "-p", port, "-t", secs, "-J")
		out, _ := cli.Output() // iperf3 -J reports its errors in the JSON
		if bps, err = parseIperf(out); err == nil || !strings.Contains(err.Error(), "refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return 0, fmt.Errorf("%w (server: %s)", err, strings.TrimSpace(srvOut.String()))
	}
	return bps, nil
}

// parseIperf returns end.sum_received.bits_per_second of iperf3 -J output.
func parseIperf(out []byte) (float64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("parse iperf3 output: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3 reported no throughput")
	}
	return r.End.SumReceived.BitsPerSecond, nil
}
