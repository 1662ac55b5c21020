package daemon

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/network"
	"github.com/spf13/pflag"
)

// DefaultConfigFile is where `berth daemon` reads its daemon.json, as
// dockerd reads /etc/docker/daemon.json.
const DefaultConfigFile = "/etc/berth/daemon.json"

// addFlags declares the daemon's options on f, into cfg. Their names and
// meanings are dockerd's wherever dockerd has the option; the keys of the
// configuration file are the flags' names (fileKeys lists the others).
func addFlags(f *pflag.FlagSet, cfg *Config) {
	f.StringVar(&cfg.ConfigFile, "config-file", DefaultConfigFile, "daemon configuration file (dockerd's daemon.json keys)")
	f.StringVar(&cfg.DataRoot, "data-root", "/var/lib/berth", "directory of persistent state")
	f.StringVar(&cfg.ExecRoot, "exec-root", "/run/berth", "directory of runtime state (netns, runc)")
	f.StringVar(&cfg.Host, "host", "unix:///run/berth/berth.sock", "socket to listen on")
	f.StringVar(&cfg.BridgeName, "bridge-name", network.DefaultBridgeDevice, "device name of the default bridge network")
	f.StringVarP(&cfg.Bridge, "bridge", "b", "", `the default bridge network on a bridge device of the administrator's, with its address as the --bip, as dockerd's; "none": no default bridge network`)
	f.BoolVar(&cfg.BridgeHostAccess, "bridge-host-access", false, "let containers on the default bridge reach the host's own services, as Docker does (user networks: -o "+network.OptHostAccess+"=true)")
	f.StringVar(&cfg.BIP, "bip", "", "the default bridge's address and subnet, as CIDR (10.20.0.1/24)")
	f.StringVar(&cfg.FixedCIDR, "fixed-cidr", "", "the part of the default bridge's subnet that containers get addresses from (IPv4)")
	f.IntVar(&cfg.MTU, "mtu", network.DefaultMTU, "the default bridge's MTU")
	f.StringVar(&cfg.IP, "ip", "0.0.0.0", "host address that ports published from the default bridge go on when -p gives none")
	f.BoolVar(&cfg.ICC, "icc", true, "let containers on the default bridge reach each other")
	f.BoolVar(&cfg.IPMasq, "ip-masq", true, "masquerade the default bridge's traffic out of the host")
	f.BoolVar(&cfg.IPv6, "ipv6", false, "give the default bridge IPv6, as dockerd's --ipv6 (user networks: docker network create --ipv6)")
	f.StringArrayVar(&cfg.HostGatewayIPs, "host-gateway-ip", nil, "address that --add-host NAME:host-gateway resolves to, one IPv4 and one IPv6 at most (repeatable; default: the default bridge's gateways)")
	f.StringVar(&cfg.DefaultGateway, "default-gateway", "", "the default bridge's containers' IPv4 gateway, a router on the bridge in its subnet, in place of the bridge's address")
	f.StringVar(&cfg.DefaultGateway6, "default-gateway-v6", "", "the default bridge's containers' IPv6 gateway, with --ipv6, in place of the bridge's address")
	f.StringVar(&cfg.BIP6, "bip6", "", "the default bridge's IPv6 address and subnet, as CIDR (fd00:66::1/64), with --ipv6")
	f.StringVar(&cfg.FixedCIDRv6, "fixed-cidr-v6", "", "the default bridge's IPv6 subnet (default: a /64 of a ULA prefix derived from the engine ID)")
	f.Var(&poolsValue{&cfg.Pools}, "default-address-pool", "address pool new networks take subnets from, base=PREFIX,size=BITS (repeat it; replaces Docker's pools)")
	f.Var(&netOptsValue{&cfg.DefaultNetworkOpts}, "default-network-opt", "option new networks of a driver get unless given, DRIVER=KEY=VALUE (repeatable)")
	f.StringArrayVar(&cfg.DNS, "dns", nil, "DNS server for containers that set none (repeatable)")
	f.StringArrayVar(&cfg.DNSSearch, "dns-search", nil, "DNS search domain for containers that set none (repeatable)")
	f.StringArrayVar(&cfg.DNSOptions, "dns-opt", nil, "resolv.conf option for containers that set none (repeatable)")
	f.StringVar(&cfg.LogDriver, "log-driver", container.LogDriver, "log driver of containers that name none: json-file, local or none")
	f.Var(&logOptsValue{&cfg.LogOpts}, "log-opt", "log option of containers on the default log driver that do not give it, KEY=VALUE (repeatable)")
	f.Var(&ulimitsValue{&cfg.DefaultUlimits}, "default-ulimit", "rlimit of containers that do not set it, NAME=SOFT[:HARD] (repeatable)")
	f.StringVar(&cfg.DefaultShmSize, "default-shm-size", "", "size of /dev/shm of containers that give none (default 64MiB)")
	f.BoolVar(&cfg.Init, "init", false, "run an init in containers that leave --init unset")
	f.BoolVar(&cfg.NoNewPrivileges, "no-new-privileges", false, "set no-new-privileges in containers whose --security-opt does not decide it")
	f.StringVar(&cfg.DefaultIpcMode, "default-ipc-mode", "", `IPC namespace of containers that give no --ipc: "private" (the default) or "shareable"`)
	f.StringVar(&cfg.DefaultCgroupnsMode, "default-cgroupns-mode", "", `cgroup namespace of containers that give no --cgroupns: "private" or "host" (default: private on cgroup v2, host on v1)`)
	f.StringVar(&cfg.CgroupParent, "cgroup-parent", "", "cgroup that containers naming no --cgroup-parent go under, an absolute path (default /berth)")
	f.IntVar(&cfg.DefaultStopTimeout, "default-stop-timeout", 10, "seconds a stop waits for a container that sets no --stop-timeout before it kills it")
	f.Var(&labelsValue{&cfg.Labels}, "label", "the daemon's labels, KEY=VALUE, which docker info shows (repeatable)")
	f.StringVar(&cfg.FirewallBackend, "firewall-backend", "", `dockerd 29's choice of firewall: "nftables", berth's only one (its table inet berth), or unset; "iptables" is refused`)
	for _, sw := range dockerdSwitches {
		// A bare --iptables is true, as a BoolVar's.
		f.VarPF(notBool{sw.off(cfg)}, sw.name, "", "dockerd's, true: "+sw.why+"; false is refused").NoOptDefVal = "true"
	}
	f.BoolVar(&cfg.IPForwardNoDrop, "ip-forward-no-drop", false, "dockerd's: berth never sets the filter FORWARD policy to DROP, whichever is given")
	f.Int("shutdown-timeout", 15, "dockerd's: no effect, berth leaves its containers running when it stops")
	_ = f.MarkHidden("shutdown-timeout")
	f.StringVar(&cfg.BridgeAcceptFwMark, "bridge-accept-fwmark", "", "let bridge networks take traffic another firewall of the host marked so, on any port: MARK or MARK/MASK (dockerd 29's)")
	f.BoolVar(&cfg.AllowDirectRouting, "allow-direct-routing", false, "let traffic routed straight to a container's address reach its published ports from any interface, as dockerd's (no direct-access drop)")
	f.BoolVar(&cfg.UserlandProxy, "userland-proxy", true, "serve the [::] side of ports published from IPv4-only containers, and [::1], from the daemon (IPv4 ports are the kernel's either way)")
	f.BoolVar(&cfg.LiveRestore, "live-restore", true, "containers keep running while the daemon is down (always so with berth)")
	f.IntVar(&cfg.Group, "group", -1, "group ID that may use the socket (default: root only)")
	f.BoolVarP(&cfg.Debug, "debug", "D", false, "debug logging")
	f.StringVarP(&cfg.LogLevel, "log-level", "l", "info", "the daemon's log level: debug, info, warn, error or fatal")
	f.StringVar(&cfg.LogFormat, "log-format", "text", `the form of the daemon's log: "text" or "json"`)
	f.StringVarP(&cfg.Pidfile, "pidfile", "p", "", "file to hold the daemon's PID while it runs (none by default)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "TCP address (host:port) to serve Prometheus metrics on, at /metrics, as dockerd's (none by default)")
	f.StringVarP(&cfg.StorageDriver, "storage-driver", "s", "", `dockerd's: berth stores on overlayfs alone, which "overlay2" (and "overlayfs") name; another is refused`)
	f.StringArrayVar(&cfg.ExecOpts, "exec-opt", nil, `dockerd's: "native.cgroupdriver=cgroupfs", berth's cgroup driver, is taken; another is refused`)
	f.BoolVar(&cfg.SELinux, "selinux-enabled", false, "dockerd's: berth labels nothing for SELinux; true is refused")
	f.StringVar(&cfg.DefaultRuntime, "default-runtime", "runc", `dockerd's: berth runs containers with runc alone ("runc" or "io.containerd.runc.v2"); another is refused`)
}

// checkRuntimeOptions refuses dockerd's --storage-driver, --exec-opt,
// --selinux-enabled and --default-runtime unless they say what berth
// is: it stores images and containers on overlayfs (dockerd's overlay2,
// containerd's overlayfs), puts containers in cgroups itself (the
// cgroupfs driver; --cgroup-parent is a path), labels nothing for
// SELinux, and runs containers with runc. A Docker host's
// daemon.json saying so starts berth.
func (cfg *Config) checkRuntimeOptions() error {
	switch cfg.StorageDriver {
	case "", "overlay2", "overlayfs", "overlay":
	default:
		return fmt.Errorf("--storage-driver %s is not supported: berth stores images and containers on overlayfs (overlay2) alone", cfg.StorageDriver)
	}
	for _, o := range cfg.ExecOpts {
		k, v, ok := strings.Cut(o, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "" || v == "":
			return fmt.Errorf("--exec-opt %q: want KEY=VALUE", o)
		case k != "native.cgroupdriver":
			return fmt.Errorf("--exec-opt %s is not supported: berth takes native.cgroupdriver=cgroupfs alone", o)
		case v != "cgroupfs":
			return fmt.Errorf("--exec-opt %s is not supported: berth makes its containers' cgroups itself, as dockerd's cgroupfs driver (native.cgroupdriver=cgroupfs)", o)
		}
	}
	if cfg.SELinux {
		return errors.New("--selinux-enabled=true is not supported: berth gives containers no SELinux labels")
	}
	switch cfg.DefaultRuntime {
	case "", "runc", "io.containerd.runc.v2":
	default:
		return fmt.Errorf("--default-runtime %s is not supported: berth runs containers with runc alone", cfg.DefaultRuntime)
	}
	switch cfg.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("invalid log format: %s", cfg.LogFormat) // dockerd's words
	}
	return nil
}

