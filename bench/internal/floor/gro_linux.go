package floor

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd, data uint32
}

// ifreqData is struct ifreq with its union holding a pointer (ifr_data).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte
}

// SetGRO turns generic receive offload on or off for the link ifName in the
// namespace at nsPath ("" = the caller's). On a veth, GRO on gives the
// receiving end NAPI queues of its own, so packets it receives no longer
// wait in the CPU's shared backlog (net.core.netdev_max_backlog).
func SetGRO(nsPath, ifName string, on bool) error {
	set := func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		val := ethtoolValue{cmd: unix.ETHTOOL_SGRO}
		if on {
			val.data = 1
		}
		var ifr ifreqData
		copy(ifr.name[:], ifName)
		ifr.data = uintptr(unsafe.Pointer(&val))
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&val)
		if errno != 0 {
			return fmt.Errorf("set GRO on %q: %w", ifName, errno)
		}
		return nil
	}
	if nsPath == "" {
		return set()
	}
	return sandbox.Do(nsPath, set)
}
