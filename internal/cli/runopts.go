package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docker/docker/api/types/blkiodev"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// containerOptions are the flags run and create share, named as docker's.
type containerOptions struct {
	name        string
	networks    []string
	ip, ip6     string
	linkLocal   []string
	mac         string
	aliases     []string
	links       listFlag
	logDriver   string
	logOpts     []string
	env         listFlag
	envFiles    []string
	labels      listFlag
	workdir     string
	user        string
	hostname    string
	autoRemove  bool
	interactive bool
	tty         bool
	publish     []string
	publishAll  bool
	expose      []string
	dns         listFlag
	dnsSearch   []string
	dnsOptions  []string
	extraHosts  listFlag
	entrypoint  string
	stopSignal  string
	stopTimeout int
	privileged  bool
	init        bool
	restart     string
	// The limits, as docker run reads them: sizes with units (64m),
	// --memory-swap -1 for unlimited swap, --cpus a decimal.
	memory, memorySwap, cpus string
	pidsLimit                int64
}

// addContainerFlags registers the container flags on fs. run and create
// define --help themselves without -h, which docker gives to --hostname.
func addContainerFlags(fs *pflag.FlagSet) *containerOptions {
	o := &containerOptions{}
	o.env.validate = validateEnv
	o.dns.validate = validateIP
	o.extraHosts.validate = validateExtraHost
	o.links.validate = validateLink
	o.labels.validate = validateLabel
	fs.SetInterspersed(false)
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	listVarP(fs, &o.networks, "network", "", "Connect a container to a network")
	listVarP(fs, &o.networks, "net", "", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	listVarP(fs, &o.linkLocal, "link-local-ip", "", "Container IPv4/IPv6 link-local addresses")
	fs.StringVar(&o.mac, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	listVarP(fs, &o.aliases, "network-alias", "", "Add network-scoped alias for the container")
	fs.Var(&o.links, "link", "Add link to another container")
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	listVarP(fs, &o.logOpts, "log-opt", "", "Log driver options")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	listVarP(fs, &o.envFiles, "env-file", "", "Read in a file of environment variables")
	fs.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container when it exits")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	listVarP(fs, &o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	listVarP(fs, &o.expose, "expose", "", "Expose a port or a range of ports")
	fs.Var(&o.dns, "dns", "Set custom DNS servers")
	listVarP(fs, &o.dnsSearch, "dns-search", "", "Set custom DNS search domains")
	listVarP(fs, &o.dnsOptions, "dns-option", "", "Set DNS options")
	fs.Var(&o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVarP(&o.memory, "memory", "m", "", "Memory limit")
	fs.StringVar(&o.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&o.cpus, "cpus", "", "Number of CPUs")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	return o
}

// resources are the limits' flags over docker run's defaults.
func (o *containerOptions) resources() (container.Resources, error) {
	r := defaultResources()
	var err error
	if o.memory != "" {
		if r.Memory, err = units.RAMInBytes(o.memory); err != nil {
			return r, fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", o.memory, err)
		}
	}
	switch o.memorySwap {
	case "":
	case "-1":
		r.MemorySwap = -1
	default:
		if r.MemorySwap, err = units.RAMInBytes(o.memorySwap); err != nil {
			return r, fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", o.memorySwap, err)
		}
	}
	if o.cpus != "" {
		if r.NanoCPUs, err = parseCPUs(o.cpus); err != nil {
			return r, fmt.Errorf("invalid argument %q for \"--cpus\" flag: %w", o.cpus, err)
		}
	}
	*r.PidsLimit = o.pidsLimit
	return r, nil
}

// parseCPUs reads --cpus as docker's NanoCPUs.Set: a decimal, in
// billionths of a CPU, exactly.
func parseCPUs(s string) (int64, error) {
	cpu, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", s)
	}
	nano := cpu.Mul(cpu, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, errors.New("value is too precise")
	}
	return nano.Num().Int64(), nil
}

// createRequest validates the options and builds the body of
// POST /containers/create the way docker run does.
func (o *containerOptions) createRequest(fs *pflag.FlagSet, image string, args []string) (container.CreateRequest, error) {
	if err := o.validate(); err != nil {
		return container.CreateRequest{}, err
	}
	env, err := o.environment()
	if err != nil {
		return container.CreateRequest{}, err
	}
	exposed, bindings, err := o.ports()
	if err != nil {
		return container.CreateRequest{}, err
	}
	endpoints, err := o.endpoints()
	if err != nil {
		return container.CreateRequest{}, err
	}
	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return container.CreateRequest{}, err
	}
	logOpts, err := o.logOptions()
	if err != nil {
		return container.CreateRequest{}, err
	}
	res, err := o.resources()
	if err != nil {
		return container.CreateRequest{}, err
	}
	cfg := &container.Config{
		Hostname:     o.hostname,
		User:         o.user,
		ExposedPorts: exposed,
		Tty:          o.tty,
		OpenStdin:    o.interactive,
		AttachStdin:  o.interactive,
		AttachStdout: true,
		AttachStderr: true,
		StdinOnce:    o.interactive,
		Env:          env,
		Cmd:          args,
		Image:        image,
		WorkingDir:   o.workdir,
		Labels:       kvMap(o.labels.list),
		Volumes:      map[string]struct{}{},
		StopSignal:   o.stopSignal,
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = []string{o.entrypoint}
	} else if fs.Changed("entrypoint") {
		cfg.Entrypoint = []string{""} // --entrypoint= resets the image's
	}
	if fs.Changed("stop-timeout") {
		cfg.StopTimeout = &o.stopTimeout
	}
	host := &container.HostConfig{
		NetworkMode:     container.NetworkMode(o.networkMode()),
		PortBindings:    bindings,
		RestartPolicy:   restart,
		AutoRemove:      o.autoRemove,
		PublishAllPorts: o.publishAll,
		DNS:             nonNil(o.dns.list),
		DNSSearch:       nonNil(o.dnsSearch),
		DNSOptions:      nonNil(o.dnsOptions),
		ExtraHosts:      o.extraHosts.list,
		Links:           o.links.list,
		Privileged:      o.privileged,
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: logOpts},
		Resources:       res,
	}
	// As the docker CLI: only when given, else the daemon's --init decides.
	if fs.Changed("init") {
		host.Init = &o.init
	}
	// The MAC travels on the endpoint only: the container-wide
	// Config.MacAddress is for API < 1.44, which berth does not speak.
	return container.CreateRequest{
		Config:           cfg,
		HostConfig:       host,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints},
	}, nil
}

