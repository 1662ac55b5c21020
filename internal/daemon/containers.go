package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/store"
)

// validContainerName is Docker's rule (the leading "/" is stripped first).
var validContainerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CreateContainer records a new container after checking its image,
// name, networks and limits; the warnings are moby's for limits the host
// cannot apply, which are dropped.
func (d *Daemon) CreateContainer(ctx context.Context, name string, cfg container.Config) (*container.Container, []string, error) {
	start := time.Now()
	warnings, err := container.CheckResources(&cfg.Resources, d.limits, false)
	if err != nil {
		return nil, nil, errdefs.Invalid("%w", err)
	}
	if err := runtime.CheckSeccompProfile(cfg.Security.Seccomp); err != nil {
		return nil, nil, errdefs.Invalid("%w", err)
	}
	if err := checkCapAdd(cfg.CapAdd, runtime.EffectiveCapabilities()); err != nil {
		return nil, nil, err
	}
	cfg.LogConfig = withLogDefaults(cfg.LogConfig, d.logDefaults)
	if err := container.CheckLogConfig(cfg.LogConfig); err != nil {
		return nil, nil, errdefs.Invalid("%w", err)
	}
	d.defaults.adaptCreate(&cfg, d.limits.CgroupV2)
	d.adaptSecurity(&cfg)
	container.AdaptResources(&cfg.Resources)
	d.adaptNamespaces(&cfg.Namespaces)
	c, err := d.createContainer(ctx, name, cfg)
	if err == nil {
		d.metrics.timeContainer("create", start)
	}
	return c, warnings, err
}

// withLogDefaults is lc with the daemon's defaults (def) merged in, as
// moby's mergeAndVerifyLogConfig: no driver is the default driver, and
// on the default driver each default option the container does not give.
func withLogDefaults(lc, def container.LogConfig) container.LogConfig {
	if lc.Type == "" {
		lc.Type = def.Type
	}
	if lc.Driver() != def.Driver() || len(def.Config) == 0 {
		return lc
	}
	out := container.LogConfig{Type: lc.Type, Config: maps.Clone(lc.Config)}
	if out.Config == nil {
		out.Config = map[string]string{}
	}
	for k, v := range def.Config {
		if _, ok := out.Config[k]; !ok {
			out.Config[k] = v
		}
	}
	return out
}

// checkCapAdd refuses, as moby's validateCapabilities, a --cap-add the
// daemon does not have itself (runc could not give it).
func checkCapAdd(add, have []string) error {
	caps, err := container.NormalizeCapabilities(add)
	if err != nil || have == nil {
		return nil // unknown names were refused by the API
	}
	for _, c := range caps {
		if c != container.AllCapabilities && !slices.Contains(have, c) {
			return errdefs.Invalid("invalid CapAdd: capability not supported by your kernel or not available in the current environment: %q", c)
		}
	}
	return nil
}

// adaptSecurity is moby's generateSecurityOpt: a container that is
// privileged or shares the host's IPC or PID namespace is recorded with
// label=disable unless it names a label of its own.
func (d *Daemon) adaptSecurity(cfg *container.Config) {
	ns := cfg.Namespaces
	if !cfg.Security.Privileged && ns.IpcMode != container.ModeHost && ns.PidMode != container.ModeHost {
		return
	}
	for _, o := range cfg.Security.Opts {
		if strings.HasPrefix(o, "label=") || strings.HasPrefix(o, "label:") {
			return
		}
	}
	cfg.Security.Opts = append(slices.Clone(cfg.Security.Opts), "label=disable")
}