// logLevel is the daemon's log level: --debug's, else --log-level's,
// read as dockerd's ParseLogLevel reads it (any case; trace is debug,
// panic is error, as slog has nothing further).
func (cfg *Config) logLevel() (slog.Level, error) {
	if cfg.Debug {
		return slog.LevelDebug, nil
	}
	switch strings.ToLower(cfg.LogLevel) {
	case "trace", "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: trace, debug, info, warn, error, fatal or panic", cfg.LogLevel)
}

// reloadLogLevel is the daemon's SIGHUP: debug and log-level read again
// from the configuration file (a flag on the command line keeps its
// value), and the level the log has now set, as dockerd's reloadConfig
// does for them; it says what it set. The daemon's other options,
// networks' among them, take a restart, which dockerd's reload does not
// reload either.
func reloadLogLevel(f *pflag.FlagSet, path string, lv *slog.LevelVar) (string, error) {
	var file struct {
		Debug    *bool   `json:"debug"`
		LogLevel *string `json:"log-level"`
	}
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read the configuration file: %w", err)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &file); err != nil {
			return "", fmt.Errorf("configuration file %s: %w", path, err)
		}
	}
	cfg := Config{LogLevel: "info"}
	if fl := f.Lookup("debug"); fl != nil && fl.Changed {
		cfg.Debug = fl.Value.String() == "true"
	} else if file.Debug != nil {
		cfg.Debug = *file.Debug
	}
	if fl := f.Lookup("log-level"); fl != nil && fl.Changed {
		cfg.LogLevel = fl.Value.String()
	} else if file.LogLevel != nil {
		cfg.LogLevel = *file.LogLevel
	}
	level, err := cfg.logLevel()
	if err != nil {
		return "", err
	}
	lv.Set(level)
	return "log level " + level.String(), nil
}

