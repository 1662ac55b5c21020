package api

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime/image"
)

// fakeBackend is an in-memory Backend. It records every mutating call in
// mutations so tests can assert that a rejected request changed nothing,
// and lets tests replace the streaming calls with hooks.
type fakeBackend struct {
	events *events.Log
	mu     sync.Mutex
	info   SystemInfo
	// networkDefaults are NetworkCreateDefaults by driver.
	networkDefaults map[string]map[string]string
	// createWarnings are CreateContainer's warnings.
	createWarnings []string
	networks       []*network.Network
	endpoints      map[string][]*network.Endpoint // by network ID
	containers     []*container.Container
	attachments    map[string][]network.Attachment // by container ID
	links          map[string]LinkNames            // by container ID
	execIDs        map[string][]string             // by container ID: ContainerExecIDs
	linkNames      map[string]string               // a legacy link's name → the child's name
	images         []*image.Image
	execs          map[string]*ExecInfo
	mutations      []string
	volumes        map[string]VolumeInfo

	rec fakeRecord // what the last calls asked for; guarded by mu

	// Hooks for streams and waits; nil means a trivial default.
	wait      func(ctx context.Context, ref, cond string) (<-chan WaitResult, error)
	startExec func(ctx context.Context, id string, detach bool, s Streams) error
	attach    func(ctx context.Context, ref string, s Streams) error
	logs      func(ctx context.Context, ref string, o LogsOptions, stdout, stderr io.Writer) error
}

// fakeRecord is what the fake's last mutating calls were given.
type fakeRecord struct {
	NetworkCreate   network.CreateRequest
	ContainerCreate container.Config
	ContainerUpdate container.ContainerUpdate
	Connect         container.EndpointRequest
	Stop            stopCall
	ImportedBody    []byte
	Extract         extractCall
	Explain         network.ExplainRequest
	Commit          CommitOptions
	CommitRef       string
	Build           BuildOptions
	BuildBody       []byte
}

// extractCall is what ContainerExtractToDir was given.
type extractCall struct {
	Ref, Path                        string
	CopyUIDGID, NoOverwriteDirNonDir bool
	Body                             string
}

// recorded returns what the last calls were given; the server's handler
// goroutines write it, so tests read it under the lock.
func (f *fakeBackend) recorded() fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rec
}

func (f *fakeBackend) record(fn func(r *fakeRecord)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.rec)
}

type stopCall struct {
	Ref     string
	Timeout *int
	Signal  string
}

var fakeTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func hexID(seed string) string {
	return strings.Repeat(seed, 64)[:64]
}