// logOptions are the --log-opt key=value pairs as docker reads them (a
// key without "=" gets ""; none is refused for the none driver).
func (o *containerOptions) logOptions() (map[string]string, error) {
	m := make(map[string]string, len(o.logOpts))
	for _, kv := range o.logOpts {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	if o.logDriver == "none" && len(o.logOpts) > 0 {
		return map[string]string{}, fmt.Errorf("invalid logging opts for driver %s", o.logDriver)
	}
	return m, nil
}

// defaultResources are the resource settings docker run sends when no
// resource flag is given, so the daemon sees the same body from either CLI.
func defaultResources() container.Resources {
	swappiness, oomKillDisable, pidsLimit := int64(-1), false, int64(0)
	return container.Resources{
		MemorySwappiness:     &swappiness,
		OomKillDisable:       &oomKillDisable,
		PidsLimit:            &pidsLimit,
		BlkioWeightDevice:    []*blkiodev.WeightDevice{},
		BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{},
		BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{},
		BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{},
		BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{},
		Devices:              []container.DeviceMapping{},
		Ulimits:              []*container.Ulimit{},
	}
}

func (o *containerOptions) validate() error {
	if o.mac != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.mac)); err != nil {
			return fmt.Errorf("%s is not a valid mac address", o.mac)
		}
	}
	// docker leaves these to the daemon; checking here gives the same
	// exit code without a round trip and names the flag.
	if o.ip != "" {
		if a, err := netip.ParseAddr(o.ip); err != nil || !a.Is4() {
			return fmt.Errorf("invalid IPv4 address: %s", o.ip)
		}
	}
	if o.ip6 != "" {
		if a, err := netip.ParseAddr(o.ip6); err != nil || !a.Is6() {
			return fmt.Errorf("invalid IPv6 address: %s", o.ip6)
		}
	}
	switch o.restart {
	case "no", "":
	default:
		if o.autoRemove {
			return errors.New("conflicting options: cannot specify both --restart and --rm")
		}
	}
	return nil
}

// parseRestartPolicy reads --restart as docker's opts.ParseRestartPolicy
// does: "name[:max-retries]", syntax only (the daemon judges the rest).
func parseRestartPolicy(policy string) (container.RestartPolicy, error) {
	if policy == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, ok := strings.Cut(policy, ":")
	if ok && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	retries := 0
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		retries = n
	}
	return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: retries}, nil
}

// networkMode is HostConfig.NetworkMode: the first --network's name, or
// "default".
func (o *containerOptions) networkMode() string {
	if len(o.networks) == 0 {
		return network.NetworkDefault
	}
	a, err := parseNetworkValue(o.networks[0])
	if err != nil {
		return o.networks[0] // endpoints reports it
	}
	return a.target
}

