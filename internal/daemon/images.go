package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/reference"
	berthruntime "github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
	"golang.org/x/sys/unix"
)

// ImportImage imports a root filesystem tarball.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, repo, tag, message string, changes []string) (*image.Image, error) {
	cfg, err := image.ParseChanges(changes)
	if err != nil {
		return nil, err
	}
	img, err := d.images.ImportConfig(ctx, r, repo, tag, message, cfg)
	if err != nil {
		return nil, err
	}
	// As moby's ImportImage: the tag's event, then the import's.
	if repo != "" {
		d.imageEvent(img.ID, tagName(repo, tag), "tag", imageLabels(img))
	}
	d.imageEvent(img.ID, img.ID, "import", imageLabels(img))
	return img, nil
}

// tagName is the tag repo (and tag) gave an image, as events name it
// ("busybox:latest").
func tagName(repo, tag string) string {
	ref, err := reference.WithTag(repo, tag)
	if err != nil { // not after the tag was given
		return repo
	}
	return ref
}

// Images lists the images.
func (d *Daemon) Images(ctx context.Context) ([]*image.Image, error) { return d.images.List() }

// Image finds one image.
func (d *Daemon) Image(ctx context.Context, ref string) (*image.Image, error) {
	return d.images.Get(ref)
}

// RemoveImage is removeImage, timed for the metrics when it succeeds
// (moby's image action "delete").
func (d *Daemon) RemoveImage(ctx context.Context, ref string, force, noPrune bool) ([]string, []string, error) {
	start := time.Now()
	untagged, deleted, err := d.removeImage(ctx, ref, force, noPrune)
	if err == nil {
		d.metrics.timeImage("delete", start)
	}
	return untagged, deleted, err
}

// RemoveImage untags or deletes an image that no container uses (unless
// forced), and then its untagged parents unless noPrune.
func (d *Daemon) removeImage(ctx context.Context, ref string, force, noPrune bool) ([]string, []string, error) {
	d.imagesMu.Lock()
	img, _ := d.images.Get(ref)
	remove := d.images.Remove
	if noPrune {
		remove = d.images.RemoveNoPrune
	}
	untagged, deleted, err := remove(ref, force, d.imageUsers)
	if img != nil {
		d.removalEvents(map[string]*image.Image{"": img}, image.JoinRemoved(untagged, deleted))
	}
	d.imagesMu.Unlock()
	d.emptyImageTrash() // the files, without holding creates off
	return untagged, deleted, err
}

// emptyImageTrash deletes the files of the images just removed.
func (d *Daemon) emptyImageTrash() {
	if err := d.images.EmptyTrash(); err != nil {
		d.log.Warn("image files left behind (removed at the next start)", "err", err)
	}
}

// removalEvents logs, in removed's order, an untag for each tag removed
// (of the image byTag holds for it, or for "") and a delete for each
// image deleted, as moby's ImageDelete does (the untag with the image's
// ID for a name); a prune's come image by image, as moby's.
func (d *Daemon) removalEvents(byTag map[string]*image.Image, removed []image.Removed) {
	for _, r := range removed {
		if r.Deleted != "" {
			d.imageEvent(r.Deleted, r.Deleted, "delete", nil)
			continue
		}
		img := byTag[r.Untagged]
		if img == nil {
			img = byTag[""]
		}
		if img != nil {
			d.imageEvent(img.ID, img.ID, "untag", imageLabels(img))
		}
	}
}

// imageUsers names the containers that use image id: the running one and
// the stopped one with the lowest IDs (moby names whichever it meets
// first; the lowest keeps the answer the same from call to call). Each
// container's state is read under its own lock, taken after d.mu is let
// go (RemoveContainer takes d.mu with its container's lock held).
func (d *Daemon) imageUsers(id string) image.Users {
	var u image.Users
	d.buildMu.Lock()
	u.Build = d.building[id] > 0
	d.buildMu.Unlock()
	for _, cs := range d.states() {
		cs.mu.Lock()
		c := cs.c
		uses, short := c.Config.ImageID == id && !cs.goneLocked(), c.ShortID()
		running := c.Running() || c.Status() == container.StatusRestarting // moby's IsRunning: a restarting one counts
		cs.mu.Unlock()
		if !uses {
			continue
		}
		which := &u.Stopped
		if running {
			which = &u.Running
		}
		if *which == "" || short < *which {
			*which = short
		}
	}
	return u
}