// newFakeBackend holds the three predefined networks, a user network "web"
// and two running containers: c1 on bridge, c2 on web.
func newFakeBackend() *fakeBackend {
	bridge := &network.Network{
		ID: hexID("32b93b141bae"), Name: "bridge", Driver: "bridge", Created: fakeTime, Predefined: true,
		IPv4: &network.IPConfig{Subnet: netip.MustParsePrefix("172.17.0.0/16"), Gateway: netip.MustParseAddr("172.17.0.1")},
		Options: map[string]string{
			network.OptDefaultBridge: "true", network.OptEnableICC: "true", network.OptEnableMasq: "true",
			network.OptHostBindingIPv4: "0.0.0.0", network.OptBridgeName: "berth0", network.OptMTU: "1500",
		},
	}
	host := &network.Network{ID: hexID("c363d9a92877"), Name: "host", Driver: "host", Created: fakeTime, Predefined: true}
	none := &network.Network{ID: hexID("88077db743a8"), Name: "none", Driver: "null", Created: fakeTime, Predefined: true}
	web := &network.Network{
		ID: hexID("aa11"), Name: "web", Driver: "bridge", Created: fakeTime,
		IPv4:   &network.IPConfig{Subnet: netip.MustParsePrefix("10.5.0.0/24"), Gateway: netip.MustParseAddr("10.5.0.1"), UserSubnet: true},
		Labels: map[string]string{"env": "test"},
	}
	c1 := &container.Container{
		ID: hexID("4fea95f2e979"), Name: "test1", Created: fakeTime,
		Config: container.Config{
			Image: "busybox", ImageID: "sha256:" + hexID("b0"), Cmd: []string{"sleep", "1000"},
			Hostname: "4fea95f2e979", NetworkMode: "bridge", ExposedPorts: []string{"80/tcp"},
			Networks: map[string]container.EndpointRequest{"bridge": {}},
		},
		State: container.State{
			Status: container.StatusRunning, Pid: 3090, StartedAt: fakeTime.Add(time.Second),
			SandboxID: hexID("572d8e7abcb2"), SandboxKey: "/run/berth/netns/572d8e7abcb2",
		},
		HostsPath: "/var/lib/berth/containers/4fea/hosts",
	}
	c2 := &container.Container{
		ID: hexID("8975cb01d142"), Name: "test2", Created: fakeTime.Add(time.Minute),
		Config: container.Config{
			Image: "busybox", ImageID: "sha256:" + hexID("b0"), Cmd: []string{"sh"}, Hostname: "8975cb01d142",
			NetworkMode: "web", Labels: map[string]string{"role": "db"},
			Networks: map[string]container.EndpointRequest{"web": {IPv4Address: netip.MustParseAddr("10.5.0.10"), Aliases: []string{"db"}}},
		},
		State: container.State{Status: container.StatusRunning, Pid: 4242, StartedAt: fakeTime.Add(time.Minute),
			SandboxID: hexID("99aa"), SandboxKey: "/run/berth/netns/99aa"},
	}
	ep1 := &network.Endpoint{
		ID: hexID("e1"), Name: "test1", NetworkID: bridge.ID, ContainerID: c1.ID, IfName: "eth0", HostIfName: "veth6a5ae6f",
		MAC: mustMAC("02:42:ac:11:00:02"), Address: netip.MustParsePrefix("172.17.0.2/16"),
		Gateway: netip.MustParseAddr("172.17.0.1"), State: network.EndpointReady,
	}
	ep2 := &network.Endpoint{
		ID: hexID("e2"), Name: "test2", NetworkID: web.ID, ContainerID: c2.ID, IfName: "eth0", HostIfName: "vethc16e6c8",
		MAC: mustMAC("02:42:0a:05:00:0a"), Address: netip.MustParsePrefix("10.5.0.10/24"),
		Gateway: netip.MustParseAddr("10.5.0.1"), StaticIP: true, Aliases: []string{"db"}, State: network.EndpointReady,
	}
	return &fakeBackend{
		events: events.New(nil),
		info: SystemInfo{
			ID: "BERTH:TEST", Name: "testhost", Containers: 2, Running: 2, Images: 1,
			DataRoot: "/var/lib/berth", ExecRoot: "/run/berth", KernelVersion: "6.1.0-test",
			OperatingSystem: "Debian GNU/Linux 12 (bookworm)", Architecture: "x86_64", NCPU: 4,
			MemTotal: 8 << 30, RuncVersion: "1.1.5",
		},
		networks:    []*network.Network{bridge, host, none, web},
		endpoints:   map[string][]*network.Endpoint{bridge.ID: {ep1}, web.ID: {ep2}},
		containers:  []*container.Container{c1, c2},
		attachments: map[string][]network.Attachment{c1.ID: {{Network: bridge, Endpoint: ep1}}, c2.ID: {{Network: web, Endpoint: ep2}}},
		images: []*image.Image{{
			ID: "sha256:" + hexID("b0"), RepoTags: []string{"busybox:latest", "reg.example:5000/team/busybox:1.36"},
			Created: fakeTime, Size: 2 << 20, RootfsDir: "/var/lib/berth/images/b0",
		}},
		execs: map[string]*ExecInfo{},
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func (f *fakeBackend) mutated(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutations = append(f.mutations, fmt.Sprintf(format, args...))
}

func (f *fakeBackend) Mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.mutations...)
}

func (f *fakeBackend) SystemInfo(context.Context) (SystemInfo, error) { return f.info, nil }

func (f *fakeBackend) NetworkCreateDefaults(driver string) map[string]string {
	return f.networkDefaults[driver]
}

