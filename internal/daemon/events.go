package daemon

import (
	"maps"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime/image"
)

// Events returns the events at or after since (none when since is zero)
// and a channel of those that follow, until cancel (docker events).
func (d *Daemon) Events(since time.Time) ([]events.Event, <-chan events.Event, func()) {
	return d.events.Subscribe(since)
}

// containerEvent logs action of c as moby's LogContainerEventWithAttributes
// does: the container's labels, its name and image, and extra.
func (d *Daemon) containerEvent(c *container.Container, action string, extra map[string]string) {
	attrs := make(map[string]string, len(c.Config.Labels)+2+len(extra))
	maps.Copy(attrs, c.Config.Labels)
	attrs["name"], attrs["image"] = c.Name, c.Config.Image
	maps.Copy(attrs, extra)
	d.events.Publish(events.Event{Type: events.TypeContainer, Action: action, ActorID: c.ID, Attributes: attrs})
}

// dieEvent is the "die" of c after a run of ran, with its exit code.
func (d *Daemon) dieEvent(c *container.Container, code int, ran time.Duration) {
	d.containerEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
}

// killEvent is the "kill" of c with sig (moby logs one for each signal a
// kill, a stop or an rm -f sends).
func (d *Daemon) killEvent(c *container.Container, sig syscall.Signal) {
	d.containerEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
}

// networkEvent logs action of n as moby's LogNetworkEventWithAttributes
// does: its name and driver, and for a connect or disconnect the
// container's ID.
func (d *Daemon) networkEvent(n *network.Network, action, containerID string) {
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	if containerID != "" {
		attrs["container"] = containerID
	}
	d.events.Publish(events.Event{Type: events.TypeNetwork, Action: action, ActorID: n.ID, Attributes: attrs})
}

// volumeEvent logs action on volume name, as moby's LogVolumeEvent.
func (d *Daemon) volumeEvent(name, action string, attrs map[string]string) {
	d.events.Publish(events.Event{Type: events.TypeVolume, Action: action, ActorID: name, Attributes: attrs})
}

// containerVolumesEvent logs c's volumes mounted ("mount", at a start,
// with moby's attributes: the propagation of a volume is "") or
// unmounted ("unmount", at its exit).
func (d *Daemon) containerVolumesEvent(c *container.Container, action string) {
	for _, m := range c.Config.Mounts {
		if m.Type != container.MountVolume {
			continue
		}
		attrs := map[string]string{"driver": "local", "container": c.ID}
		if action == "mount" {
			attrs["destination"], attrs["read/write"], attrs["propagation"] = m.Destination, strconv.FormatBool(!m.ReadOnly), ""
		}
		d.volumeEvent(m.Source, action, attrs)
	}
}

// imageEvent logs action on image id under name, with the image's
// labels, as moby's LogImageEvent (nil labels: the image is gone).
func (d *Daemon) imageEvent(id, name, action string, labels map[string]string) {
	attrs := maps.Clone(labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"] = name
	d.events.Publish(events.Event{Type: events.TypeImage, Action: action, ActorID: id, Attributes: attrs})
}

// imageLabels are img's labels for its events.
func imageLabels(img *image.Image) map[string]string {
	if img == nil || img.Config == nil {
		return nil
	}
	return img.Config.Labels
}

// containerNetworksEvent logs action ("connect" at a start, "disconnect"
// at an exit) on each network c is on, as moby does when it joins and
// leaves them.
func (d *Daemon) containerNetworksEvent(c *container.Container, action string) {
	if _, shared := container.SharedNetns(c.Config.NetworkMode); shared {
		return
	}
	for name := range c.Config.Networks {
		if n, err := d.net.Network(name); err == nil {
			d.networkEvent(n, action, c.ID)
		}
	}
}
