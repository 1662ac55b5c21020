package network

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
)

// DefaultMTU is Docker's: 1500, with no auto-detection.
const DefaultMTU = 1500

// knownOptions are the driver options berth understands. Anything else
// is taken, kept and ignored, as moby's bridge driver does (its
// fromLabels has no default case); a network create logs a warning for
// each (IgnoredOptions) and gives it in its answer's Warning (which the
// docker CLI does not print).
var knownOptions = map[string]bool{
	OptBridgeName:           true,
	OptEnableICC:            true,
	OptEnableMasq:           true,
	OptHostBindingIPv4:      true,
	OptHostIPv4:             true,
	OptHostIPv6:             true,
	OptContainerIfacePrefix: true,
	OptMTU:                  true,
	OptHostAccess:           true,
	// Read at the API edge (CreateRequest.EnableIPv6); kept for inspect.
	OptEnableIPv6: true,
	OptEnableIPv4: true,
	// Docker 28's gateway modes (firewall/gwmode.go).
	OptGatewayModeIPv4: true,
	OptGatewayModeIPv6: true,
	OptInhibitIPv4:     true,
	// Docker 28's direct routing (firewall/direct.go).
	OptTrustedHostInterfaces: true,
}

// unsupportedOptions are moby's bridge options berth does not implement,
// each with the test of a value that changes nothing (false): such a
// value is taken; any other is refused, since ignoring it would make a
// network other than the one asked for.
var unsupportedOptions = map[string]func(k, v string) (noop bool, err error){
	"com.docker.network.bridge.default_bridge": boolOff,
}

// boolOff reports whether v is false; a value that does not parse is
// refused in moby's words.
func boolOff(k, v string) (bool, error) {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, parseErr(k, v, err.Error())
	}
	return !on, nil
}