// dockerdSwitches are dockerd's switches for what berth always does:
// their true is taken (a Docker host's daemon.json often says so), their
// false refused by name rather than ignored (networkSettings). Each is
// stored negated in Config, so that its zero value is dockerd's default.
var dockerdSwitches = []struct {
	name, why string
	off       func(*Config) *bool
}{
	{"iptables", "berth always writes its firewall rules (nftables, its table inet berth)", func(c *Config) *bool { return &c.NoIPTables }},
	{"ip6tables", "berth always writes its IPv6 firewall rules (nftables, its table inet berth)", func(c *Config) *bool { return &c.NoIP6Tables }},
	{"ip-forward", "berth turns IP forwarding on for its bridges, as dockerd does by default", func(c *Config) *bool { return &c.NoIPForward }},
}

// notBool is a boolean flag stored negated, so that a Config's zero
// value has dockerd's true for it (--iptables and the like).
type notBool struct{ not *bool }

func (b notBool) Type() string     { return "bool" }
func (b notBool) IsBoolFlag() bool { return true }
func (b notBool) String() string   { return strconv.FormatBool(b.not == nil || !*b.not) }
func (b notBool) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b.not = !on
	return nil
}

// logOptsValue is --log-opt KEY=VALUE.
type logOptsValue struct{ opts *map[string]string }

func (o *logOptsValue) Type() string { return "key=value" }

func (o *logOptsValue) String() string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(*o.opts)) {
		s = append(s, k+"="+(*o.opts)[k])
	}
	return strings.Join(s, ", ")
}

func (o *logOptsValue) Set(value string) error {
	k, v, ok := strings.Cut(value, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", value)
	}
	if *o.opts == nil {
		*o.opts = map[string]string{}
	}
	(*o.opts)[k] = v
	return nil
}

// logDefaults is the log configuration of containers that give none, as
// dockerd's defaultLogConfig: checked at start, as a container's is.
func (cfg *Config) logDefaults() (container.LogConfig, error) {
	lc := container.LogConfig{Type: cfg.LogDriver, Config: cfg.LogOpts}
	if !cfg.LiveRestore {
		return lc, errors.New("--live-restore=false: berth's containers always outlive the daemon and are adopted again at its start")
	}
	if err := container.CheckLogConfig(lc); err != nil {
		return lc, fmt.Errorf("the default log configuration (--log-driver, --log-opt): %w", err)
	}
	return lc, nil
}

// fileKeys are the configuration file's keys whose flag has another
// name: dockerd's plural keys for repeatable flags.
var fileKeys = map[string]string{
	"hosts":                 "host",
	"dns-opts":              "dns-opt",
	"default-address-pools": "default-address-pool",
	"default-network-opts":  "default-network-opt",
	"log-opts":              "log-opt",
	"default-ulimits":       "default-ulimit",
	"labels":                "label",
	"exec-opts":             "exec-opt",
	// dockerd's list, and its older key for one address.
	"host-gateway-ips": "host-gateway-ip",
	"host-gateway-ip":  "host-gateway-ip",
}

// notInFile are flags that have no key in the file.
var notInFile = map[string]bool{"config-file": true, "help": true, "resolv-conf": true}

