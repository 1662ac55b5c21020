package api

import (
	"encoding/json"
	"net/http"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/container"
)

// containerStats is docker stats: moby's StatsResponse, one JSON object
// a frame (stream defaults to true, as in moby).
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	stream := true
	if _, ok := r.URL.Query()["stream"]; ok {
		stream = boolValue(r, "stream")
	}
	started := false
	enc := json.NewEncoder(w)
	ctx, stop := s.longPoll(r.Context()) // a stream ends with the server
	defer stop()
	err := s.backend.ContainerStats(ctx, r.PathValue("id"), stream, boolValue(r, "one-shot"), func(f StatsFrame) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if err := enc.Encode(statsResponse(f)); err != nil {
			return err
		}
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		return nil
	})
	if err != nil && started {
		// The answer has begun: nothing to say but to end it.
		s.log.Debug("stats stream ended", "container", r.PathValue("id"), "err", err)
		return nil
	}
	return err
}

// statsResponse is f in moby's shape.
func statsResponse(f StatsFrame) ctypes.StatsResponse {
	out := ctypes.StatsResponse{Name: f.Name, ID: f.ID}
	if f.Empty {
		return out
	}
	st := f.Stats
	out.Read, out.PreRead = st.Read, f.PreRead
	out.CPUStats, out.PreCPUStats = cpuStats(st.CPU), cpuStats(f.PreCPU)
	out.MemoryStats = ctypes.MemoryStats{Usage: st.Memory.Usage, MaxUsage: st.Memory.MaxUsage, Failcnt: st.Memory.Failcnt,
		Limit: st.Memory.Limit, Stats: st.Memory.Stats}
	// Every list, never null, as moby's copyBlkioEntry gives them.
	out.BlkioStats = ctypes.BlkioStats{IoServiceBytesRecursive: blkio(st.IOBytes), IoServicedRecursive: blkio(st.IOOps),
		IoQueuedRecursive: blkio(nil), IoServiceTimeRecursive: blkio(nil), IoWaitTimeRecursive: blkio(nil),
		IoMergedRecursive: blkio(nil), IoTimeRecursive: blkio(nil), SectorsRecursive: blkio(nil)}
	out.PidsStats = ctypes.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	if len(st.Networks) > 0 {
		out.Networks = map[string]ctypes.NetworkStats{}
		for name, n := range st.Networks {
			out.Networks[name] = ctypes.NetworkStats{RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
				TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped}
		}
	}
	return out
}

func cpuStats(c container.CPUStats) ctypes.CPUStats {
	return ctypes.CPUStats{
		CPUUsage:       ctypes.CPUUsage{TotalUsage: c.Total, PercpuUsage: c.PerCPU, UsageInKernelmode: c.Kernel, UsageInUsermode: c.User},
		SystemUsage:    c.System,
		OnlineCPUs:     c.Online,
		ThrottlingData: ctypes.ThrottlingData{Periods: c.Periods, ThrottledPeriods: c.Throttled, ThrottledTime: c.ThrottledTime},
	}
}

// blkio is moby's list of entries: never null, as moby's empty lists.
func blkio(es []container.BlkioEntry) []ctypes.BlkioStatEntry {
	out := []ctypes.BlkioStatEntry{}
	for _, e := range es {
		out = append(out, ctypes.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}