// IgnoredOptions are the keys of opts the bridge driver neither knows
// nor refuses, sorted: they have no effect.
func IgnoredOptions(opts map[string]string) []string {
	var keys []string
	for k := range opts {
		if _, unsupported := unsupportedOptions[k]; !knownOptions[k] && !unsupported {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// ignoredOptionsWarnings say, for a network create's answer, which of
// opts have no effect.
func ignoredOptionsWarnings(opts map[string]string) []string {
	var ws []string
	for _, k := range IgnoredOptions(opts) {
		ws = append(ws, fmt.Sprintf("network option %q is not one berth's bridge driver knows: it is kept and has no effect", k))
	}
	return ws
}

// validBridgeName matches the bridge names berth takes: at most 15 bytes
// (IFNAMSIZ-1) of the characters the firewall's chain names may hold.
var validBridgeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)

// CheckBridgeOptions checks driver options as a network create would
// (the daemon's, at its start), for a bridge device called name.
func CheckBridgeOptions(opts map[string]string, name string) error {
	_, err := parseBridgeOptions(opts, name)
	return err
}

// parseBridgeOptions turns a user's option map into a BridgeConfig, with
// Docker's defaults for what is missing.
func parseBridgeOptions(opts map[string]string, defaultName string) (*BridgeConfig, error) {
	bc := &BridgeConfig{
		Name:               defaultName,
		EnableICC:          true,
		EnableIPMasquerade: true,
		HostBindingIPv4:    netip.IPv4Unspecified(),
		MTU:                DefaultMTU,
	}
	for k, v := range opts {
		if noop := unsupportedOptions[k]; noop != nil {
			switch ok, err := noop(k, v); {
			case err != nil:
				return nil, err
			case !ok:
				return nil, errdefs.Invalid("network option %s=%s is not supported by berth's bridge driver", k, v)
			}
			continue
		}
		var err error
		switch k {
		case OptBridgeName:
			// Narrower than the kernel's rule (driverapi.CheckIfName):
			// the firewall's chain names are made from it.
			if !validBridgeName.MatchString(v) {
				err = fmt.Errorf("bridge name %q is not a valid interface name (1-15 characters of a-z, A-Z, 0-9, '_', '.', '-')", v)
			}
			bc.Name = v
		case OptEnableICC:
			if bc.EnableICC, err = parseBool(k, v); err != nil {
				return nil, err
			}
		case OptEnableMasq:
			if bc.EnableIPMasquerade, err = parseBool(k, v); err != nil {
				return nil, err
			}
		case OptHostBindingIPv4:
			// Any address, despite the name, as moby's DefaultBindingIP:
			// an IPv6 one publishes on IPv6 alone (holdPorts).
			bc.HostBindingIPv4, err = netip.ParseAddr(v)
			if err == nil && bc.HostBindingIPv4.Zone() != "" {
				err = fmt.Errorf("%s takes an address without a zone, not %q", k, v)
			}
			bc.HostBindingIPv4 = bc.HostBindingIPv4.Unmap()
		case OptHostIPv4, OptHostIPv6:
			a, perr := netip.ParseAddr(v)
			if perr != nil || a.Zone() != "" {
				return nil, parseErr(k, v, "nil ip") // moby's net.ParseIP nil
			}
			if a = a.Unmap(); (k == OptHostIPv4) != a.Is4() {
				family := "an IPv4"
				if k == OptHostIPv6 {
					family = "an IPv6"
				}
				return nil, errdefs.Invalid("%s takes %s address, not %s", k, family, v)
			}
			if k == OptHostIPv4 {
				bc.HostIPv4 = a
			} else {
				bc.HostIPv6 = a
			}
		case OptContainerIfacePrefix:
			// A name with room for the number: 13 bytes at most.
			if cerr := driverapi.CheckIfName(v); cerr != nil || len(v) > driverapi.MaxIfNameLen-2 {
				err = fmt.Errorf("interface prefix %q is not the start of a valid interface name (1 to 13 bytes, no '/', ':', '%%', spaces or control characters)", v)
			}
			bc.IfacePrefix = v
		case OptMTU:
			if _, aerr := strconv.Atoi(v); aerr != nil {
				return nil, parseErr(k, v, aerr.Error())
			}
			bc.MTU, err = parseMTU(v)
		case OptHostAccess:
			if bc.HostAccess, err = parseBool(k, v); err != nil {
				return nil, err
			}
		case OptInhibitIPv4:
			if bc.InhibitIPv4, err = parseBool(k, v); err != nil {
				return nil, err
			}
		case OptTrustedHostInterfaces:
			// moby's strings.FieldsFunc at ':'; a name is checked here
			// rather than failing each endpoint's rules later, as an
			// iptables "-i" with a name too long fails them in Docker.
			bc.TrustedHostInterfaces = nil
			if names := firewall.SplitTrusted(v); len(names) > 0 {
				bc.TrustedHostInterfaces = names
			}
			for _, name := range bc.TrustedHostInterfaces {
				if cerr := firewall.CheckTrustedName(name); cerr != nil {
					err = fmt.Errorf("trusted host interface %q: %w", name, cerr)
					break
				}
			}
		case OptGatewayModeIPv4, OptGatewayModeIPv6:
			mode, err := firewall.ParseGatewayMode(v)
			if err != nil {
				// moby's parseErr words around newGwMode's.
				return nil, errdefs.Invalid("failed to parse %s value: %s (%s)", k, v, err.Error())
			}
			if k == OptGatewayModeIPv4 {
				bc.GatewayMode4 = mode
			} else {
				bc.GatewayMode6 = mode
			}
		}
		if err != nil {
			return nil, errdefs.Invalid("invalid option %s=%q: %w", k, v, err)
		}
	}
	return bc, nil
}

func parseBool(k, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, parseErr(k, v, err.Error())
	}
	return b, nil
}

// parseErr is moby's bridge driver's error for an option value it cannot
// parse (drivers/bridge/bridge_linux.go, parseErr).
func parseErr(k, v, why string) error {
	return errdefs.Invalid("failed to parse %s value: %s (%s)", k, v, why)
}

func parseMTU(v string) (int, error) {
	mtu, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("MTU must be a number")
	}
	if mtu < 68 || mtu > 65535 {
		return 0, fmt.Errorf("MTU %d is outside 68-65535", mtu)
	}
	return mtu, nil
}

// validateNetworkName is moby's rule for a network's name (NewNetwork:
// anything but blank, and not a predefined network's), with one refusal
// of berth's own: a control character (a line break, a NUL, an escape),
// which would write lines and terminal sequences of the name's own into
// `network ls`, logs and events. A "/", a space or a non-ASCII letter is
// taken, as Docker takes them (circleci's "ci_build-1/abc"): a name is
// only ever a key and a label, never a device, chain or file name.
func validateNetworkName(name string) error {
	switch {
	case name == NameBridge || name == NameHost || name == NameNone || name == "default":
		return errdefs.Forbidden("operation is not permitted on predefined %s network ", name) // moby's PredefinedNetworkError
	case strings.TrimSpace(name) == "":
		return errdefs.Invalid("invalid name: name is empty") // moby's words
	case !utf8.ValidString(name):
		return errdefs.Invalid("invalid network name %q: not UTF-8", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return errdefs.Invalid("invalid network name %q: control characters are not allowed", name)
	}
	return nil
}

// defaultBridgeOptions are the options Docker shows for its default bridge.
func defaultBridgeOptions(bc *BridgeConfig) map[string]string {
	return map[string]string{
		OptDefaultBridge:   "true",
		OptEnableICC:       strconv.FormatBool(bc.EnableICC),
		OptEnableMasq:      strconv.FormatBool(bc.EnableIPMasquerade),
		OptHostBindingIPv4: bc.HostBindingIPv4.String(),
		OptBridgeName:      bc.Name,
		OptMTU:             strconv.Itoa(bc.MTU),
	}
}