// PruneImages is docker image prune [-a]: see image.Store.Prune. It
// holds off container creation (imagesMu), which could otherwise pick
// an image that the prune is about to remove.
func (d *Daemon) PruneImages(ctx context.Context, all bool, match func(*image.Image) bool) ([]image.Removed, int64, error) {
	d.imagesMu.Lock()
	defer d.emptyImageTrash() // after the unlock: defers run in reverse
	defer d.imagesMu.Unlock()
	byTag := map[string]*image.Image{}
	if imgs, err := d.images.List(); err == nil {
		for _, img := range imgs {
			for _, t := range img.RepoTags {
				byTag[t] = img
			}
		}
	}
	removed, reclaimed, err := d.images.Prune(all, match, d.imageUsers, func(id string, err error) {
		d.log.Warn("image prune: image left", "id", id, "err", err)
	})
	d.removalEvents(byTag, removed)
	if err == nil {
		// moby's ImagesPrune: one more, with no actor.
		d.events.Publish(events.Event{Type: events.TypeImage, Action: "prune", Attributes: map[string]string{"reclaimed": strconv.FormatInt(reclaimed, 10)}})
	}
	return removed, reclaimed, err
}

// SystemInfo describes the daemon for /info and /version.
func (d *Daemon) SystemInfo(ctx context.Context) (api.SystemInfo, error) {
	defer d.metrics.timeHostInfo("system_info", time.Now())
	return d.systemInfo(ctx)
}

// VersionInfo is SystemInfo for /version, timed apart for the metrics
// (moby's host info function "system_version").
func (d *Daemon) VersionInfo(ctx context.Context) (api.SystemInfo, error) {
	defer d.metrics.timeHostInfo("system_version", time.Now())
	return d.systemInfo(ctx)
}

func (d *Daemon) systemInfo(ctx context.Context) (api.SystemInfo, error) {
	info := api.SystemInfo{
		Name: d.hostname, DataRoot: d.cfg.DataRoot, ExecRoot: d.cfg.ExecRoot,
		OperatingSystem: osName(), Architecture: machine(), NCPU: runtime.NumCPU(),
		RuncVersion: d.runcVersion(), Limits: d.limits,
	}
	info.Warnings = append(d.forwardWarnings(), d.cfg.FileWarnings...)
	info.Labels = d.cfg.Labels
	info.LoggingDriver = d.logDefaults.Driver()
	info.Debug = d.cfg.Debug // dockerd: --debug (debug.IsEnabled), not --log-level debug
	info.UserlandProxy = d.cfg.UserlandProxy
	info.NoNewPrivileges = d.defaults.noNewPrivileges
	info.CgroupnsPrivate = d.defaults.cgroupnsPrivate(d.limits.CgroupV2)
	if d.firewalld != nil && d.firewalld.Managed() {
		info.Firewalld, info.FirewalldReloadedAt = true, d.firewalld.ReloadedAt()
	}
	for _, p := range d.cfg.Pools {
		info.AddressPools = append(info.AddressPools, api.AddressPool{Base: p.Base.String(), Size: p.Size})
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
	}
	info.MemTotal = int64(berthruntime.HostMemory())
	var fs unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &fs) == nil {
		switch fs.Type {
		case unix.CGROUP2_SUPER_MAGIC:
			info.CgroupVersion = "2"
		case unix.TMPFS_MAGIC, unix.CGROUP_SUPER_MAGIC: // v1's controllers under a tmpfs
			info.CgroupVersion = "1"
		}
	}
	info.ID = d.engineID
	cs, _ := d.Containers(ctx)
	for _, c := range cs {
		info.Containers++
		switch c.Status() {
		case container.StatusRunning:
			info.Running++
		case container.StatusPaused:
			info.Paused++
		default:
			info.Stopped++
		}
	}
	if imgs, err := d.images.List(); err == nil {
		info.Images = len(imgs)
	}
	return info, nil
}

func osName() string { return osRelease("PRETTY_NAME", "Linux") }

// osRelease is key's value in the host's /etc/os-release, or def
// (VERSION_ID is moby's GetOperatingSystemVersion).
func osRelease(key, def string) string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return def
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return def
}

// machine is the host's hardware name as uname -m gives it ("x86_64"),
// docker info's Architecture (moby's platform.Architecture), where Go's
// GOARCH says "amd64".
func machine() string {
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(uts.Machine[:])
}