func (f *fakeBackend) Events(since time.Time) ([]events.Event, <-chan events.Event, func()) {
	return f.events.Subscribe(since)
}

func (f *fakeBackend) Networks(context.Context) ([]*network.Network, error) {
	return append([]*network.Network(nil), f.networks...), nil
}

func (f *fakeBackend) Network(_ context.Context, ref string) (*network.Network, error) {
	for _, n := range f.networks {
		if n.ID == ref || n.Name == ref {
			return n, nil
		}
	}
	for _, n := range f.networks {
		if len(ref) >= 3 && strings.HasPrefix(n.ID, ref) {
			return n, nil
		}
	}
	return nil, errdefs.NotFound("network %s not found", ref)
}

func (f *fakeBackend) NetworkEndpoints(_ context.Context, id string) ([]*network.Endpoint, error) {
	return f.endpoints[id], nil
}

func (f *fakeBackend) CreateNetwork(_ context.Context, req network.CreateRequest) (*network.Network, error) {
	if _, err := f.Network(context.Background(), req.Name); err == nil {
		return nil, errdefs.Conflict("network with name %s already exists", req.Name)
	}
	f.mutated("CreateNetwork %s", req.Name)
	f.record(func(r *fakeRecord) { r.NetworkCreate = req })
	n := &network.Network{ID: hexID("5e"), Name: req.Name, Driver: "bridge"}
	if req.Name == "vpn" {
		n.Warnings = []string{"route 10.8.0.0/16 dev tun0 overlaps network \"vpn\" (10.8.0.0/16)"}
	}
	return n, nil
}