// netAttach is one --network: a name, or docker 28's long form
// "name=N,alias=A,ip=I,ip6=I,mac-address=M,link-local-ip=I,driver-opt=K=V,gw-priority=P".
type netAttach struct {
	target string
	ep     network.EndpointSettings
}

// longNetworkSyntax is docker's test for the long form.
var longNetworkSyntax = regexp.MustCompile(`\w+=\w+(,\w+=\w+)*`)

// parseNetworkValue parses a --network value as docker's NetworkOpt.Set
// (its keys case-insensitive; its values kept as given, where docker
// lowercases them too).
func parseNetworkValue(v string) (netAttach, error) {
	if !longNetworkSyntax.MatchString(v) {
		return netAttach{target: v}, nil
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return netAttach{}, err
	}
	var a netAttach
	ipam := network.EndpointIPAMConfig{}
	for _, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		if !ok || key == "" {
			return netAttach{}, fmt.Errorf("invalid field %s", f)
		}
		switch key {
		case "name":
			a.target = val
		case "alias":
			a.ep.Aliases = append(a.ep.Aliases, val)
		case "ip":
			if ip, err := netip.ParseAddr(val); err != nil || !ip.Is4() {
				return netAttach{}, fmt.Errorf("invalid IPv4address: %s", val)
			}
			ipam.IPv4Address = val
		case "ip6":
			if ip, err := netip.ParseAddr(val); err != nil || !ip.Is6() {
				return netAttach{}, fmt.Errorf("invalid IPv6address: %s", val)
			}
			ipam.IPv6Address = val
		case "mac-address":
			if _, err := net.ParseMAC(val); err != nil {
				return netAttach{}, fmt.Errorf("%s is not a valid mac address", val)
			}
			a.ep.MacAddress = val
		case "link-local-ip":
			ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, val)
		case "driver-opt":
			k, dv, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return netAttach{}, errors.New("invalid key value pair format in driver options")
			}
			if a.ep.DriverOpts == nil {
				a.ep.DriverOpts = map[string]string{}
			}
			a.ep.DriverOpts[strings.TrimSpace(strings.ToLower(k))] = strings.TrimSpace(strings.ToLower(dv))
		case "gw-priority":
			p, err := strconv.Atoi(val)
			if err != nil {
				return netAttach{}, fmt.Errorf("invalid gw-priority: %w", err)
			}
			a.ep.GwPriority = p
		default:
			return netAttach{}, errors.New("invalid field key " + key)
		}
	}
	if a.target == "" {
		return netAttach{}, errors.New("network name not specified")
	}
	if ipam.IPv4Address != "" || ipam.IPv6Address != "" || len(ipam.LinkLocalIPs) > 0 {
		a.ep.IPAMConfig = &ipam
	}
	return a, nil
}

