package harness

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// Run creates and starts a detached container running cmd on image with
// networkMode ("bridge", "none", or a network's name), as `berth run -d`
// does, and returns its ID.
func (d *Daemon) Run(ctx context.Context, name, image, networkMode string, cmd ...string) (string, error) {
	return d.run(ctx, name, container.CreateRequest{
		Config:     &container.Config{Image: image, Cmd: cmd},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(networkMode)},
	})
}

// RunPublished is Run with the container's TCP port ctrPort published
// on hostPort of every host address (`-p hostPort:ctrPort`).
func (d *Daemon) RunPublished(ctx context.Context, name, image, networkMode string, hostPort, ctrPort uint16, cmd ...string) (string, error) {
	port := nat.Port(fmt.Sprintf("%d/tcp", ctrPort))
	req := container.CreateRequest{
		Config: &container.Config{Image: image, Cmd: cmd, ExposedPorts: nat.PortSet{port: {}}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(networkMode),
			PortBindings: nat.PortMap{port: {{HostPort: fmt.Sprint(hostPort)}}}},
	}
	return d.run(ctx, name, req)
}

// run creates the container req describes and starts it.
func (d *Daemon) run(ctx context.Context, name string, req container.CreateRequest) (string, error) {
	resp, err := d.ContainerCreate(ctx, name, req)
	if err != nil {
		return "", fmt.Errorf("create %q: %w", name, err)
	}
	if err := d.ContainerStart(ctx, resp.ID); err != nil {
		return resp.ID, fmt.Errorf("start %q: %w", name, err)
	}
	return resp.ID, nil
}

// Where is a container's sandbox path and its address on one network.
func (d *Daemon) Where(ctx context.Context, ref, net string) (sandboxKey string, addr netip.Addr, err error) {
	c, _, err := d.ContainerInspect(ctx, ref)
	if err != nil {
		return "", netip.Addr{}, err
	}
	if c.NetworkSettings == nil {
		return "", netip.Addr{}, fmt.Errorf("container %q has no network settings", ref)
	}
	if ep := c.NetworkSettings.Networks[net]; ep != nil && ep.IPAddress != "" {
		addr, err = netip.ParseAddr(ep.IPAddress)
	}
	return c.NetworkSettings.SandboxKey, addr, err
}

// CreateNetwork creates a bridge network on subnet whose device is bridge.
func (d *Daemon) CreateNetwork(ctx context.Context, name, bridge string, subnet netip.Prefix) error {
	req := network.CreateRequest{Name: name, CreateOptions: network.CreateOptions{
		Driver:  "bridge",
		Options: map[string]string{"com.docker.network.bridge.name": bridge},
		IPAM:    &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet.String()}}},
	}}
	_, err := d.NetworkCreate(ctx, req)
	return err
}

// RemoveAll force-removes every container, a few at a time.
func (d *Daemon) RemoveAll(ctx context.Context) error {
	list, err := d.ContainerList(ctx, true, nil)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, c := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := d.ContainerRemove(ctx, c.ID, true); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("remove %d of %d containers failed, first: %w", len(errs), len(list), errs[0])
	}
	return nil
}