func (d *Daemon) createContainer(ctx context.Context, name string, cfg container.Config) (*container.Container, error) {
	name = strings.TrimPrefix(name, "/")
	if name != "" && (!validContainerName.MatchString(name) || len(name) > 255) {
		return nil, errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	// The image first, as moby's create: a missing one is a 404, on which
	// the docker CLI says "Unable to find image" and tries to pull.
	d.imagesMu.RLock() // until the container is registered: see imagesMu
	defer d.imagesMu.RUnlock()
	img, err := d.images.Get(cfg.Image)
	if err != nil {
		return nil, err
	}
	cfg.Labels = maps.Clone(cfg.Labels)
	mergeImageConfig(&cfg, img.Config)
	// --entrypoint '' resets the entrypoint (after the merge, which it
	// keeps from taking the image's), as moby's mergeAndVerifyConfig.
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = nil
	}
	if len(cfg.Cmd) == 0 && len(cfg.Entrypoint) == 0 {
		return nil, errdefs.Invalid("no command specified")
	}
	// A stop signal that does not parse would make the container one
	// that docker stop cannot stop: moby's verifyContainerSettings
	// refuses it here.
	if _, err := parseSignal(cfg.StopSignal, syscall.SIGTERM); err != nil {
		return nil, err
	}
	cfg.ImageID = img.ID
	if err := checkPorts(cfg); err != nil {
		return nil, err
	}
	if d.runtime != nil { // nil in unit tests without a runtime
		if err := d.runtime.CheckWorkdir(img.RootfsDir, cfg.WorkingDir); err != nil {
			return nil, err
		}
	}
	if err := d.planNetworks(&cfg); err != nil {
		return nil, err
	}
	c := &container.Container{ID: network.NewID(), Created: time.Now().UTC(), Config: cfg,
		State: container.State{Status: container.StatusCreated}}
	if c.Config.Hostname == "" {
		c.Config.Hostname = d.defaultHostname(c)
	}
	dir := d.filesDir(c.ID)
	c.HostsPath, c.HostnamePath, c.ResolvConfPath = filepath.Join(dir, "hosts"), filepath.Join(dir, "hostname"), filepath.Join(dir, "resolv.conf")

	d.mu.Lock()
	defer d.mu.Unlock()
	if name == "" {
		name = d.freeNameLocked(c.ID)
	}
	if o := d.nameHolderLocked(name); o != nil {
		return nil, errdefs.Conflict("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, o.ID)
	}
	c.Name = name
	if c.Config.Links, err = d.planLinksLocked(name, c.Config.Links); err != nil {
		return nil, err
	}
	if err := d.mountsFromLocked(&c.Config); err != nil {
		return nil, err
	}
	if err := d.planVolumes(&c.Config, img); err != nil {
		return nil, err
	}
	// The image's files go into new volumes without d.mu (a big tree
	// stalled every docker ps meanwhile): the create is pending, its name
	// and its volumes held (nameHolderLocked, volumeUsersLocked), so no
	// other create takes the name and no removal takes a volume.
	if err := d.copyUpLocked(c, img); err != nil {
		d.removeMadeVolumes(c.Config)
		return nil, err
	}
	if err := d.recordCreateLocked(c); err != nil {
		d.removeMadeVolumes(c.Config)
		return nil, err
	}
	d.containers[c.ID] = newCtrState(c)
	if len(c.Config.Links) > 0 {
		d.links[c.ID] = slices.Clone(c.Config.Links)
	}
	d.containerEvent(c, "create", nil)
	d.log.Info("container created", "name", name, "id", c.ShortID(), "image", cfg.Image)
	return cloneContainer(c), nil
}

// recordCreateLocked journals the new container's record and waits for
// its fdatasync without d.mu (0.17 ms here; on a slow disk many ms, with
// every lookup, listing and other create queued behind it), pending
// meanwhile as during its copy-up: its name and volumes stay held.
func (d *Daemon) recordCreateLocked(c *container.Container) error {
	dur, err := d.store.Record(func(tx store.Tx) error { return tx.Put(store.BucketContainers, c.ID, c) })
	if err != nil {
		return err
	}
	d.pending[c.ID] = c
	d.mu.Unlock()
	err = dur.Wait()
	d.mu.Lock()
	delete(d.pending, c.ID)
	return err
}

func newCtrState(c *container.Container) *ctrState {
	return &ctrState{c: c, exited: make(chan struct{}), removed: make(chan struct{}), started: make(chan struct{})}
}

// planNetworks resolves the networks a container asks for, keyed by
// network name, and refuses requests Docker refuses. A network that does
// not exist (yet) is kept by the name given, as moby does at create: the
// start fails while it is missing ("failed to set up container
// networking: network X not found"). A 404 here would also make docker
// run take it for a missing image and try to pull one.
func (d *Daemon) planNetworks(cfg *container.Config) error {
	if cfg.NetworkMode == "" || cfg.NetworkMode == "default" {
		cfg.NetworkMode = network.NameBridge
	}
	if ref, ok := container.SharedNetns(cfg.NetworkMode); ok {
		// As moby's adaptSharedNamespaceContainer: the other container by
		// ID when it exists; else as given, refused at start if still
		// missing (it may be created in between).
		if cs, err := d.lookup(ref); err == nil {
			cfg.NetworkMode = container.SharedNetnsMode(cs.c.ID)
		}
		cfg.Networks = nil
		return nil
	}
	mode, err := d.net.Network(cfg.NetworkMode)
	switch {
	case errdefs.Is(err, errdefs.KindNotFound):
		mode = &network.Network{Name: cfg.NetworkMode}
	case err != nil:
		return err
	}
	cfg.NetworkMode = mode.Name
	want := map[string]container.EndpointRequest{}
	for ref, req := range cfg.Networks {
		if ref == "default" {
			ref = mode.Name
		}
		n, err := d.net.Network(ref)
		if errdefs.Is(err, errdefs.KindNotFound) {
			want[ref] = req
			continue
		}
		if err != nil {
			return err
		}
		if (mode.Driver == network.DriverHost || mode.IsNone()) && n.ID != mode.ID {
			return errdefs.Invalid("container cannot be connected to network %q and %q at once: %q is exclusive", mode.Name, n.Name, mode.Name)
		}
		// moby's validateNetworkingConfig words (the docker CLI checks the
		// alias itself, in words of its own; other clients, as Compose, get
		// these). The address is checked here, not only when it is taken
		// at start, so that no container is left behind (Docker 25 and
		// later refuse it at create too).
		if err := endpointSettingsError(n, req); err != nil {
			return errdefs.Invalid("invalid config for network %s: %s", ref, err)
		}
		want[n.Name] = req
	}
	if _, ok := want[mode.Name]; !ok {
		want[mode.Name] = container.EndpointRequest{}
	}
	cfg.Networks = want
	return nil
}

// freeNameLocked picks a generated name no container has: nameTries
// random names, then the container's short ID, as moby does. Never more
// tries: with the pairs used up an unbounded search would spin holding
// d.mu and hang the daemon. A short ID someone took as a name is left to
// the create's conflict check, as in moby.
func (d *Daemon) freeNameLocked(id string) string {
	taken := make(map[string]bool, len(d.containers)+len(d.pending))
	for _, o := range d.containers {
		taken[o.c.Name] = true
	}
	for _, c := range d.pending {
		taken[c.Name] = true
	}
	for retry := range nameTries {
		if n := randomName(retry); !taken[n] {
			return n
		}
	}
	return id[:12]
}

// nameHolderLocked is the container, registered or still being created,
// that has name; nil if none.
func (d *Daemon) nameHolderLocked(name string) *container.Container {
	for _, o := range d.containers {
		if o.c.Name == name {
			return o.c
		}
	}
	for _, c := range d.pending {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (d *Daemon) filesDir(id string) string { return filepath.Join(d.cfg.DataRoot, "files", id) }

// putContainer records c, unless it has been removed: a start, stop or
// connect that looked the container up before an rm -f finished must not
// write its record back (it would come back at the next daemon start).
// The caller holds c's lock, which remove holds throughout.
func (d *Daemon) putContainer(c *container.Container) error {
	d.mu.Lock()
	_, live := d.containers[c.ID]
	d.mu.Unlock()
	if !live {
		return errdefs.NotFound("No such container: %s", c.ID)
	}
	return d.store.Update(func(tx store.Tx) error { return tx.Put(store.BucketContainers, c.ID, c) })
}

// goneLocked reports whether cs was removed; the caller holds cs.mu.
func (cs *ctrState) goneLocked() bool { return isClosed(cs.removed) }

// isClosed says whether c is closed, without waiting.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func cloneContainer(c *container.Container) *container.Container {
	b, _ := json.Marshal(c)
	out := &container.Container{}
	_ = json.Unmarshal(b, out)
	return out
}

// lookup finds a container by full ID, name, or unique ID prefix.
func (d *Daemon) lookup(ref string) (*ctrState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookupLocked(ref)
}

// lookupLocked is lookup with d.mu held.
func (d *Daemon) lookupLocked(ref string) (*ctrState, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, errdefs.NotFound("No such container: %s", ref)
	}
	if cs, ok := d.containers[ref]; ok {
		return cs, nil
	}
	for _, cs := range d.containers {
		if cs.c.Name == ref {
			return cs, nil
		}
	}
	if cs := d.linkedLocked(ref); cs != nil {
		return cs, nil
	}
	var found *ctrState
	for id, cs := range d.containers {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Invalid("multiple IDs found with provided prefix: %s", ref)
			}
			found = cs
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("No such container: %s", ref)
	}
	return found, nil
}