// noEffectKeys are dockerd's daemon.json keys for what berth does not do
// at all — pull, push and build images, experimental features — taken
// with a warning (in the log and docker info) so that a Docker host's
// daemon.json starts berth: none of them can change what berth does.
var noEffectKeys = map[string]string{
	"registry-mirrors":                 "berth pulls no images",
	"insecure-registries":              "berth pulls and pushes no images",
	"allow-nondistributable-artifacts": "berth pushes no images",
	"max-concurrent-downloads":         "berth pulls no images",
	"max-concurrent-uploads":           "berth pushes no images",
	"max-download-attempts":            "berth pulls no images",
	"proxies":                          "berth pulls no images",
	"features":                         "berth builds no images and has no optional features",
	"builder":                          "berth builds no images",
	"experimental":                     "berth has no experimental features",
	"shutdown-timeout":                 "berth leaves its containers running when it stops, as dockerd with live-restore",
}

// dockerdKeys are the rest of dockerd's daemon.json keys (moby's
// config.Config), which berth refuses by name: each would change what
// dockerd does in a way berth does not.
var dockerdKeys = []string{
	"authorization-plugins", "cdi-spec-dirs",
	"containerd", "containerd-namespace", "containerd-plugin-namespace", "cpu-rt-period",
	"cpu-rt-runtime", "cri-containerd", "default-init",
	"http-proxy", "https-proxy", "init-path",
	"min-api-version",
	"network-control-plane-mtu", "network-diagnostic-port", "no-proxy", "node-generic-resources", "nri-opts",
	"raw-logs", "resolv-conf", "rootless", "runtimes", "seccomp-profile",
	"storage-opts", "swarm-default-advertise-addr", "swarm-raft-election-tick",
	"swarm-raft-heartbeat-tick", "tls", "tlscacert", "tlscert", "tlskey", "tlsverify", "userland-proxy-path",
	"userns-remap",
}

// loadConfigFile sets the flags the file at path names, as dockerd merges
// daemon.json: a key that is not an option, or one that is also given as
// a flag, is an error naming them all (dockerd's keys berth lacks apart
// from the others). A missing file is no error unless it was asked for
// by name (--config-file). It returns the warnings of the keys taken
// without effect (noEffectKeys).
func loadConfigFile(f *pflag.FlagSet, path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !f.Changed("config-file") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the configuration file: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	var unknown, unsupported, conflicts, warnings []string
	keys := slices.Sorted(maps.Keys(file))
	for _, key := range keys {
		if why, ok := noEffectKeys[key]; ok {
			if key == "experimental" && string(bytes.TrimSpace(file[key])) == "false" {
				continue // what berth is
			}
			warnings = append(warnings, fmt.Sprintf("WARNING: daemon.json's %q has no effect: %s", key, why))
			continue
		}
		name, renamed := fileKeys[key]
		if !renamed {
			name = key
		}
		fl := f.Lookup(name)
		switch {
		case (fl == nil || notInFile[name]) && slices.Contains(dockerdKeys, key):
			unsupported = append(unsupported, key)
		case fl == nil || notInFile[name] || !renamed && isRenamedFlag(name):
			unknown = append(unknown, key)
		case fl.Changed:
			conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %s)", key, fl.Value.String(), string(file[key])))
		}
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { _, ok := noEffectKeys[k]; return ok })
	var refused []string
	if len(unsupported) > 0 {
		refused = append(refused, "dockerd's options berth does not have: "+strings.Join(unsupported, ", "))
	}
	if len(unknown) > 0 {
		refused = append(refused, "the following directives don't match any configuration option of berth's: "+strings.Join(unknown, ", "))
	}
	if _, ok := file["host-gateway-ip"]; ok {
		if _, ok := file["host-gateway-ips"]; ok { // dockerd's words
			refused = append(refused, "host-gateway-ip and host-gateway-ips must not both be specified in the config file")
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("configuration file %s: %s", path, strings.Join(refused, "; "))
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("configuration file %s: the following directives are specified both as a flag and in the configuration file: %s", path, strings.Join(conflicts, ", "))
	}
	for _, key := range keys {
		name := key
		if n, ok := fileKeys[key]; ok {
			name = n
		}
		values, err := flagValues(key, f.Lookup(name).Value.Type(), file[key])
		if err == nil && key == "hosts" && len(values) != 1 {
			err = fmt.Errorf("berth listens on one socket, not %d", len(values))
		}
		if err == nil && key == "group" {
			values[0], err = groupID(values[0])
		}
		for _, v := range values {
			if err != nil {
				break
			}
			err = f.Set(name, v)
		}
		if err != nil {
			return nil, fmt.Errorf("configuration file %s: %q: %w", path, key, err)
		}
	}
	return warnings, nil
}

// isRenamedFlag reports whether a flag's key in the file is another
// name (--dns-opt is "dns-opts" there, never "dns-opt").
func isRenamedFlag(name string) bool {
	for _, n := range fileKeys {
		if n == name {
			return true
		}
	}
	return false
}