func (f *fakeBackend) RemoveNetwork(ctx context.Context, ref string) error {
	n, err := f.Network(ctx, ref)
	if err != nil {
		return err
	}
	if n.Predefined {
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	f.mutated("RemoveNetwork %s", n.Name)
	return nil
}

func (f *fakeBackend) ConnectNetwork(ctx context.Context, netRef, ctrRef string, req container.EndpointRequest) error {
	if _, err := f.Network(ctx, netRef); err != nil {
		return err
	}
	if _, err := f.Container(ctx, ctrRef); err != nil {
		return err
	}
	f.mutated("ConnectNetwork %s %s", netRef, ctrRef)
	f.record(func(r *fakeRecord) { r.Connect = req })
	return nil
}

func (f *fakeBackend) DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error {
	if _, err := f.Network(ctx, netRef); err != nil {
		return err
	}
	f.mutated("DisconnectNetwork %s %s %v", netRef, ctrRef, force)
	return nil
}

// Explain records the request and explains every packet as dropped by
// one rule.
func (f *fakeBackend) Explain(_ context.Context, req network.ExplainRequest) (network.Explanation, error) {
	f.mu.Lock()
	f.rec.Explain = req
	f.mu.Unlock()
	if req.From == "ghost" {
		return network.Explanation{}, errdefs.NotFound("No such container: ghost")
	}
	step := firewall.Step{Hook: "prerouting", Chain: "direct__berth0", Rule: "counter drop", Effect: "drop"}
	return network.Explanation{From: req.From, To: req.To, Explanation: firewall.Explanation{
		Packet: "tcp 198.51.100.7 → 172.17.0.2:80 in on eth0", Outcome: firewall.Dropped, Decision: &step, Steps: []firewall.Step{step}}}, nil
}

func (f *fakeBackend) PruneNetworks(_ context.Context, pf network.PruneFilter) ([]string, error) {
	f.mutated("PruneNetworks %v", pf.Labels)
	if len(pf.NotLabels) > 0 {
		f.mutated("PruneNetworks not %v", pf.NotLabels)
	}
	if !pf.Until.IsZero() {
		f.mutated("PruneNetworks until %s", pf.Until.UTC().Format(time.RFC3339))
	}
	return []string{"web"}, nil
}

func (f *fakeBackend) CreateContainer(ctx context.Context, name string, cfg container.Config) (*container.Container, []string, error) {
	if _, err := f.Image(ctx, cfg.Image); err != nil {
		return nil, nil, err
	}
	if c, err := f.Container(ctx, name); err == nil && c.Name == name {
		return nil, nil, errdefs.Conflict("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, c.ID)
	}
	f.mutated("CreateContainer %s", name)
	c := &container.Container{ID: hexID("c0ffee"), Name: name, Created: fakeTime, Config: cfg,
		State: container.State{Status: container.StatusCreated}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rec.ContainerCreate = cfg
	f.containers = append(f.containers, c)
	return c, f.createWarnings, nil
}

func (f *fakeBackend) Containers(context.Context) ([]*container.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*container.Container(nil), f.containers...), nil
}

func (f *fakeBackend) Container(_ context.Context, ref string) (*container.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if child, ok := f.linkNames[ref]; ok {
		ref = child
	}
	for _, c := range f.containers {
		if c.ID == ref || c.Name == ref || (len(ref) >= 2 && strings.HasPrefix(c.ID, ref)) {
			return c, nil
		}
	}
	return nil, errdefs.NotFound("No such container: %s", ref)
}

func (f *fakeBackend) ContainerAttachments(_ context.Context, id string) ([]network.Attachment, error) {
	return f.attachments[id], nil
}

func (f *fakeBackend) ListedAttachments(_ context.Context, c *container.Container) []network.Attachment {
	return f.attachments[c.ID]
}

func (f *fakeBackend) StartContainer(ctx context.Context, ref string) error {
	c, err := f.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.Running() {
		return errdefs.NotModified("container %s is already running", ref)
	}
	f.mutated("StartContainer %s", ref)
	return nil
}

func (f *fakeBackend) StopContainer(ctx context.Context, ref string, timeout *int, signal string) error {
	if _, err := f.Container(ctx, ref); err != nil {
		return err
	}
	f.mutated("StopContainer %s", ref)
	f.record(func(r *fakeRecord) { r.Stop = stopCall{Ref: ref, Timeout: timeout, Signal: signal} })
	return nil
}

func (f *fakeBackend) KillContainer(ctx context.Context, ref, signal string) error {
	if _, err := f.Container(ctx, ref); err != nil {
		return err
	}
	f.mutated("KillContainer %s %s", ref, signal)
	return nil
}

func (f *fakeBackend) RenameContainer(ctx context.Context, ref, name string) error {
	if _, err := f.Container(ctx, ref); err != nil {
		return err
	}
	f.mutated("RenameContainer %s %s", ref, name)
	return nil
}

func (f *fakeBackend) TopContainer(ctx context.Context, ref, psArgs string) (container.Top, error) {
	if _, err := f.Container(ctx, ref); err != nil {
		return container.Top{}, err
	}
	return container.Top{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"1", "sleep " + psArgs}}}, nil
}

func (f *fakeBackend) ContainerChanges(ctx context.Context, ref string) ([]container.Change, error) {
	if _, err := f.Container(ctx, ref); err != nil {
		return nil, err
	}
	return []container.Change{{Path: "/tmp", Kind: container.ChangeModified}, {Path: "/tmp/new", Kind: container.ChangeAdded}}, nil
}

// fakeHosts is the one path the fake's containers have for docker cp.
var fakeHosts = container.PathStat{Name: "hosts", Size: 5, Mode: 0o644, Mtime: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}

func (f *fakeBackend) ContainerStatPath(ctx context.Context, ref, path string) (container.PathStat, error) {
	if _, err := f.Container(ctx, ref); err != nil {
		return container.PathStat{}, err
	}
	if path != "/etc/hosts" {
		return container.PathStat{}, errdefs.NotFound("Could not find the file %s in container %s", path, ref)
	}
	return fakeHosts, nil
}

func (f *fakeBackend) ContainerArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error) {
	st, err := f.ContainerStatPath(ctx, ref, path)
	if err != nil {
		return nil, st, err
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "hosts", Mode: 0o644, Size: 5, ModTime: st.Mtime}); err != nil {
		return nil, st, err
	}
	if _, err := tw.Write([]byte("hosts")); err != nil {
		return nil, st, err
	}
	return io.NopCloser(&b), st, tw.Close()
}