// runcVersion is the first line of `runc --version` ("runc version 1.1.5"),
// read once: docker info shows it.
func (d *Daemon) runcVersion() string {
	d.runcOnce.Do(func() {
		out, err := exec.Command("runc", "--version").Output()
		if err != nil {
			return
		}
		line, _, _ := strings.Cut(string(out), "\n")
		d.runcVer = strings.TrimSpace(strings.TrimPrefix(line, "runc version"))
	})
	return d.runcVer
}

// LoadImages stores the images of a docker save archive (docker load),
// those keep matches (nil: all; docker load --platform).
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader, keep image.PlatformMatch) ([]image.Loaded, error) {
	loaded, err := d.images.LoadFor(ctx, r, keep)
	for _, l := range loaded {
		d.imageEvent(l.Image.ID, l.Image.ID, "load", imageLabels(l.Image)) // no tag events: moby's loader tags in its store
	}
	return loaded, err
}

// mergeImageConfig gives cfg what its image's config sets and cfg does
// not, as moby's merge does at create: the user, exposed ports (added),
// environment variables cfg does not name, labels cfg does not have,
// the entrypoint and command (a command only when cfg gives no
// entrypoint, and no entrypoint when cfg resets it with --entrypoint ”),
// the health check's unset fields, the working directory and the stop
// signal. The image's volumes are not made: berth has none, and the
// container writes those paths in its own layer.
func mergeImageConfig(cfg *container.Config, ic *image.Config) {
	if ic == nil {
		return
	}
	if cfg.User == "" {
		cfg.User = ic.User
	}
	for _, p := range ic.ExposedPorts {
		if !slices.Contains(cfg.ExposedPorts, p) {
			cfg.ExposedPorts = append(cfg.ExposedPorts, p)
		}
	}
	for _, e := range ic.Env {
		key, _, _ := strings.Cut(e, "=")
		if !slices.ContainsFunc(cfg.Env, func(u string) bool { k, _, _ := strings.Cut(u, "="); return k == key }) {
			cfg.Env = append(cfg.Env, e)
		}
	}
	for k, v := range ic.Labels {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = slices.Clone(ic.Cmd)
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = slices.Clone(ic.Entrypoint)
		}
	}
	if h := ic.Healthcheck; h != nil {
		if cfg.Healthcheck == nil {
			c := *h
			cfg.Healthcheck = &c
		} else {
			u := cfg.Healthcheck
			if len(u.Test) == 0 {
				u.Test = h.Test
			}
			if u.Interval == 0 {
				u.Interval = h.Interval
			}
			if u.Timeout == 0 {
				u.Timeout = h.Timeout
			}
			if u.StartPeriod == 0 {
				u.StartPeriod = h.StartPeriod
			}
			if u.StartInterval == 0 {
				u.StartInterval = h.StartInterval
			}
			if u.Retries == 0 {
				u.Retries = h.Retries
			}
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
}

// TagImage gives image ref the tag repo:tag (docker tag).
func (d *Daemon) TagImage(ctx context.Context, ref, repo, tag string) error {
	d.imagesMu.Lock()
	defer d.imagesMu.Unlock()
	img, err := d.images.Tag(ref, repo, tag)
	if err == nil {
		d.imageEvent(img.ID, tagName(repo, tag), "tag", imageLabels(img))
	}
	return err
}

// SaveImages writes the images refs name as docker save does (its
// manifest.json, each image's config and layers in blobs/sha256, which
// docker load reads back): one layer each, the image's tree, and a
// config with what the image gives its containers. An image's ID after a
// load is its new config's digest, not its ID here.
func (d *Daemon) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	imgs, err := d.saveSet(refs)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "berth-save-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tw := tar.NewWriter(w)
	manifest := []map[string]any{} // [], not null: moby's load refuses null
	written := map[string]bool{}   // blobs already in the archive: images with one tree share their layer
	// Docker 28's save is an OCI image layout too (index.json, oci-layout,
	// a manifest blob an image) beside the legacy manifest.json and
	// repositories: tools that read OCI layouts take it.
	index := []ociDescriptor{}
	repositories := map[string]map[string]string{}
	blob := func(name string, r io.Reader, size int64) error {
		if written[name] {
			return nil
		}
		written[name] = true
		return writeTarFile(tw, name, r, size)
	}
	for i, s := range imgs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Under the images' lock (a removal would cut the tree short), but
		// only while the layer is written to local disk, not to the client.
		d.imagesMu.RLock()
		layer, layerSum, err := saveLayer(filepath.Join(tmp, fmt.Sprint(i)), s.img.RootfsDir)
		d.imagesMu.RUnlock()
		if err != nil {
			return err
		}
		config, err := json.Marshal(ociImageConfig(s.img, layerSum))
		if err != nil {
			return err
		}
		cfgSum := sha256.Sum256(config)
		cfgName, layerName := "blobs/sha256/"+hex.EncodeToString(cfgSum[:]), "blobs/sha256/"+layerSum
		if err := blob(cfgName, bytes.NewReader(config), int64(len(config))); err != nil {
			return err
		}
		fi, err := layer.Stat()
		if err == nil {
			err = blob(layerName, layer, fi.Size())
		}
		layer.Close()
		if err != nil {
			return err
		}
		manifest = append(manifest, map[string]any{"Config": cfgName, "RepoTags": s.tags, "Layers": []string{layerName}})
		ociManifest, err := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": mediaTypeManifest,
			"config": ociDescriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: "sha256:" + hex.EncodeToString(cfgSum[:]), Size: int64(len(config))},
			"layers": []ociDescriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: "sha256:" + layerSum, Size: fi.Size()}},
		})
		if err != nil {
			return err
		}
		mSum := sha256.Sum256(ociManifest)
		if err := blob("blobs/sha256/"+hex.EncodeToString(mSum[:]), bytes.NewReader(ociManifest), int64(len(ociManifest))); err != nil {
			return err
		}
		desc := ociDescriptor{MediaType: mediaTypeManifest, Digest: "sha256:" + hex.EncodeToString(mSum[:]), Size: int64(len(ociManifest))}
		for _, t := range s.tags {
			repo, tag := reference.SplitTag(t)
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][tag] = layerSum
			tagged := desc
			tagged.Annotations = map[string]string{"io.containerd.image.name": reference.FullName(t), "org.opencontainers.image.ref.name": tag}
			index = append(index, tagged)
		}
		if len(s.tags) == 0 {
			index = append(index, desc)
		}
	}
	if len(repositories) > 0 {
		b, err := json.Marshal(repositories)
		if err != nil {
			return err
		}
		if err := writeTarFile(tw, "repositories", bytes.NewReader(b), int64(len(b))); err != nil {
			return err
		}
	}
	layout := []byte(`{"imageLayoutVersion": "1.0.0"}`)
	if err := writeTarFile(tw, "oci-layout", bytes.NewReader(layout), int64(len(layout))); err != nil {
		return err
	}
	idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})
	if err != nil {
		return err
	}
	if err := writeTarFile(tw, "index.json", bytes.NewReader(idx), int64(len(idx))); err != nil {
		return err
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := writeTarFile(tw, "manifest.json", bytes.NewReader(b), int64(len(b))); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, s := range imgs {
		d.imageEvent(s.img.ID, s.img.ID, "save", imageLabels(s.img))
	}
	return nil
}

