package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/errdefs"
)

// TestBadRequests: each request is refused at the edge with a 4xx and a
// JSON message, and the Backend sees no mutating call.
func TestBadRequests(t *testing.T) {
	big := `{"Image":"busybox","Env":["` + strings.Repeat("x", maxJSONBody) + `"]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string // the message starts with this
	}{
		{"malformed JSON", "POST", "/v1.51/networks/create", `{"Name":`, 400, "invalid JSON: unexpected EOF"},
		{"not JSON at all", "POST", "/v1.51/containers/create", `hello`, 400, "invalid JSON: invalid character 'h'"},
		{"trailing content", "POST", "/v1.51/networks/create", `{"Name":"a"} {}`, 400, "unexpected content after JSON"},
		{"wrong type for Name", "POST", "/v1.51/networks/create", `{"Name":42}`, 400, "invalid JSON: json: cannot unmarshal number"},
		{"wrong type for Internal", "POST", "/v1.51/networks/create", `{"Name":"a","Internal":"yes"}`, 400, "invalid JSON: json: cannot unmarshal string"},
		{"wrong type for Cmd", "POST", "/v1.51/containers/create", `{"Image":"busybox","Cmd":{"a":1}}`, 400, "invalid JSON"},
		{"body too large", "POST", "/v1.51/containers/create", big, 413, "request body is larger than 1048576 bytes"},
		{"unknown version too new", "GET", "/v1.99/networks", "", 400, "client version 1.99 is too new"},
		{"unknown version too old", "POST", "/v1.12/networks/create", `{"Name":"a"}`, 400, "client version 1.12 is too old"},
		{"network name missing", "POST", "/v1.51/networks/create", `{"Driver":"bridge"}`, 400, "invalid name: name is empty"},
		{"subnet not CIDR", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Subnet":"10.0.0.0"}]}}`, 400, "invalid network config:\ninvalid subnet 10.0.0.0: invalid CIDR block notation"},
		{"subnet garbage", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Subnet":"ten/8"}]}}`, 400, "invalid network config:\ninvalid subnet ten/8"},
		{"subnet host bits set", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Subnet":"10.1.2.3/16"}]}}`, 400, "invalid network config:\ninvalid subnet 10.1.2.3/16: it should be 10.1.0.0/16"},
		{"gateway outside subnet", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","Gateway":"10.2.0.1"}]}}`, 400, "invalid network config:\ninvalid gateway 10.2.0.1: parent subnet 10.1.0.0/16 doesn't contain this address"},
		{"gateway not an address", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","Gateway":"gw"}]}}`, 400, "invalid network config:\ninvalid gateway gw: invalid address"},
		{"ip-range bigger than subnet", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Subnet":"10.1.0.0/24","IPRange":"10.1.0.0/16"}]}}`, 400, "invalid network config:\ninvalid ip-range 10.1.0.0/16: CIDR block is bigger than its parent subnet"},
		{"gateway without subnet", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Config":[{"Gateway":"10.1.0.1"}]}}`, 400, "invalid network config: every ip-range or gateway must have a corresponding subnet"},
		{"IPv6 subnet not masked", "POST", "/v1.51/networks/create", `{"Name":"a","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00::1/64"}]}}`, 400, "invalid network config:\ninvalid subnet fd00::1/64: it should be fd00::/64"},
		{"IPv6 gateway in an IPv4 subnet", "POST", "/v1.51/networks/create", `{"Name":"a","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"10.1.0.0/24","Gateway":"fd00::1"}]}}`, 400, "invalid network config:\ninvalid gateway fd00::1: parent subnet is an IPv4 block"},
		{"enable_ipv6 option not a bool", "POST", "/v1.51/networks/create", `{"Name":"a","Options":{"com.docker.network.enable_ipv6":"yes please"}}`, 400, `driver-opt "com.docker.network.enable_ipv6" is not a valid bool`},
		{"IPv6 address not IPv6", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv6Address":"10.1.0.5"}}}}}`, 400, "invalid config for network web: invalid endpoint settings:\ninvalid IPv6 address: 10.1.0.5"},
		{"unknown IPAM driver", "POST", "/v1.51/networks/create", `{"Name":"a","IPAM":{"Driver":"dhcp"}}`, 400, `IPAM driver "dhcp" is not supported by berth`},
		{"swarm scope", "POST", "/v1.51/networks/create", `{"Name":"a","Scope":"swarm"}`, 400, `scope "swarm" is not supported by berth`},
		{"ingress network", "POST", "/v1.51/networks/create", `{"Name":"a","Ingress":true}`, 400, "swarm networks"},
		{"config-only network with a scope", "POST", "/v1.51/networks/create", `{"Name":"a","ConfigOnly":true,"Scope":"local"}`, 403, "configuration network can only contain network specific fields. Network operator fields like [ ingress | internal | attachable | scope ] are not supported."},
		{"wrong content type", "POST", "/v1.51/networks/create", "Name=a", 400, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"bad filters JSON", "GET", "/v1.51/networks?filters=%7Bname", "", 400, "invalid filter"},
		{"unknown network filter", "GET", "/v1.51/networks?filters=%7B%22color%22%3A%7B%22red%22%3Atrue%7D%7D", "", 400, "invalid filter 'color'"},
		{"bad network type filter", "GET", "/v1.51/networks?filters=%7B%22type%22%3A%5B%22odd%22%5D%7D", "", 400, "invalid filter: 'type'='odd'"},
		{"bad container status filter", "GET", "/v1.51/containers/json?filters=%7B%22status%22%3A%5B%22sleepy%22%5D%7D", "", 400, "invalid filter 'status=sleepy': invalid value for state (sleepy): must be one of created, running, paused, restarting, removing, exited, dead"},
		{"bad limit", "GET", "/v1.51/containers/json?limit=ten", "", 400, `invalid value for limit: "ten"`},
		{"connect without container", "POST", "/v1.51/networks/web/connect", `{"EndpointConfig":{}}`, 400, "no container specified"},
		{"connect with bad IP", "POST", "/v1.51/networks/web/connect", `{"Container":"test1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.5.0.300"}}}`, 400, "invalid endpoint settings:\ninvalid IPv4 address: 10.5.0.300"},
		{"connect with IPv6 as IPv4", "POST", "/v1.51/networks/web/connect", `{"Container":"test1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"fd00::1"}}}`, 400, "invalid endpoint settings:\ninvalid IPv4 address: fd00::1"},
		{"connect with bad MAC", "POST", "/v1.51/networks/web/connect", `{"Container":"test1","EndpointConfig":{"MacAddress":"02:42"}}`, 400, "invalid MAC address 02:42"},
		{"container name with space", "POST", "/v1.51/containers/create?name=my%20box", `{"Image":"busybox"}`, 400, "Invalid container name (my box), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{"container name of one char", "POST", "/v1.51/containers/create?name=a", `{"Image":"busybox"}`, 400, "Invalid container name (a)"},
		{"container name 10,000 chars", "POST", "/v1.51/containers/create?name=" + strings.Repeat("n", 10000), `{"Image":"busybox"}`, 400, "Invalid container name (nnnnnnnnnnnnnnnnnnnn...): longer than 255 characters"},
		{"container name starting with dash", "POST", "/v1.51/containers/create?name=-x", `{"Image":"busybox"}`, 400, "Invalid container name (-x)"},
		{"empty create body", "POST", "/v1.51/containers/create", `{}`, 400, "config cannot be empty in order to create a container"},
		{"no image", "POST", "/v1.51/containers/create", `{"Cmd":["true"]}`, 400, "no image specified"},
		// moby refuses these at create; berth took them and every start failed.
		{"relative workdir", "POST", "/v1.51/containers/create", `{"Image":"busybox","WorkingDir":"rel"}`, 400, "the working directory 'rel' is invalid, it needs to be an absolute path"},
		{"env without a name", "POST", "/v1.51/containers/create", `{"Image":"busybox","Env":["A=1","=foo"]}`, 400, "invalid environment variable: =foo"},
		{"empty env", "POST", "/v1.51/containers/create", `{"Image":"busybox","Env":[""]}`, 400, "invalid environment variable: "},
		{"container-wide MAC against the endpoint's", "POST", "/v1.51/containers/create", `{"Image":"busybox","MacAddress":"02:42:ac:11:00:aa","NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"02:42:ac:11:00:bb"}}}}`, 400, "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"},
		{"static IP not an address", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv4Address":"nope"}}}}}`, 400, "invalid config for network web: invalid endpoint settings:\ninvalid IPv4 address: nope"},
		{"bad MAC on create", "POST", "/v1.51/containers/create", `{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"zz:zz"}}}}`, 400, "invalid config for network bridge: invalid MAC address zz:zz"},
		{"bad exposed port", "POST", "/v1.51/containers/create", `{"Image":"busybox","ExposedPorts":{"http/tcp":{}}}`, 400, `invalid exposed port "http/tcp"`},
		{"bad exposed protocol", "POST", "/v1.51/containers/create", `{"Image":"busybox","ExposedPorts":{"80/icmp":{}}}`, 400, `invalid exposed port "80/icmp"`},
		{"bad host port", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"http"}]}}}`, 400, `invalid host port "http"`},
		{"reversed host port range", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"9000-8000"}]}}}`, 400, `invalid host port "9000-8000"`},
		{"host port out of range", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"70000"}]}}}`, 400, `invalid host port "70000"`},
		{"bad host IP", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"localhost","HostPort":"80"}]}}}`, 400, `invalid host IP "localhost" to publish on`},
		{"zoned host IP", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"fe80::1%eth0","HostPort":"80"}]}}}`, 400, "invalid host IP \"fe80::1%eth0\" to publish on: a zoned address"},
		{"sctp port", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"80/sctp":[{"HostPort":"80"}]}}}`, 400, "publishing sctp ports is not supported by berth"},
		{"bad container port", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"PortBindings":{"0/tcp":[{"HostPort":"80"}]}}}`, 400, `invalid port "0/tcp"`},
		{"volumes from", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"VolumesFrom":["other:rw,ro"]}}`, 400, "invalid mode: rw,ro"},
		{"unknown restart policy", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, 400, "invalid restart policy: unknown policy 'sometimes'"},
		{"retry count with always", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":2}}}`, 400, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{"negative retry count", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}}`, 400, "invalid restart policy: maximum retry count cannot be negative"},
		{"restart policy with --rm", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`, 400, "can't create 'AutoRemove' container with restart policy"},
		{"container mode without a container", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:"}}`, 400, "invalid network mode: invalid container format container:<name|id>"},
		{"container mode, bare", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container"}}`, 400, "invalid network mode: invalid container format container:<name|id>"},
		{"container mode and hostname", "POST", "/v1.51/containers/create", `{"Image":"busybox","Hostname":"h","HostConfig":{"NetworkMode":"container:a"}}`, 400, "conflicting options: hostname and the network mode"},
		{"container mode and links", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a","Links":["b:b"]}}`, 400, "conflicting options: container type network can't be used with links"},
		{"host network and links", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"host","Links":["b:b"]}}`, 400, "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
		{"log driver", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"syslog"}}}`, 400, `log driver "syslog" (--log-driver) is not supported by berth`},
		{"bad max-size", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"-1"}}}}`, 400, "invalid size: '-1'"},
		{"unknown log opt", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"LogConfig":{"Config":{"max-age":"1d"}}}}`, 400, "unknown log opt 'max-age' for json-file log driver"},
		{"bad link", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"Links":["a:b:c"]}}`, 400, "bad format for links: a:b:c"},
		{"bad endpoint link", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"Links":[""]}}}}`, 400, "invalid config for network web: empty string specified for links"},
		{"bad link on connect", "POST", "/v1.51/networks/web/connect", `{"Container":"test1","EndpointConfig":{"Links":["a:b:c"]}}`, 400, "bad format for links: a:b:c"},
		{"container mode and dns", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a","Dns":["1.1.1.1"]}}`, 400, "conflicting options: dns and the network mode"},
		{"container mode and add-host", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a","ExtraHosts":["x:1.2.3.4"]}}`, 400, "conflicting options: custom host-to-IP mapping and the network mode"},
		{"container mode and -P", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a","PublishAllPorts":true}}`, 400, "conflicting options: port publishing and the container type network mode"},
		{"container mode and expose", "POST", "/v1.51/containers/create", `{"Image":"busybox","ExposedPorts":{"80/tcp":{}},"HostConfig":{"NetworkMode":"container:a"}}`, 400, "conflicting options: port exposing and the container type network mode"},
		{"container mode and old MAC", "POST", "/v1.43/containers/create", `{"Image":"busybox","MacAddress":"02:00:00:00:00:01","HostConfig":{"NetworkMode":"container:a"}}`, 400, "conflicting options: mac-address and the network mode"},
		{"container mode and endpoint MAC", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a"},"NetworkingConfig":{"EndpointsConfig":{"container:a":{"MacAddress":"02:00:00:00:00:01"}}}}`, 400, "conflicting options: mac-address and the network mode"},
		{"container mode and --ip", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a"},"NetworkingConfig":{"EndpointsConfig":{"container:a":{"IPAMConfig":{"IPv4Address":"10.0.0.2"}}}}}`, 400, "user specified IP address is supported on user defined networks only"},
		{"container mode and alias", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a"},"NetworkingConfig":{"EndpointsConfig":{"container:a":{"Aliases":["x"]}}}}`, 400, "network-scoped aliases are only supported for user-defined networks"},
		{"container mode and another network", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"container:a"},"NetworkingConfig":{"EndpointsConfig":{"web":{}}}}`, 400, "container sharing network namespace with another container or host cannot be connected to any other network"},
		{"bad DNS server", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"Dns":["dns.example"]}}`, 400, `invalid DNS server address "dns.example"`},
		{"bad add-host", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"ExtraHosts":["nocolon"]}}`, 400, `bad format for add-host: "nocolon"`},
		{"bad add-host IP", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"ExtraHosts":["db:300.1.1.1"]}}`, 400, `invalid IP address in add-host: "300.1.1.1"`},
		{"start with a body", "POST", "/v1.51/containers/test1/start", `{"Binds":["/a:/b"]}`, 400, "starting container with non-empty request body was deprecated"},
		{"stop with bad timeout", "POST", "/v1.51/containers/test1/stop?t=soon", "", 400, `invalid value for t: "soon"`},
		{"bad wait condition", "POST", "/v1.51/containers/test1/wait?condition=forever", "", 400, `invalid condition: "forever"`},
		{"bad resize height", "POST", "/v1.51/containers/test1/resize?h=-1&w=80", "", 400, `invalid resize height "-1"`},
		{"logs without streams", "GET", "/v1.51/containers/test1/logs", "", 400, "Bad parameters: you must choose at least one stream"},
		{"logs since not a timestamp", "GET", "/v1.51/containers/test1/logs?stdout=1&since=10m", "", 400, `invalid timestamp "10m"`},
		{"logs until not a timestamp", "GET", "/v1.51/containers/test1/logs?stdout=1&until=1.x", "", 400, `invalid timestamp "1.x"`},
		{"exec without command", "POST", "/v1.51/containers/test1/exec", `{"Cmd":[]}`, 400, "No exec command specified"},
		{"exec bad JSON", "POST", "/v1.51/containers/test1/exec", `{"Cmd":"ls"}`, 400, "invalid JSON"},
		{"exec start bad JSON", "POST", "/v1.51/exec/x/start", `{"Detach":"yes"}`, 400, "invalid JSON"},
		{"import from URL", "POST", "/v1.51/images/create?fromSrc=http://example.com/a.tar&repo=a", "", 400, "importing from a URL is not supported by berth"},
		{"add-host with a line break", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"ExtraHosts":["a\nb:1.2.3.4"]}}`, 400, `invalid add-host "a\nb:1.2.3.4"`},
		{"add-host with a zone", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"ExtraHosts":["n:fe80::1%eth0"]}}`, 400, "invalid IP address in add-host"},
		{"dns-search with a line break", "POST", "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"DnsSearch":["x\nnameserver 6.6.6.6"]}}`, 400, "invalid dns-search"},
		{"hostname with a line break", "POST", "/v1.51/containers/create", `{"Image":"busybox","Hostname":"a\nb"}`, 400, "invalid hostname"},
		{"hostname of 65 bytes", "POST", "/v1.51/containers/create", `{"Image":"busybox","Hostname":"` + strings.Repeat("h", 65) + `"}`, 400, `hostname "` + strings.Repeat("h", 65) + `" is too long (maximum 64 bytes)`},
		{"import uppercase repo", "POST", "/v1.51/images/create?fromSrc=-&repo=BusyBox", "", 400, "invalid reference format: repository name (library/BusyBox) must be lowercase"},
		{"import bad tag", "POST", "/v1.51/images/create?fromSrc=-&repo=busybox&tag=-x", "", 400, "invalid tag format"},
		{"images create without source", "POST", "/v1.51/images/create", "", 400, "fromSrc or fromImage is required"},
		{"pull", "POST", "/v1.51/images/create?fromImage=busybox&tag=latest", "", 404, "pull is not supported by berth: import a root filesystem with `docker import`"},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d bad requests; the contract asks for at least 25", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBackend()
			var hdr []string
			if tt.name == "wrong content type" {
				hdr = []string{"Content-Type", "text/plain"}
			}
			rec := call(t, newServer(f), tt.method, tt.path, tt.body, hdr...)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			msg := decode[errorResponse](t, rec).Message
			if !strings.HasPrefix(msg, tt.msg) {
				t.Errorf("message = %q, want prefix %q", msg, tt.msg)
			}
			if m := f.Mutations(); len(m) != 0 {
				t.Errorf("backend mutated: %v", m)
			}
		})
	}
}