func (f *fakeBackend) ContainerExtractToDir(ctx context.Context, ref, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error {
	if _, err := f.Container(ctx, ref); err != nil {
		return err
	}
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rec.Extract = extractCall{ref, path, copyUIDGID, noOverwriteDirNonDir, string(b)}
	return nil
}

func (f *fakeBackend) TagImage(ctx context.Context, ref, repo, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range f.images {
		if img.ID == ref || slices.Contains(img.RepoTags, ref) || slices.Contains(img.RepoTags, ref+":latest") {
			img.RepoTags = append(img.RepoTags, repo+":"+tag)
			f.mutations = append(f.mutations, "TagImage "+ref+" "+repo+":"+tag)
			return nil
		}
	}
	return errdefs.NotFound("No such image: %s", ref)
}

func (f *fakeBackend) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	for _, ref := range refs {
		if _, err := f.Image(ctx, ref); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "ARCHIVE OF "+strings.Join(refs, " "))
	return err
}

func (f *fakeBackend) LoadImages(ctx context.Context, r io.Reader, keep image.PlatformMatch) ([]image.Loaded, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if keep != nil && !keep("linux", "amd64", "") {
		return nil, nil // the fake's archive holds an amd64 image
	}
	if string(b) == "SAVED OVER" {
		return []image.Loaded{{Image: &image.Image{ID: "sha256:" + hexID("c0")}, Tags: []string{"web:1", "web:2"}, Replaced: []string{"sha256:" + hexID("c9"), ""}}}, nil
	}
	if string(b) != "SAVED" {
		return nil, errdefs.Invalid("invalid archive: no manifest.json")
	}
	return []image.Loaded{{Image: &image.Image{ID: "sha256:" + hexID("c0")}, Tags: []string{"web:1"}}, {Image: &image.Image{ID: "sha256:" + hexID("c1")}}}, nil
}

func (f *fakeBackend) ContainerExport(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, _, err := f.ContainerArchivePath(ctx, ref, "/etc/hosts")
	return rc, err
}

func (f *fakeBackend) ContainerSize(ctx context.Context, ref string) (int64, int64, error) {
	if _, err := f.Container(ctx, ref); err != nil {
		return 0, 0, err
	}
	return 12, 1012, nil
}

func (f *fakeBackend) ContainerStats(ctx context.Context, ref string, stream, oneShot bool, emit func(StatsFrame) error) error {
	c, err := f.Container(ctx, ref)
	if err != nil {
		return err
	}
	if stream && oneShot {
		return errdefs.Invalid("cannot have stream=true and one-shot=true")
	}
	frame := StatsFrame{Name: "/" + c.Name, ID: c.ID, Stats: container.Stats{
		Read:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		CPU:      container.CPUStats{Total: 2000, System: 100000, Online: 2},
		Memory:   container.MemoryStats{Usage: 4096, Limit: 1 << 20, Stats: map[string]uint64{"inactive_file": 1024}},
		Pids:     container.PidsStats{Current: 3},
		IOBytes:  []container.BlkioEntry{{Major: 8, Op: "read", Value: 512}},
		Networks: map[string]container.NetStats{"eth0": {RxBytes: 10, TxBytes: 20}},
	}}
	n := 1
	if stream {
		n = 2
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			frame.PreCPU = frame.Stats.CPU
		}
		if err := emit(frame); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeBackend) PauseContainer(ctx context.Context, ref string) error {
	if _, err := f.Container(ctx, ref); err != nil {
		return err
	}
	f.mutated("PauseContainer %s", ref)
	return nil
}

func (f *fakeBackend) UnpauseContainer(ctx context.Context, ref string) error {
	if _, err := f.Container(ctx, ref); err != nil {
		return err
	}
	f.mutated("UnpauseContainer %s", ref)
	return nil
}