// mediaTypeManifest is an OCI image manifest's media type.
const mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"

// ociDescriptor is an OCI content descriptor.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// savedImage is one image docker save writes, with the tags it names.
type savedImage struct {
	img  *image.Image
	tags []string
}

// saveSet resolves docker save's names as moby's parseNames: an ID (or a
// prefix) saves the image without tags, a name with a tag that tag, a
// bare name every tag of that repository; each image once, with its tags
// together.
func (d *Daemon) saveSet(refs []string) ([]savedImage, error) {
	var out []savedImage
	add := func(img *image.Image, tag string) {
		for i := range out {
			if out[i].img.ID == img.ID {
				if tag != "" && !slices.Contains(out[i].tags, tag) {
					out[i].tags = append(out[i].tags, tag)
				}
				return
			}
		}
		s := savedImage{img: img, tags: []string{}}
		if tag != "" {
			s.tags = append(s.tags, tag)
		}
		out = append(out, s)
	}
	for _, ref := range refs {
		img, err := d.images.Get(ref)
		switch {
		case err == nil && (strings.HasPrefix(ref, "sha256:") || isIDPrefix(img.ID, ref)):
			add(img, "")
		case reference.HasTag(ref):
			if err != nil {
				return nil, err
			}
			add(img, reference.Normalize(ref))
		default: // a bare name: every tag of its repository
			all, lerr := d.images.List()
			if lerr != nil {
				return nil, lerr
			}
			repo := reference.Repository(ref)
			found := false
			for _, i := range all {
				for _, t := range i.RepoTags {
					if reference.Repository(t) == repo {
						add(i, t)
						found = true
					}
				}
			}
			if !found {
				if err == nil {
					err = errdefs.NotFound("No such image: %s", ref)
				}
				return nil, err
			}
		}
	}
	return out, nil
}