// stateByID is the state of the container with full ID id, nil if there
// is none (removed meanwhile).
func (d *Daemon) stateByID(id string) *ctrState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.containers[id]
}

// states returns the containers' states as they are now, for a walk that
// then takes each one's lock (never with d.mu held).
func (d *Daemon) states() []*ctrState {
	d.mu.Lock()
	defer d.mu.Unlock()
	states := make([]*ctrState, 0, len(d.containers))
	for _, cs := range d.containers {
		states = append(states, cs)
	}
	return states
}

// Containers returns copies of every container, newest first (docker ps order).
func (d *Daemon) Containers(ctx context.Context) ([]*container.Container, error) {
	states := d.states()
	out := make([]*container.Container, 0, len(states))
	for _, cs := range states {
		out = append(out, cs.listView())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// listView is a copy of the container for a listing (docker ps, info,
// system df): taken under its lock when that is free, else the copy the
// last listing took, so that a listing never waits for an operation on
// one container (a start holds the lock through runc, a removal through
// the sandbox's deletion), as moby's ps reads its replica. A container
// never listed before is waited for. The copy is shared and read only;
// one whose container has not changed since is kept (its encoding is
// compared: the decode was most of a docker ps's time).
func (cs *ctrState) listView() *container.Container {
	if !cs.mu.TryLock() {
		if c := cs.listed.Load(); c != nil {
			return c
		}
		cs.mu.Lock()
	}
	defer cs.mu.Unlock()
	b, _ := json.Marshal(cs.c)
	if c := cs.listed.Load(); c != nil && bytes.Equal(b, cs.listedJSON) {
		return c
	}
	c := &container.Container{}
	_ = json.Unmarshal(b, c)
	cs.listed.Store(c)
	cs.listedJSON = b
	return c
}

// Container returns a copy of one container.
func (d *Daemon) Container(ctx context.Context, ref string) (*container.Container, error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cloneContainer(cs.c)
	if c.Config.NetworkMode == network.NameHost && c.State.SandboxID != "" && c.State.SandboxKey == "" {
		// moby's: libnetwork's default sandbox, the daemon's namespace
		// (berth's own records keep "", no namespace of its own).
		c.State.SandboxKey = d.hostSandboxKey
	}
	// moby's inspect shows the daemon's default rlimits too.
	c.Config.Resources.Ulimits = d.defaults.withUlimits(c.Config.Resources.Ulimits)
	// "" until the first start made the log, and for the local driver,
	// as moby's (its files are not json-file's there).
	if c.Config.LogConfig.Driver() == container.LogDriver && d.runtime.HasJSONLog(c.ID) {
		c.LogPath = d.runtime.JSONLogPath(c.ID)
	}
	return c, nil
}

// ContainerAttachments lists the networks of a container: live endpoints
// when it runs, the configured networks without addresses when it does not.
func (d *Daemon) ContainerAttachments(ctx context.Context, id string) ([]network.Attachment, error) {
	cs, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	sbID := cs.c.State.SandboxID
	nets := cs.c.Config.Networks
	cs.mu.Unlock()
	return d.attachmentsOf(sbID, nets), nil
}

// ListedAttachments are the networks of c as a listing took it
// (Containers, listView): read from that copy, without waiting on the
// container's lock.
func (d *Daemon) ListedAttachments(ctx context.Context, c *container.Container) []network.Attachment {
	return d.attachmentsOf(c.State.SandboxID, c.Config.Networks)
}

// attachmentsOf is the endpoints of the sandbox sbID, or, for a container
// without one (not running), the networks it asks for.
func (d *Daemon) attachmentsOf(sbID string, nets map[string]container.EndpointRequest) []network.Attachment {
	if sbID != "" {
		return d.net.Attachments(sbID)
	}
	var out []network.Attachment
	for _, name := range sortedNetworks(nets, "") {
		n, err := d.net.Network(name)
		if err != nil {
			continue
		}
		out = append(out, network.Attachment{Network: n, Endpoint: &network.Endpoint{NetworkID: n.ID, Aliases: nets[name].Aliases}})
	}
	return out
}

// sortedNetworks orders a container's networks: its network mode first
// (it becomes eth0), then the others by name.
func sortedNetworks(nets map[string]container.EndpointRequest, first string) []string {
	var names []string
	for n := range nets {
		if n != first {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if _, ok := nets[first]; ok && first != "" {
		names = append([]string{first}, names...)
	}
	return names
}

// RemoveContainer is removeContainer, timed for the metrics when it succeeds
// (moby's container action "delete").
func (d *Daemon) RemoveContainer(ctx context.Context, ref string, force, volumes bool) error {
	start := time.Now()
	err := d.removeContainer(ctx, ref, force, volumes)
	if err == nil {
		d.metrics.timeContainer("delete", start)
	}
	return err
}

// RemoveContainer deletes a stopped container, or kills and deletes a running one with force.
func (d *Daemon) removeContainer(ctx context.Context, ref string, force, volumes bool) error {
	ctx = context.WithoutCancel(ctx) // a removal begun runs to its end, as a stop
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	running, paused := cs.c.Running(), cs.c.Paused()
	id := cs.c.ID
	switch {
	case cs.removing:
		cs.mu.Unlock()
		return errdefs.Conflict("removal of container %s is already in progress", ref)
	case cs.c.State.Status == container.StatusRestarting && !force:
		cs.mu.Unlock()
		return errdefs.Conflict("cannot remove container %q: container is restarting: stop the container before removing or force remove", ref)
	case running && !force && paused:
		cs.mu.Unlock()
		return errdefs.Conflict("cannot remove container %q: container is paused and must be unpaused first", ref)
	case running && !force:
		cs.mu.Unlock()
		return errdefs.Conflict("cannot remove container %q: container is running: stop the container before removing or force remove", ref)
	}
	if cs.c.State.Status == container.StatusRestarting {
		d.stopRestartingLocked(cs)
	}
	if running {
		cs.exitOnNext = true // the kill below is the user's: no restart
	}
	// From here no start may slip in between the check and the removal
	// (a plain rm would delete a container a start had just started), as
	// moby's RemovalInProgress keeps them out.
	cs.removing = true
	cs.mu.Unlock()
	err = nil
	if running {
		err = d.killAndWait(ctx, cs)
	}
	if err == nil {
		err = d.remove(cs, id, volumes)
	}
	if err != nil {
		cs.mu.Lock()
		cs.removing = false
		cs.mu.Unlock()
	}
	return err
}

// remove deletes everything of a stopped container and tells "removed"
// waiters; with volumes, its anonymous volumes go too (docker rm -v, and
// --rm's removal, as moby's).
func (d *Daemon) remove(cs *ctrState, id string, volumes bool) error {
	// The writable layer's files go after the lock (a docker ps, which
	// reads every container under its lock, waited seconds on a big
	// one), and only once the record is gone: a removal that fails before
	// puts them back, and one a crash cuts short gets them back at the
	// next start (runtime.Config.Recorded).
	var purge runtime.Trashed
	defer func() {
		if err := purge.Purge(); err != nil {
			d.log.Warn("remove a container's files", "id", id, "err", err)
		}
	}()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	select {
	case <-cs.removed:
		return nil // someone else (AutoRemove) got here first
	default:
	}
	cs.cancelRestartLocked()
	var errs []error
	if cs.c.State.SandboxID != "" {
		errs = append(errs, d.net.DeleteSandbox(context.Background(), cs.c.State.SandboxID))
	}
	cs.endFilesLocked()
	trashed, err := d.runtime.DeleteLater(id)
	errs = append(errs, err)
	d.unmountShm(id)
	if err := os.RemoveAll(d.filesDir(id)); err != nil {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	if err == nil {
		err = d.store.Update(func(tx store.Tx) error { return tx.Delete(store.BucketContainers, id) })
	}
	if err != nil {
		if rerr := trashed.Restore(); rerr != nil {
			d.log.Warn("a removal that failed could not put the container's files back", "id", id, "err", rerr)
		}
		return fmt.Errorf("remove container %s: %w", cs.c.Name, err)
	}
	purge = trashed
	d.mu.Lock()
	delete(d.containers, id)
	delete(d.links, id)
	delete(d.linkHosts, id)
	d.mu.Unlock()
	close(cs.removed)
	if volumes {
		d.removeAnonymousVolumes(cs.c)
	}
	d.containerEvent(cs.c, "destroy", nil)
	d.log.Info("container removed", "name", cs.c.Name, "id", cs.c.ShortID())
	return nil
}

// RenameContainer gives a container a new name, as moby's ContainerRename:
// on the networks of a running container the old name stops resolving and
// the new one resolves at once (network.RenameSandbox), and the container
// and its endpoints are written in one store record.
func (d *Daemon) RenameContainer(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(strings.TrimSpace(newName), "/")
	if strings.TrimPrefix(strings.TrimSpace(ref), "/") == "" || newName == "" {
		return errdefs.Invalid("Neither old nor new names may be empty")
	}
	cs, err := d.lookup(strings.TrimSpace(ref))
	if err != nil {
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.goneLocked() {
		return errdefs.NotFound("No such container: %s", ref)
	}
	c := cs.c
	oldName := c.Name
	if oldName == newName {
		return errdefs.Invalid("Renaming a container with the same name as its current name")
	}
	if !validContainerName.MatchString(newName) || len(newName) > 255 {
		// moby's words: its reserveName sees the name with its "/".
		return errdefs.Invalid("Error when allocating new name: Invalid container name (/%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	// Names are compared under d.mu (CreateContainer, lookup): the new
	// one is taken there, and given back if it cannot be recorded.
	if err := d.setName(c, newName, true); err != nil {
		return err
	}
	if c.State.SandboxID != "" {
		err = d.net.RenameSandbox(c.State.SandboxID, newName, func(tx store.Tx) error {
			return tx.Put(store.BucketContainers, c.ID, c)
		})
	} else {
		err = d.putContainer(c)
	}
	if err != nil {
		_ = d.setName(c, oldName, false)
		return fmt.Errorf("rename container %s: %w", oldName, err)
	}
	d.containerEvent(c, "rename", map[string]string{"oldName": "/" + oldName})
	d.log.Info("container renamed", "id", c.ShortID(), "old", oldName, "name", newName)
	return nil
}

// setName sets c's name under d.mu; with check, it refuses a name another
// container has, in moby's words.
func (d *Daemon) setName(c *container.Container, name string, check bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if check {
		if o := d.nameHolderLocked(name); o != nil && o != c {
			return errdefs.Conflict("Error when allocating new name: Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, o.ID)
		}
	}
	c.Name = name
	return nil
}

// PruneContainers removes the containers that are neither running nor
// restarting and that match accepts, as moby's ContainersPrune: one that
// a removal refuses (it started meanwhile) is left and logged. Then it
// logs the prune event with what the removed containers' writable layers
// held (moby's GetContainerLayerSize, summed).
func (d *Daemon) PruneContainers(ctx context.Context, match func(*container.Container) bool) ([]string, int64, error) {
	var ids []string
	for _, cs := range d.states() {
		cs.mu.Lock()
		c := cs.c
		if !cs.goneLocked() && !c.Running() && c.State.Status != container.StatusRestarting && match(c) {
			ids = append(ids, c.ID)
		}
		cs.mu.Unlock()
	}
	var (
		deleted   []string
		reclaimed int64
	)
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		size, _ := d.runtime.UpperSize(id) // 0 when it cannot be read: moby logs and goes on
		if err := d.RemoveContainer(ctx, id, false, false); err != nil {
			d.log.Warn("prune: container left", "id", id[:12], "err", err)
			continue
		}
		deleted = append(deleted, id)
		reclaimed += size
	}
	if err := ctx.Err(); err != nil {
		return deleted, reclaimed, err // moby returns before its prune event too
	}
	d.events.Publish(events.Event{Type: events.TypeContainer, Action: "prune", Attributes: map[string]string{"reclaimed": strconv.FormatInt(reclaimed, 10)}})
	return deleted, reclaimed, nil
}

// UpdateContainer is docker update for what berth applies, the restart
// policy, as moby's update: the new policy is recorded and governs the
// container's next exit; an auto-removed container keeps "no".
func (d *Daemon) UpdateContainer(ctx context.Context, ref string, u container.ContainerUpdate) ([]string, error) {
	warnings, err := container.CheckResources(&u.Resources, d.limits, true)
	if err != nil {
		return warnings, errdefs.Invalid("%w", err)
	}
	cs, err := d.lookup(ref)
	if err != nil {
		return warnings, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.c
	if cs.goneLocked() {
		return warnings, errdefs.Conflict("Cannot update container %s: container is marked for removal and cannot be \"update\"", c.ID)
	}
	policy := u.RestartPolicy
	if policy.Name != "" && c.Config.AutoRemove && !policy.IsNone() {
		return warnings, errdefs.Conflict("Cannot update container %s: Restart policy cannot be updated because AutoRemove is enabled for the container", c.ID)
	}
	old := c.Config
	res := c.Config.Resources
	var conflict container.ConflictError
	if err := res.Update(u.Resources, d.limits.Swap); errors.As(err, &conflict) {
		return warnings, errdefs.Conflict("Cannot update container %s: %w", c.ID, err)
	} else if err != nil {
		return warnings, errdefs.Invalid("Cannot update container %s: %w", c.ID, err)
	}
	c.Config.Resources = res
	if policy.Name != "" {
		c.Config.RestartPolicy = policy
	}
	// A rollback puts back what the update changed, not the whole
	// Config: code under d.mu alone reads its other fields (the mounts,
	// the network mode) meanwhile.
	rollback := func() { c.Config.Resources, c.Config.RestartPolicy = old.Resources, old.RestartPolicy }
	if err := d.putContainer(c); err != nil {
		rollback()
		return warnings, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
	}
	// Once recorded, the event comes whatever follows, as moby's.
	defer d.containerEvent(c, "update", nil)
	// A container that does not run gets its limits at its next start,
	// as in moby; a running (or paused) one now.
	if c.Running() && !reflect.DeepEqual(old.Resources, res) {
		// A memory limit given now is watched before it applies: lowered
		// under the usage, it may kill at once.
		d.watchOOMLocked(cs, cs.proc, false)
		if err := d.runtime.Update(ctx, c.ID, res); err != nil {
			rollback()
			if perr := d.putContainer(c); perr != nil {
				d.log.Error("record the limits an update could not apply", "id", c.ShortID(), "err", perr)
			}
			// runc may have applied some of them (moby's rollback has the
			// same hole): the record is what the next start applies.
			return warnings, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	return warnings, nil
}
