package network

import "github.com/berth-net/berth/internal/errdefs"

// MaxBridgePorts is how many endpoints one bridge network takes. The
// kernel numbers bridge ports in a bitmap of BR_MAX_PORTS (1024) bits and
// reserves port number 0, so the 1,024th port fails with EXFULL, whose
// text, "exchange full", tells a user nothing. Measured: 1,023 veths join a
// bridge, the next one fails.
const MaxBridgePorts = 1023

// checkBridgeRoomLocked refuses a new endpoint on a bridge network that
// already has MaxBridgePorts, before any address or kernel object is taken.
func (c *Controller) checkBridgeRoomLocked(n *Network) error {
	if n.Driver != DriverBridge {
		return nil
	}
	if cnt := c.endpointCountLocked(n.ID); cnt >= MaxBridgePorts {
		return errdefs.Unavailable("network %q has %d endpoints, the most a Linux bridge takes (its %d ports, port 0 reserved); use another network for more containers",
			n.Name, cnt, MaxBridgePorts+1)
	}
	return nil
}