// flagValues turns one key's JSON value into the strings its flag (of
// pflag type typ) takes: a string, number or boolean is one, of the
// flag's type; a list is one per element;
// default-address-pools' objects become base=…,size=…, default-ulimits'
// NAME=SOFT:HARD, and
// default-network-opts' driver → options map one DRIVER=KEY=VALUE each.
func flagValues(key, typ string, raw json.RawMessage) ([]string, error) {
	switch key {
	case "default-address-pools":
		var pools []struct {
			Base string `json:"base"`
			Size *int   `json:"size"`
		}
		if err := strictDecode(raw, &pools); err != nil {
			return nil, fmt.Errorf("want a list of {\"base\": PREFIX, \"size\": BITS}: %w", err)
		}
		var out []string
		for _, p := range pools {
			if p.Size == nil {
				return nil, fmt.Errorf("pool %q: no size", p.Base)
			}
			out = append(out, fmt.Sprintf("base=%s,size=%d", p.Base, *p.Size))
		}
		return out, nil
	case "default-ulimits":
		// dockerd's map of go-units Ulimits by name.
		var uls map[string]struct {
			Name       string
			Hard, Soft int64
		}
		if err := strictDecode(raw, &uls); err != nil {
			return nil, fmt.Errorf("want {\"NAME\": {\"Name\": NAME, \"Hard\": N, \"Soft\": N}}: %w", err)
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(uls)) {
			u := uls[k]
			if u.Name == "" {
				u.Name = k
			}
			out = append(out, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
		}
		return out, nil
	case "host-gateway-ip": // dockerd's older key: one address
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("want a string: %w", err)
		}
		return []string{v}, nil
	case "log-opts":
		var opts map[string]string
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, fmt.Errorf("want {\"KEY\": \"VALUE\"}: %w", err)
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(opts)) {
			out = append(out, k+"="+opts[k])
		}
		return out, nil
	case "default-network-opts":
		var opts map[string]map[string]string
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, fmt.Errorf("want {\"DRIVER\": {\"KEY\": \"VALUE\"}}: %w", err)
		}
		var out []string
		for _, driver := range slices.Sorted(maps.Keys(opts)) {
			for _, k := range slices.Sorted(maps.Keys(opts[driver])) {
				out = append(out, driver+"="+k+"="+opts[driver][k])
			}
		}
		return out, nil
	}
	// The JSON type is the option's, as dockerd decodes the file into
	// its typed configuration: "mtu": "1400" is an error, as there.
	var err error
	switch {
	case key == "hosts" || typ == "stringArray":
		var l []string
		if err = json.Unmarshal(raw, &l); err == nil {
			return l, nil
		}
	case key == "group": // dockerd's is a name; berth's flag a GID
		var g any
		if err = json.Unmarshal(raw, &g); err == nil {
			switch g := g.(type) {
			case string:
				return []string{g}, nil
			case float64:
				return []string{strconv.FormatFloat(g, 'f', -1, 64)}, nil
			}
			err = fmt.Errorf("want a group name or number, not %s", string(raw))
		}
	case typ == "bool":
		var b bool
		if err = json.Unmarshal(raw, &b); err == nil {
			return []string{strconv.FormatBool(b)}, nil
		}
	case typ == "int":
		var n int
		if err = json.Unmarshal(raw, &n); err == nil {
			return []string{strconv.Itoa(n)}, nil
		}
	default:
		var v string
		if err = json.Unmarshal(raw, &v); err == nil {
			return []string{v}, nil
		}
	}
	return nil, fmt.Errorf("want a %s: %w", typeWord(key, typ), err)
}

// typeWord names what a key takes, for its error.
func typeWord(key, typ string) string {
	switch {
	case key == "hosts" || typ == "stringArray":
		return "list of strings"
	case typ == "bool":
		return "boolean"
	case typ == "int":
		return "whole number"
	}
	return "string"
}

func strictDecode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// groupID takes a group as dockerd's "group" key does, by name, or by
// number.
func groupID(g string) (string, error) {
	if _, err := strconv.Atoi(g); err == nil {
		return g, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return "", err
	}
	return grp.Gid, nil
}

// poolsValue is --default-address-pool: base=PREFIX,size=BITS, as
// dockerd's PoolsOpt reads it.
type poolsValue struct{ pools *[]ipam.Pool }

func (p *poolsValue) Type() string { return "pool-options" }

func (p *poolsValue) String() string {
	var s []string
	for _, pool := range *p.pools {
		s = append(s, fmt.Sprintf("%s %d", pool.Base, pool.Size))
	}
	return strings.Join(s, ", ")
}

func (p *poolsValue) Set(value string) error {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	var pool ipam.Pool
	sized := false
	for _, field := range fields {
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			return fmt.Errorf("invalid field %q: must be a key=value pair", field)
		}
		switch strings.ToLower(key) {
		case "base":
			if pool.Base, err = netip.ParsePrefix(val); err != nil {
				return fmt.Errorf("invalid base prefix %q: %w", val, err)
			}
		case "size":
			if pool.Size, err = strconv.Atoi(val); err != nil {
				return fmt.Errorf("invalid size %q: must be a number", val)
			}
			sized = true
		default:
			return fmt.Errorf("unexpected key %q in %q: a pool is base=PREFIX,size=BITS", key, value)
		}
	}
	if !sized {
		return fmt.Errorf("pool %q: no size", value)
	}
	if err := pool.Validate(); err != nil {
		return err
	}
	*p.pools = append(*p.pools, pool)
	return nil
}

// netOptsValue is --default-network-opt DRIVER=KEY=VALUE.
type netOptsValue struct{ opts *map[string]map[string]string }

func (o *netOptsValue) Type() string { return "driver=key=value" }

func (o *netOptsValue) String() string {
	var s []string
	for _, d := range slices.Sorted(maps.Keys(*o.opts)) {
		for _, k := range slices.Sorted(maps.Keys((*o.opts)[d])) {
			s = append(s, d+"="+k+"="+(*o.opts)[d][k])
		}
	}
	return strings.Join(s, ", ")
}