// TestErrorKinds pins the one mapping from error kinds to statuses.
func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fakeBackend)
		method string
		path   string
		status int
		msg    string
	}{
		{"not found", nil, "GET", "/containers/nope/json", 404, "No such container: nope"},
		{"not found image", nil, "GET", "/images/nope/json", 404, "No such image: nope"},
		{"conflict", nil, "POST", "/networks/create", 409, "network with name web already exists"},
		{"forbidden", nil, "DELETE", "/networks/none", 403, "none is a pre-defined network and cannot be removed"},
		{"not modified", nil, "POST", "/containers/test1/start", 304, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBackend()
			if tt.setup != nil {
				tt.setup(f)
			}
			body := ""
			if tt.method == "POST" && strings.HasSuffix(tt.path, "create") {
				body = `{"Name":"web"}`
			}
			rec := call(t, newServer(f), tt.method, tt.path, body)
			if tt.status == 304 {
				wantStatus(t, rec, 304)
				return
			}
			wantError(t, rec, tt.status, tt.msg)
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{errdefs.NotFound("x"), http.StatusNotFound},
		{errdefs.Conflict("x"), http.StatusConflict},
		{errdefs.Invalid("x"), http.StatusBadRequest},
		{errdefs.Forbidden("x"), http.StatusForbidden},
		{errdefs.NotModified("x"), http.StatusNotModified},
		{errdefs.Unavailable("x"), http.StatusServiceUnavailable},
		{errdefs.NotImplemented("x"), http.StatusNotImplemented},
		{errors.New("x"), http.StatusInternalServerError},
		{fmt.Errorf("wrapped: %w", errdefs.NotFound("x")), http.StatusNotFound},
		{errdefs.Invalid("big: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestHostnameLength: Linux's HOST_NAME_MAX (64 bytes) is the longest
// hostname a create takes, as Docker 29.7's check.
func TestHostnameLength(t *testing.T) {
	for n, ok := range map[int]bool{63: true, 64: true, 65: false, 300: false} {
		err := checkCreate(&ctypes.Config{Image: "busybox", Hostname: strings.Repeat("h", n)}, &ctypes.HostConfig{})
		if (err == nil) != ok {
			t.Errorf("a hostname of %d bytes: %v, want accepted %v", n, err, ok)
		}
	}
}
