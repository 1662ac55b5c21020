package daemon

// Legacy links (docker run --link) on the default bridge, as moby keeps
// them (daemon/links.go, container_operations_unix.go): a container, the
// parent, names other containers, its children, by an alias. Each start
// of the parent puts "IP<TAB>alias hostname name" for each child into its
// /etc/hosts and the child's ports and environment into its own
// (container.LinkEnv); a child that starts again later updates its line
// in the running parents' files. On user-defined networks links are name
// aliases of the resolver instead (network.JoinRequest.Links).
//
// Lock order: a container's mu, then d.mu. The links and their hosts lines
// are under d.mu, so that /etc/hosts can be written with the container's
// lock held; what a start needs of the children is read before the
// parent is locked, one child at a time, as netnsDonor reads the donor.

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// errLinksHostNetwork is moby's refusal of links to or from the host network.
const errLinksHostNetwork = "conflicting options: host type networking can't be used with links. This would result in undefined behavior"

// planLinksLocked finds each link's child as moby's registerLinks does:
// by name, ID or ID prefix, following "container:" network modes to the
// container whose namespace it shares; a child on the host network is
// refused. A second link with an alias already used is left out with a
// warning, as moby leaves it. d.mu is held.
func (d *Daemon) planLinksLocked(parent string, links []container.Link) ([]container.Link, error) {
	var out []container.Link
	for _, l := range links {
		child, err := d.linkChildLocked(l.Name)
		if err != nil {
			return nil, err
		}
		if l.Alias == "" {
			// "/parent/" is the parent's own name: moby's registerLink
			// cannot reserve it and leaves the link out.
			d.log.Warn("link without an alias, ignoring it", "container", parent, "child", l.Name)
			continue
		}
		if child.c.Config.NetworkMode == network.NameHost {
			return nil, errdefs.Invalid(errLinksHostNetwork)
		}
		if slices.ContainsFunc(out, func(o container.Link) bool { return o.Alias == l.Alias }) {
			d.log.Warn("link alias already used, ignoring the link", "container", parent, "alias", l.Alias, "child", l.Name)
			continue
		}
		out = append(out, container.Link{ChildID: child.c.ID, Name: child.c.Name, Alias: l.Alias})
	}
	return out, nil
}

// linkedLocked is the child a link name ("parent/alias") stands for, as
// moby's name registry holds link names beside container names; nil if
// there is none. d.mu is held.
func (d *Daemon) linkedLocked(ref string) *ctrState {
	parent, alias, ok := strings.Cut(ref, "/")
	if !ok {
		return nil
	}
	for _, cs := range d.containers {
		if cs.c.Name != parent {
			continue
		}
		for _, l := range d.links[cs.c.ID] {
			if l.Alias == alias {
				return d.containers[l.ChildID]
			}
		}
	}
	return nil
}

// linkChildLocked is the container a link names, past any "container:"
// network modes.
func (d *Daemon) linkChildLocked(ref string) (*ctrState, error) {
	cs, err := d.lookupLocked(ref)
	for hops := 0; err == nil; hops++ {
		next, shared := container.SharedNetns(cs.c.Config.NetworkMode)
		if !shared {
			return cs, nil
		}
		if hops > len(d.containers) {
			return nil, errdefs.Invalid("could not get container for %s: its network mode leads around a circle", ref)
		}
		ref = next
		cs, err = d.lookupLocked(ref)
	}
	if errdefs.Is(err, errdefs.KindNotFound) {
		// Invalid, as moby has it, so that docker run does not take the
		// 404 for a missing image.
		return nil, errdefs.Invalid("could not get container for %s: %s", ref, err)
	}
	return nil, err
}

// linkStart is what a parent's links give one start: the environment,
// and the /etc/hosts line of each child by alias.
type linkStart struct {
	env   []string
	hosts map[string]string
}