func (f *fakeBackend) UpdateContainer(ctx context.Context, ref string, u container.ContainerUpdate) ([]string, error) {
	if _, err := f.Container(ctx, ref); err != nil {
		return nil, err
	}
	f.mutated("UpdateContainer %s %s:%d", ref, u.RestartPolicy.Name, u.RestartPolicy.MaximumRetryCount)
	f.mu.Lock()
	f.rec.ContainerUpdate = u
	f.mu.Unlock()
	return nil, nil
}

func (f *fakeBackend) ContainerLinks(_ context.Context, id string) LinkNames { return f.links[id] }

func (f *fakeBackend) ContainerExecIDs(_ context.Context, id string) []string { return f.execIDs[id] }

func (f *fakeBackend) PruneContainers(ctx context.Context, match func(*container.Container) bool) ([]string, int64, error) {
	cs, _ := f.Containers(ctx)
	var ids []string
	for _, c := range cs {
		if !c.Running() && match(c) {
			f.mutated("PruneContainers %s", c.Name)
			ids = append(ids, c.ID)
		}
	}
	return ids, 100 * int64(len(ids)), nil
}

func (f *fakeBackend) PruneImages(_ context.Context, all bool, match func(*image.Image) bool) ([]image.Removed, int64, error) {
	f.mutated("PruneImages all=%v", all)
	var removed []image.Removed
	for _, img := range f.images {
		if match(img) {
			removed = append(removed, image.Removed{Deleted: img.ID})
		}
	}
	return removed, 0, nil
}

func (f *fakeBackend) RemoveLink(_ context.Context, name string) error {
	f.mutated("RemoveLink %s", name)
	return nil
}

func (f *fakeBackend) RestartContainer(ctx context.Context, ref string, timeout *int, signal string) error {
	if err := f.StopContainer(ctx, ref, timeout, signal); err != nil && !errdefs.Is(err, errdefs.KindNotModified) {
		return err
	}
	if err := f.StartContainer(ctx, ref); err != nil && !errdefs.Is(err, errdefs.KindNotModified) {
		return err
	}
	return nil
}

func (f *fakeBackend) CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (VolumeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if driver != "" && driver != "local" {
		return VolumeInfo{}, errdefs.NotFound("plugin %q not found", driver)
	}
	if f.volumes == nil {
		f.volumes = map[string]VolumeInfo{}
	}
	if v, ok := f.volumes[name]; ok {
		return v, nil
	}
	v := VolumeInfo{Name: name, Labels: labels, CreatedAt: fakeTime, Mountpoint: "/var/lib/berth/volumes/" + name + "/_data", Size: -1}
	f.volumes[name] = v
	f.mutations = append(f.mutations, "CreateVolume "+name)
	return v, nil
}

func (f *fakeBackend) Volume(ctx context.Context, name string) (VolumeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.volumes[name]; ok {
		return v, nil
	}
	return VolumeInfo{}, errdefs.NotFound("get %s: no such volume", name)
}

func (f *fakeBackend) Volumes(ctx context.Context, size bool) ([]VolumeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []VolumeInfo
	for _, v := range f.volumes {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b VolumeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *fakeBackend) RemoveVolume(ctx context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	switch {
	case !ok && force:
		return nil
	case !ok:
		return errdefs.NotFound("get %s: no such volume", name)
	case v.RefCount > 0:
		return errdefs.Conflict("remove %s: volume is in use - [c1]", name)
	}
	delete(f.volumes, name)
	return nil
}

func (f *fakeBackend) PruneVolumes(ctx context.Context, all bool, match func(VolumeInfo) bool) ([]string, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name, v := range f.volumes {
		if _, anon := v.Labels["com.docker.volume.anonymous"]; (all || anon) && v.RefCount == 0 && match(v) {
			out = append(out, name)
			delete(f.volumes, name)
		}
	}
	slices.Sort(out)
	return out, uint64(len(out)), nil
}

func (f *fakeBackend) RemoveContainer(ctx context.Context, ref string, force, volumes bool) error {
	c, err := f.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.Running() && !force {
		return errdefs.Conflict("cannot remove container %q: container is running: stop the container before removing or force remove", ref)
	}
	f.mutated("RemoveContainer %s %v", ref, force)
	return nil
}
