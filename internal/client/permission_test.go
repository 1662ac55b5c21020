package client_test

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-net/berth/internal/client"
)

// TestConnectErrorSaysPermissionDenied: a socket whose mode keeps the user
// out is reported as docker reports it, not as a daemon that is not running.
func TestConnectErrorSaysPermissionDenied(t *testing.T) {
	err := &client.ConnectError{Host: "unix:///run/berth/berth.sock", Err: &net.OpError{
		Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES),
	}}
	want := "permission denied while trying to connect to the berth daemon socket at unix:///run/berth/berth.sock: dial unix: connect: permission denied"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
	other := &client.ConnectError{Host: "unix:///x", Err: syscall.ECONNREFUSED}
	if got := other.Error(); !strings.Contains(got, "Is the berth daemon running?") {
		t.Errorf("refused connection says %q", got)
	}
}
