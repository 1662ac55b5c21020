package bridge

import (
	"testing"

	"github.com/berth-net/berth/internal/driverapi"
)

// A network isolated in every family it has (gateway mode isolated, on
// an internal network) has a bridge with no address: that is valid.
func TestIsolatedBridgeNeedsNoGateway(t *testing.T) {
	if err := validateBridgeSpec(driverapi.BridgeSpec{Name: "br-iso", MTU: 1500, Isolated: true}, "network:x"); err != nil {
		t.Errorf("validateBridgeSpec(isolated, no gateway) = %v", err)
	}
}