// linksAtStart reads, before the parent is locked, what its links give
// it if it starts on the default bridge now, with moby's errors for a
// child that is not on the default bridge or not running (a child
// removed since counts as not running). strict false (a refresh, not a
// start) skips those children instead.
func (d *Daemon) linksAtStart(cs *ctrState, strict bool) (linkStart, error) {
	d.mu.Lock()
	links := slices.Clone(d.links[cs.c.ID])
	d.mu.Unlock()
	if len(links) == 0 {
		return linkStart{}, nil
	}
	bridge, err := d.net.Network(network.NameBridge)
	if err != nil || d.netSettings.noBridge {
		// No default bridge, or one kept under --bridge none for the
		// containers still on it, which nothing joins meanwhile.
		return linkStart{}, nil
	}
	cs.mu.Lock()
	parent, onBridge := cs.c.Name, onNetwork(cs.c.Config.Networks, bridge)
	cs.mu.Unlock()
	if !onBridge {
		return linkStart{}, nil
	}
	out := linkStart{hosts: map[string]string{}}
	for _, l := range links {
		linkName := "/" + parent + "/" + l.Alias
		child, err := d.linkedChild(l, bridge)
		switch {
		case err == nil:
		case !strict:
			continue
		default:
			return linkStart{}, err
		}
		if !child.running {
			if !strict {
				continue
			}
			return linkStart{}, fmt.Errorf("Cannot link to a non running container: /%s AS %s", child.name, linkName)
		}
		ip := ""
		if child.addr.IsValid() {
			ip = child.addr.String()
			// The alias's last element, as moby's path.Split of the link name.
			out.hosts[l.Alias] = ip + "\t" + linkHostNames(path.Base(l.Alias), child.hostname, child.name)
		}
		out.env = append(out.env, container.LinkEnv(linkName, ip, child.env, child.exposed)...)
	}
	return out, nil
}

// linkHostNames are the names of a child's /etc/hosts line, as moby's
// addLegacyLinks writes them: the alias, the child's hostname, and its
// name when that is not the alias.
func linkHostNames(alias, hostname, name string) string {
	names := alias + " " + hostname
	if alias != name {
		names += " " + name
	}
	return names
}

// linkChild is what a link needs of its child, copied under its lock.
type linkChild struct {
	name, hostname string
	running        bool
	addr           netip.Addr
	env, exposed   []string
}

// linkedChild reads l's child; the error is moby's for a child not on the
// default bridge (not running, a child removed since: running false).
func (d *Daemon) linkedChild(l container.Link, bridge *network.Network) (linkChild, error) {
	cs := d.stateByID(l.ChildID)
	if cs == nil {
		return linkChild{name: l.Name}, nil
	}
	cs.mu.Lock()
	c := cs.c
	child := linkChild{name: c.Name, hostname: c.Config.Hostname, running: c.Running(),
		env: slices.Clone(c.Config.Env), exposed: slices.Clone(c.Config.ExposedPorts)}
	onBridge, sbID := onNetwork(c.Config.Networks, bridge), c.State.SandboxID
	cs.mu.Unlock()
	if !onBridge {
		return child, fmt.Errorf("Cannot link to /%s, as it does not belong to the default network", child.name)
	}
	if child.running && sbID != "" {
		for _, a := range d.net.Attachments(sbID) {
			if a.Network != nil && a.Network.ID == bridge.ID && a.Endpoint != nil {
				child.addr = a.Endpoint.Address.Addr()
			}
		}
	}
	return child, nil
}

// onNetwork reports whether a container's networks, keyed by name or ID,
// include n.
func onNetwork(nets map[string]container.EndpointRequest, n *network.Network) bool {
	_, byName := nets[n.Name]
	_, byID := nets[n.ID]
	return byName || byID
}

// setLinkHosts replaces the parent's link lines in the hosts file's source.
func (d *Daemon) setLinkHosts(parentID string, hosts map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(hosts) == 0 {
		delete(d.linkHosts, parentID)
		return
	}
	d.linkHosts[parentID] = hosts
}

// linkHostLines are the parent's link lines for /etc/hosts, in the order
// of its links. The caller may hold the parent's lock.
func (d *Daemon) linkHostLines(parentID string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	hosts := d.linkHosts[parentID]
	if len(hosts) == 0 {
		return nil
	}
	var lines []string
	for _, l := range d.links[parentID] {
		if line, ok := hosts[l.Alias]; ok {
			lines = append(lines, line)
		}
	}
	return lines
}

// refreshLinkParents updates, after child started or joined the default
// bridge, its line in the /etc/hosts of each running parent, as moby's
// addLegacyLinks does for the parents (UpdateHostsEntry): only that
// child's lines change. No container lock may be held.
func (d *Daemon) refreshLinkParents(childID string) {
	d.mu.Lock()
	var parents []*ctrState
	for pid, links := range d.links {
		if slices.ContainsFunc(links, func(l container.Link) bool { return l.ChildID == childID }) {
			if cs := d.containers[pid]; cs != nil {
				parents = append(parents, cs)
			}
		}
	}
	d.mu.Unlock()
	for _, cs := range parents {
		fresh, _ := d.linksAtStart(cs, false)
		d.mu.Lock() // read, merge and set at once: a parent's start may set its lines too
		hosts := maps.Clone(d.linkHosts[cs.c.ID])
		if hosts == nil {
			hosts = map[string]string{}
		}
		changed := map[string]string{} // by the alias the file names
		for _, l := range d.links[cs.c.ID] {
			if l.ChildID != childID {
				continue
			}
			if line, ok := fresh.hosts[l.Alias]; ok {
				hosts[l.Alias] = line
				changed[path.Base(l.Alias)] = line
			}
		}
		d.linkHosts[cs.c.ID] = hosts
		d.mu.Unlock()
		cs.mu.Lock()
		if cs.c.Running() && cs.c.State.SandboxID != "" && !cs.goneLocked() {
			if err := d.hostsSetLinks(cs.c, changed); err != nil {
				d.log.Warn("updating a linked container's hosts file", "container", cs.c.Name, "err", err)
			}
		}
		cs.mu.Unlock()
	}
}