// endpoints mirrors docker's parseNetworkOpts: without --network, an
// endpoint "default" carries --ip/--mac/...; with one --network and no
// per-endpoint options, the endpoint is left out.
func (o *containerOptions) endpoints() (map[string]*network.EndpointSettings, error) {
	eps := map[string]*network.EndpointSettings{}
	targets := o.networks
	if len(targets) == 0 {
		targets = []string{network.NetworkDefault}
	}
	userDefined, predefined := false, false
	for i, raw := range targets {
		a, err := parseNetworkValue(raw)
		if err != nil {
			return nil, err
		}
		t := a.target
		if strings.TrimSpace(t) == "" {
			return nil, errors.New("no name set for network")
		}
		if isUserDefined(t) {
			userDefined = true
		} else {
			predefined = true
		}
		ep := &a.ep
		if len(ep.Aliases) > 0 && !isUserDefined(t) {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if i == 0 {
			if err := o.applyEndpointOptions(t, ep); err != nil {
				return nil, err
			}
		}
		if _, dup := eps[t]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", t)
		}
		if i == 0 && len(o.networks) == 1 && isEmptyEndpoint(ep) {
			continue
		}
		eps[t] = ep
	}
	if userDefined && predefined && len(o.networks) > 0 {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return eps, nil
}

// applyEndpointOptions puts --network-alias, --link, --ip, --ip6,
// --mac-address and --link-local-ip on the first network's endpoint, as docker's
// applyContainerOptions: a value the long --network form gave too is a
// conflict.
func (o *containerOptions) applyEndpointOptions(target string, ep *network.EndpointSettings) error {
	if len(o.aliases) > 0 {
		if !isUserDefined(target) {
			return errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(ep.Aliases) > 0 {
			return errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
		}
		ep.Aliases = append([]string(nil), o.aliases...)
	}
	// On a user-defined network --link is an alias of the endpoint; on
	// the default bridge it is a legacy link (HostConfig.Links), as in docker.
	if isUserDefined(target) && len(o.links.list) > 0 {
		ep.Links = append([]string(nil), o.links.list...)
	}
	if o.ip != "" || o.ip6 != "" {
		if ep.IPAMConfig == nil {
			ep.IPAMConfig = &network.EndpointIPAMConfig{}
		}
		if o.ip != "" {
			if ep.IPAMConfig.IPv4Address != "" {
				return errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
			}
			ep.IPAMConfig.IPv4Address = o.ip
		}
		if o.ip6 != "" {
			if ep.IPAMConfig.IPv6Address != "" {
				return errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
			}
			ep.IPAMConfig.IPv6Address = o.ip6
		}
	}
	if o.mac != "" {
		if ep.MacAddress != "" {
			return errors.New("conflicting options: cannot specify both --mac-address and per-network MAC address")
		}
		ep.MacAddress = o.mac
	}
	if len(o.linkLocal) > 0 {
		if ep.IPAMConfig != nil && len(ep.IPAMConfig.LinkLocalIPs) > 0 {
			return errors.New("conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses")
		}
		if ep.IPAMConfig == nil {
			ep.IPAMConfig = &network.EndpointIPAMConfig{}
		}
		ep.IPAMConfig.LinkLocalIPs = append([]string(nil), o.linkLocal...)
	}
	return nil
}

func isEmptyEndpoint(ep *network.EndpointSettings) bool {
	return ep.IPAMConfig == nil && len(ep.Aliases) == 0 && ep.MacAddress == "" &&
		len(ep.Links) == 0 && len(ep.DriverOpts) == 0 && ep.GwPriority == 0
}

// isUserDefined is docker's NetworkMode.IsUserDefined.
func isUserDefined(n string) bool {
	switch n {
	case "default", "bridge", "host", "none":
		return false
	}
	return !strings.HasPrefix(n, "container:")
}

// ports expands -p and --expose the way docker does, client-side, so
// ranges become one key per port.
func (o *containerOptions) ports() (nat.PortSet, nat.PortMap, error) {
	specs, err := longPublishToShort(o.publish)
	if err != nil {
		return nil, nil, err
	}
	exposed, bindings, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range o.expose {
		if strings.Contains(e, ":") {
			return nil, nil, fmt.Errorf("invalid port format for --expose: %s", e)
		}
		proto, port := nat.SplitProtoPort(e)
		start, end, err := nat.ParsePortRange(port)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s, error: %s", e, err)
		}
		for i := start; i <= end; i++ {
			p, err := nat.NewPort(proto, strconv.FormatUint(i, 10))
			if err != nil {
				return nil, nil, err
			}
			exposed[p] = struct{}{}
		}
	}
	return exposed, bindings, nil
}

// longPublishToShort turns -p target=80,published=8080,protocol=udp into
// docker's short form 8080:80/udp.
func longPublishToShort(specs []string) ([]string, error) {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		if !strings.Contains(s, "=") {
			out = append(out, s)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, kv := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", kv)
			}
			params[k] = v
		}
		if params["target"] == "" {
			return nil, errors.New("missing mandatory field 'target'")
		}
		out = append(out, params["published"]+":"+params["target"]+"/"+params["protocol"])
	}
	return out, nil
}

// environment merges --env-file lines and -e values, files first.
func (o *containerOptions) environment() ([]string, error) {
	var env []string
	for _, f := range o.envFiles {
		lines, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		env = append(env, lines...)
	}
	return append(env, o.env.list...), nil
}

// readEnvFile reads an --env-file as docker's kvfile does: UTF-8 only, a
// byte-order mark dropped, leading whitespace and # comments skipped, a
// key without whitespace; a key without "=" takes the CLI's environment's
// value, and is left out when that has none.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := parseKVFile(f, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("invalid env file (%s): %v", path, err)
	}
	return lines, nil
}

func parseKVFile(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	lines := []string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		switch {
		case key == "":
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		case strings.ContainsAny(key, " \t"):
			return nil, fmt.Errorf("variable '%s' contains whitespaces", key)
		case hasValue:
			lines = append(lines, line)
		default:
			if v, ok := lookup(key); ok {
				lines = append(lines, key+"="+v)
			}
		}
	}
	return lines, sc.Err()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func kvMap(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