func (o *netOptsValue) Set(value string) error {
	driver, kv, ok := strings.Cut(value, "=")
	k, v, ok2 := strings.Cut(kv, "=")
	if !ok || !ok2 || driver == "" || k == "" {
		return fmt.Errorf("%q: want DRIVER=KEY=VALUE", value)
	}
	if driver != network.DriverBridge {
		return fmt.Errorf("%q: berth's only network driver is %q", value, network.DriverBridge)
	}
	if *o.opts == nil {
		*o.opts = map[string]map[string]string{}
	}
	if (*o.opts)[driver] == nil {
		(*o.opts)[driver] = map[string]string{}
	}
	(*o.opts)[driver][k] = v
	return nil
}

// netSettings are the daemon's network options, checked and typed.
type netSettings struct {
	// bridgeName is the default bridge's device: --bridge-name's, or
	// --bridge's; userBridge says it is --bridge's, the administrator's
	// (dockerd's user-managed bridge); noBridge is --bridge none.
	bridgeName    string
	userBridge    bool
	noBridge      bool
	bridgeOptions map[string]string // the default bridge's driver options
	// fwMark and fwMask are --bridge-accept-fwmark's (0: none).
	fwMark, fwMask uint32
	bip            netip.Prefix // its gateway and subnet
	fixedCIDR      netip.Prefix // its addresses' range
	subnet6        netip.Prefix // --fixed-cidr-v6
	bip6           netip.Prefix // --bip6: the bridge's IPv6 address and subnet
	pools, pools6  []ipam.Pool  // nil: Docker's
	dns            []string
	hostGateway    []netip.Addr // --host-gateway-ip
	// --default-gateway, --default-gateway-v6: the default bridge's
	// containers' gateways (invalid: the bridge's addresses).
	defaultGateway, defaultGateway6 netip.Addr
}