// saveLayer writes the tree at dir as a tar into file path, and returns
// it open at its start with its sha256.
func saveLayer(path, dir string) (*os.File, string, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	if err := berthruntime.WriteTree(io.MultiWriter(f, h), dir); err != nil {
		f.Close()
		return nil, "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, "", err
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}

// writeTarFile writes one regular file of size bytes, read from r, into tw.
func writeTarFile(tw *tar.Writer, name string, r io.Reader, size int64) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// ociImageConfig is the OCI image config docker save writes for img.
func ociImageConfig(img *image.Image, layerSum string) map[string]any {
	cfg := map[string]any{}
	if c := img.Config; c != nil {
		set := func(k string, v any, ok bool) {
			if ok {
				cfg[k] = v
			}
		}
		set("User", c.User, c.User != "")
		set("Env", c.Env, len(c.Env) > 0)
		set("Cmd", c.Cmd, len(c.Cmd) > 0)
		set("Entrypoint", c.Entrypoint, len(c.Entrypoint) > 0)
		set("WorkingDir", c.WorkingDir, c.WorkingDir != "")
		set("Labels", c.Labels, len(c.Labels) > 0)
		set("StopSignal", c.StopSignal, c.StopSignal != "")
		set("OnBuild", c.OnBuild, len(c.OnBuild) > 0)
		set("Shell", c.Shell, len(c.Shell) > 0)
		if h := c.Healthcheck; h != nil {
			cfg["Healthcheck"] = map[string]any{"Test": h.Test, "Interval": h.Interval, "Timeout": h.Timeout,
				"StartPeriod": h.StartPeriod, "StartInterval": h.StartInterval, "Retries": h.Retries}
		}
		if len(c.ExposedPorts) > 0 {
			ports := map[string]struct{}{}
			for _, p := range c.ExposedPorts {
				ports[p] = struct{}{}
			}
			cfg["ExposedPorts"] = ports
		}
		if len(c.Volumes) > 0 {
			vols := map[string]struct{}{}
			for _, v := range c.Volumes {
				vols[v] = struct{}{}
			}
			cfg["Volumes"] = vols
		}
	}
	out := map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": img.Created.UTC().Format(time.RFC3339Nano),
		"config": cfg, "rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerSum}},
	}
	if img.Comment != "" {
		out["comment"] = img.Comment // moby's image config keeps import -m there
	}
	if img.Author != "" {
		out["author"] = img.Author
	}
	if h := savedHistory(img); len(h) > 0 {
		out["history"] = h
	}
	return out
}

// savedEntry is an entry of a saved config's history: the OCI image
// spec's, an undated one without "created" (not year 1).
type savedEntry struct {
	Created    *time.Time `json:"created,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Author     string     `json:"author,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
}

// savedHistory is img's history as docker save writes it beside the one
// layer berth saves (the image's whole tree): every entry kept, the last
// that made a layer (the last entry, when none did) marking the saved one
// and the others none, so that the entries that make layers are as many
// as the layers (moby's ImageHistory pairs them) and docker history after
// a load lists what made the image, its size all in one entry.
func savedHistory(img *image.Image) []savedEntry {
	if len(img.History) == 0 {
		return nil
	}
	out := make([]savedEntry, len(img.History))
	last := len(out) - 1 // when no entry made a layer
	for i, h := range img.History {
		out[i] = savedEntry{CreatedBy: h.CreatedBy, Author: h.Author, Comment: h.Comment, EmptyLayer: true}
		if !h.Created.IsZero() {
			out[i].Created = &img.History[i].Created
		}
	}
	for i := len(img.History) - 1; i >= 0; i-- {
		if !img.History[i].EmptyLayer {
			last = i
			break
		}
	}
	out[last].EmptyLayer = false
	return out
}

// isIDPrefix says whether ref is a prefix of the hex of ID id.
func isIDPrefix(id, ref string) bool {
	return len(ref) >= 1 && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), ref)
}