// relinkByName, at a daemon start, points each link whose child has been
// removed at the container that has the child's name now, if any: moby
// registers links again by name from HostConfig.Links at each start. The
// record keeps the old ID (the next start finds the same again).
func (d *Daemon) relinkByName() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for pid, links := range d.links {
		for i, l := range links {
			if d.containers[l.ChildID] != nil {
				continue
			}
			if child, err := d.linkChildLocked(l.Name); err == nil && child.c.ID != pid {
				links[i].ChildID = child.c.ID
				d.log.Info("link follows a container of the removed child's name", "link", "/"+d.containers[pid].c.Name+"/"+l.Alias, "child", child.c.ShortID())
			}
		}
	}
}

// restoreLinkHosts rebuilds, after a restart, the link lines of the
// running parents from their running children (a child not running has
// no line until it starts again).
func (d *Daemon) restoreLinkHosts() {
	for _, cs := range d.states() {
		cs.mu.Lock()
		running := cs.c.Running()
		cs.mu.Unlock()
		if !running {
			continue
		}
		if ls, err := d.linksAtStart(cs, false); err == nil {
			d.setLinkHosts(cs.c.ID, ls.hosts)
		}
	}
}

// ContainerLinks are the container's links as inspect and ps show them:
// "/child:/parent/alias" for its own, "/parent/alias" for each it is the
// child of.
func (d *Daemon) ContainerLinks(_ context.Context, id string) api.LinkNames {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out api.LinkNames
	name := func(id, fallback string) string {
		if cs := d.containers[id]; cs != nil {
			return cs.c.Name
		}
		return fallback
	}
	self := name(id, "")
	for _, l := range d.links[id] {
		out.Links = append(out.Links, "/"+name(l.ChildID, l.Name)+":/"+self+"/"+l.Alias)
	}
	for pid, links := range d.links {
		for _, l := range links {
			if l.ChildID == id {
				out.Names = append(out.Names, "/"+name(pid, "")+"/"+l.Alias)
			}
		}
	}
	slices.Sort(out.Names)
	return out
}

// RemoveLink is docker rm --link: it forgets the link "/parent/alias"
// (moby's rmLink) and takes its line out of a running parent's
// /etc/hosts, as moby's rebuild of the parent's sandbox does; the running
// process keeps what the link gave its environment.
func (d *Daemon) RemoveLink(_ context.Context, name string) error {
	name = "/" + strings.TrimPrefix(name, "/")
	parentPath, alias := path.Split(name)
	if parentPath == "/" {
		if _, err := d.lookup(name); err != nil {
			return err
		}
		return errdefs.Conflict("Conflict, cannot remove the default link name of the container")
	}
	parentName := strings.TrimSuffix(parentPath, "/")
	d.mu.Lock()
	cs, err := d.lookupLocked(parentName)
	found := err == nil && slices.ContainsFunc(d.links[cs.c.ID], func(l container.Link) bool { return l.Alias == alias })
	d.mu.Unlock()
	if !found {
		return errdefs.NotFound("No such container: %s", strings.TrimPrefix(name, "/"))
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	links := slices.DeleteFunc(slices.Clone(cs.c.Config.Links), func(l container.Link) bool { return l.Alias == alias })
	old := cs.c.Config.Links
	cs.c.Config.Links = links
	if err := d.putContainer(cs.c); err != nil {
		cs.c.Config.Links = old
		return err
	}
	d.mu.Lock()
	// The index, not the record: relinkByName may have pointed a link at
	// another child than the record names.
	live := slices.DeleteFunc(slices.Clone(d.links[cs.c.ID]), func(l container.Link) bool { return l.Alias == alias })
	if len(live) == 0 {
		delete(d.links, cs.c.ID)
	} else {
		d.links[cs.c.ID] = live
	}
	delete(d.linkHosts[cs.c.ID], alias)
	d.mu.Unlock()
	if cs.c.Running() && cs.c.State.SandboxID != "" {
		if err := d.writeHosts(cs.c); err != nil {
			d.log.Warn("rewriting a container's hosts file after rm --link", "container", cs.c.Name, "err", err)
		}
	}
	d.log.Info("link removed", "link", name)
	return nil
}