// networkSettings checks the daemon's network options as dockerd does
// at its start, and returns them typed. The default bridge's options go
// through the same check as a network create's (`-o`), at the
// controller.
func (cfg *Config) networkSettings(engineID string) (netSettings, error) {
	var s netSettings
	var err error
	switch cfg.FirewallBackend {
	case "", "nftables":
	case "iptables":
		return s, errors.New("--firewall-backend iptables: berth's firewall is nftables only (its own table, inet berth); leave firewall-backend unset or set it to nftables")
	default:
		return s, fmt.Errorf("--firewall-backend %q: invalid firewall backend: berth's is nftables", cfg.FirewallBackend)
	}
	for _, sw := range dockerdSwitches {
		if *sw.off(cfg) {
			return s, fmt.Errorf("--%s=false is not supported: %s; leave it unset or true", sw.name, sw.why)
		}
	}
	s.bridgeName = cfg.BridgeName
	if s.bridgeName == "" {
		s.bridgeName = network.DefaultBridgeDevice
	}
	switch {
	case cfg.Bridge == "":
	case cfg.BIP != "": // dockerd's words
		return s, errors.New("You specified -b & --bip, mutually exclusive options. Please specify only one")
	case cfg.BIP6 != "":
		return s, errors.New("You specified -b & --bip6, mutually exclusive options. Please specify only one")
	case s.bridgeName != network.DefaultBridgeDevice:
		return s, fmt.Errorf("--bridge %s and --bridge-name %s both name the default bridge's device: give one", cfg.Bridge, cfg.BridgeName)
	case cfg.Bridge == "none":
		s.noBridge = true
	case cfg.Bridge == network.DefaultBridgeDevice:
		// berth's own device (dockerd's -b docker0): berth makes and
		// keeps it as without --bridge.
	default:
		s.bridgeName, s.userBridge = cfg.Bridge, true
	}
	if cfg.BIP != "" {
		if s.bip, err = netip.ParsePrefix(cfg.BIP); err != nil || !s.bip.Addr().Is4() {
			return s, fmt.Errorf("--bip %q: not an IPv4 address with its prefix length (10.20.0.1/24)", cfg.BIP)
		}
		if s.bip.Masked().Addr().IsUnspecified() {
			return s, fmt.Errorf("--bip %s: the subnet %s is no network's (0.0.0.0/N asks a network create for a subnet from the pools)", cfg.BIP, s.bip.Masked())
		}
		if s.bip.Bits() < 31 && (s.bip.Addr() == s.bip.Masked().Addr() || s.bip.Addr() == lastAddr(s.bip)) {
			return s, fmt.Errorf("--bip %s: the bridge's address cannot be its subnet's network or broadcast address", cfg.BIP)
		}
	}
	if cfg.FixedCIDR != "" {
		if s.fixedCIDR, err = netip.ParsePrefix(cfg.FixedCIDR); err != nil || !s.fixedCIDR.Addr().Is4() {
			return s, fmt.Errorf("--fixed-cidr %q: not an IPv4 prefix", cfg.FixedCIDR)
		}
		s.fixedCIDR = s.fixedCIDR.Masked()
		if s.fixedCIDR.Addr().IsUnspecified() {
			return s, fmt.Errorf("--fixed-cidr %s: the subnet %s is no network's", cfg.FixedCIDR, s.fixedCIDR)
		}
		if s.bip.IsValid() && (!s.bip.Masked().Contains(s.fixedCIDR.Addr()) || s.fixedCIDR.Bits() < s.bip.Bits()) {
			return s, fmt.Errorf("--fixed-cidr %s is not inside --bip's subnet %s", s.fixedCIDR, s.bip.Masked())
		}
	}
	// dockerd checks --fixed-cidr-v6 whether or not --ipv6 is on, and
	// uses it only with --ipv6; a prefix with host bits is taken as its
	// subnet (ValidateFixedCIDRV6).
	if cfg.FixedCIDRv6 != "" {
		if s.subnet6, err = netip.ParsePrefix(cfg.FixedCIDRv6); err != nil || !s.subnet6.Addr().Is6() || s.subnet6.Addr().Is4In6() {
			return s, fmt.Errorf("--fixed-cidr-v6 %q: not an IPv6 prefix", cfg.FixedCIDRv6)
		}
		s.subnet6 = s.subnet6.Masked()
		if s.subnet6.Addr().IsUnspecified() {
			return s, fmt.Errorf("--fixed-cidr-v6 %s: the subnet %s is no network's", cfg.FixedCIDRv6, s.subnet6)
		}
		if err := ipam.ValidateRequest(s.subnet6, netip.Prefix{}, netip.Addr{}); err != nil {
			return s, fmt.Errorf("--fixed-cidr-v6: %w", err)
		}
	}
	if cfg.BIP6 != "" {
		if s.bip6, err = netip.ParsePrefix(cfg.BIP6); err != nil || !s.bip6.Addr().Is6() || s.bip6.Addr().Is4In6() || s.bip6.Addr().Zone() != "" {
			return s, fmt.Errorf("--bip6 %q: not an IPv6 address with its prefix length (fd00:66::1/64)", cfg.BIP6)
		}
		if s.bip6.Masked().Addr().IsUnspecified() {
			return s, fmt.Errorf("--bip6 %s: the subnet %s is no network's", cfg.BIP6, s.bip6.Masked())
		}
		if err := ipam.ValidateRequest(s.bip6.Masked(), s.subnet6, s.bip6.Addr()); err != nil {
			return s, fmt.Errorf("--bip6 %s: %w", cfg.BIP6, err)
		}
		if s.subnet6.IsValid() && (!s.bip6.Masked().Contains(s.subnet6.Addr()) || s.subnet6.Bits() < s.bip6.Bits()) {
			return s, fmt.Errorf("--fixed-cidr-v6 %s is not inside --bip6's subnet %s", s.subnet6, s.bip6.Masked())
		}
	}
	for _, g := range []struct {
		flag, v string
		six     bool
		to      *netip.Addr
	}{{"--default-gateway", cfg.DefaultGateway, false, &s.defaultGateway}, {"--default-gateway-v6", cfg.DefaultGateway6, true, &s.defaultGateway6}} {
		if g.v == "" {
			continue
		}
		a, err := netip.ParseAddr(g.v)
		if err != nil || a.Zone() != "" || a.Is4In6() || a.Is6() != g.six {
			return s, fmt.Errorf("%s %q: not an %s address", g.flag, g.v, map[bool]string{false: "IPv4", true: "IPv6"}[g.six])
		}
		*g.to = a
	}
	if s.fwMark, s.fwMask, err = parseFwMark(cfg.BridgeAcceptFwMark); err != nil {
		return s, fmt.Errorf("invalid bridge-accept-fwmark: %w", err) // dockerd's words
	}
	ip, err := netip.ParseAddr(cfg.IP)
	if err != nil {
		return s, fmt.Errorf("--ip %q: not an address", cfg.IP)
	}
	s.bridgeOptions = map[string]string{
		network.OptEnableICC:       strconv.FormatBool(cfg.ICC),
		network.OptEnableMasq:      strconv.FormatBool(cfg.IPMasq),
		network.OptHostBindingIPv4: ip.String(),
		network.OptMTU:             strconv.Itoa(cfg.MTU),
	}
	if cfg.MTU == 0 { // dockerd's 0 is its default, 1500
		s.bridgeOptions[network.OptMTU] = strconv.Itoa(network.DefaultMTU)
	}
	named := maps.Clone(s.bridgeOptions)
	named[network.OptBridgeName] = s.bridgeName
	if err := network.CheckBridgeOptions(named, s.bridgeName); err != nil {
		return s, fmt.Errorf("the default bridge (--bridge, --bridge-name, --mtu, --ip): %w", err)
	}
	if err := network.CheckBridgeOptions(cfg.DefaultNetworkOpts[network.DriverBridge], "br-0123456789ab"); err != nil {
		return s, fmt.Errorf("--default-network-opt: %w", err)
	}
	// As dockerd: the pools replace Docker's, and without an IPv6 one
	// the ULA /48 derived from the engine ID is added.
	for _, p := range cfg.Pools {
		if p.Base.Addr().Is4() {
			s.pools = append(s.pools, p)
		} else {
			s.pools6 = append(s.pools6, p)
		}
	}
	// In address order, a pool inside an earlier one dropped, as
	// moby's address space keeps them.
	s.pools, s.pools6 = ipam.Ordered(s.pools), ipam.Ordered(s.pools6)
	if len(cfg.Pools) > 0 && s.pools == nil {
		s.pools = []ipam.Pool{} // IPv6 pools alone: no IPv4 subnet is chosen
	}
	if s.pools6 == nil {
		s.pools6 = []ipam.Pool{ipam.ULAPool(engineID)}
	}
	for _, d := range cfg.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return s, fmt.Errorf("--dns %q: not an IP address", d)
		}
		s.dns = append(s.dns, a.String())
	}
	for _, d := range cfg.DNSSearch {
		if d == "" || strings.ContainsAny(d, " \t") || len(d) > 255 {
			return s, fmt.Errorf("--dns-search %q: not a domain", d)
		}
	}
	if slices.Contains(cfg.DNSOptions, "") {
		return s, errors.New("--dns-opt: an option cannot be empty")
	}
	var have4, have6 bool
	for _, v := range cfg.HostGatewayIPs {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return s, fmt.Errorf("--host-gateway-ip %q: not an IP address", v)
		}
		a = a.Unmap()
		// moby's ValidateHostGatewayIPs, in its words.
		if a.Is4() && have4 {
			return s, errors.New("--host-gateway-ip: only one IPv4 host gateway IP address can be specified")
		}
		if a.Is6() && have6 {
			return s, errors.New("--host-gateway-ip: only one IPv6 host gateway IP address can be specified")
		}
		have4, have6 = have4 || a.Is4(), have6 || a.Is6()
		s.hostGateway = append(s.hostGateway, a)
	}
	return s, nil
}

// fromUserBridge completes s for dockerd's --bridge from the addresses
// on the administrator's bridge (v4, v6), as getDefaultBridgeIPAMConf
// does for a user-managed bridge: the address bridgeBIP picks is the
// --bip (and, with --ipv6, the --bip6) that --bridge may not be given,
// so the bridge's subnet is the network's and its address the gateway.
// A --fixed-cidr outside that subnet, or wider, is dropped with a
// warning (addresses then come from the whole subnet), as dockerd
// tolerates it; a --fixed-cidr-v6 so is refused, as dockerd refuses it.
// A family without an address on the bridge is chosen as without
// --bridge, and berth puts its gateway on the bridge.
func (s *netSettings) fromUserBridge(v4, v6 []netip.Prefix, ipv6 bool) (warnings []string, err error) {
	if bip := bridgeBIP(v4, s.fixedCIDR); bip.IsValid() {
		s.bip = bip
		if f := s.fixedCIDR; f.IsValid() && (!bip.Masked().Contains(f.Addr()) || f.Bits() < bip.Bits()) {
			warnings = append(warnings, fmt.Sprintf("--fixed-cidr %s is outside the subnet %s of the address %s on the default bridge %s (--bridge): containers get addresses from the whole subnet",
				f, bip.Masked(), bip, s.bridgeName))
			s.fixedCIDR = netip.Prefix{}
		}
	}
	if !ipv6 {
		return warnings, nil
	}
	if bip6 := bridgeBIP(v6, s.subnet6); bip6.IsValid() {
		if f := s.subnet6; f.IsValid() && (!bip6.Masked().Contains(f.Addr()) || f.Bits() < bip6.Bits()) {
			return warnings, fmt.Errorf("fixed-cidr-v6=%s is outside any subnet implied by addresses on the user-managed default bridge", f) // dockerd's words
		}
		s.bip6 = bip6
	}
	return warnings, nil
}

// bridgeBIP is dockerd's selectBIP for a user-managed bridge: of the
// bridge's addresses of one family (IPv6's in fe80::/64, the kernel's
// link-local ones, left out unless fixed is in it), the first; with
// more than one and a fixed range, the first whose subnet holds the
// range's address, else the first inside the range (dockerd's order of
// preference, kept there for compatibility). Invalid when the bridge
// has none.
func bridgeBIP(addrs []netip.Prefix, fixed netip.Prefix) netip.Prefix {
	ll := netip.MustParsePrefix("fe80::/64")
	if !fixed.IsValid() || !ll.Contains(fixed.Addr()) {
		addrs = slices.DeleteFunc(slices.Clone(addrs), func(p netip.Prefix) bool { return ll.Contains(p.Addr()) })
	}
	if len(addrs) == 0 {
		return netip.Prefix{}
	}
	nw := addrs[0]
	if len(addrs) > 1 && fixed.IsValid() {
		for _, e := range addrs {
			if e.Masked().Contains(fixed.Addr()) {
				return e
			}
			if fixed.Contains(e.Addr()) && !fixed.Contains(nw.Addr()) {
				nw = e
			}
		}
	}
	return nw
}

// parseFwMark reads dockerd's --bridge-accept-fwmark, MARK or MARK/MASK,
// each a 32-bit number in any base strconv takes (0x40000/0xff0000), as
// moby's validateFwMarkMask; "" is none (0, 0). Without a mask the
// whole mark counts. A mark that every unmarked packet has (0) would
// open every port of every network, and one with bits outside its mask
// matches no packet: berth refuses both, which dockerd takes.
func parseFwMark(v string) (mark, mask uint32, err error) {
	if v == "" {
		return 0, 0, nil
	}
	markStr, maskStr, haveMask := strings.Cut(v, "/")
	m, err := strconv.ParseUint(markStr, 0, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid firewall mark %q: %w", v, err)
	}
	k := uint64(^uint32(0))
	if haveMask {
		if k, err = strconv.ParseUint(maskStr, 0, 32); err != nil {
			return 0, 0, fmt.Errorf("invalid firewall mask %q: %w", v, err)
		}
	}
	switch {
	case m == 0:
		return 0, 0, fmt.Errorf("firewall mark %q: a mark of 0 is every unmarked packet's, which would open every port of every network", v)
	case m&^k != 0:
		return 0, 0, fmt.Errorf("firewall mark %q: the mark has bits outside the mask, so no packet can match it", v)
	}
	return uint32(m), uint32(k), nil
}

// lastAddr is p's last address (IPv4's broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
