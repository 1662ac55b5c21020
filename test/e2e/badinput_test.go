package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/bench/reliability"
	"github.com/berth-net/berth/internal/testworld"
)

// badRequest is one request the real daemon must refuse with a 4xx and a
// JSON {"message": ...}; status 0 accepts any 4xx.
type badRequest struct {
	name, method, path string
	body               string
	contentType        string // "" means application/json when there is a body
	status             int
	msg                string // the message contains this ("" checks only that there is one)
}

func badRequests() []badRequest {
	long := strings.Repeat("n", 10000)
	tenMB := `{"Name":"` + strings.Repeat("a", 10<<20) + `"}`
	net := func(body string) string { return `{"Name":"bad","IPAM":{"Config":[` + body + `]}}` }
	opt := func(k, v string) string { return `{"Name":"bad","Options":{"` + k + `":"` + v + `"}}` }
	ctr := func(extra string) string { return `{"Image":"busybox","Cmd":["true"]` + extra + `}` }
	return []badRequest{
		{"malformed JSON", "POST", "/networks/create", `{"Name":`, "", 400, "invalid JSON"},
		{"not JSON", "POST", "/containers/create", `hello`, "", 400, "invalid JSON"},
		{"trailing content", "POST", "/networks/create", `{"Name":"a"} {}`, "", 400, ""},
		{"JSON null body", "POST", "/networks/create", `null`, "", 400, ""},
		{"JSON array body", "POST", "/networks/create", `[1,2]`, "", 400, "invalid JSON"},
		{"Name is a number", "POST", "/networks/create", `{"Name":42}`, "", 400, "cannot unmarshal"},
		{"Internal is a string", "POST", "/networks/create", `{"Name":"a","Internal":"yes"}`, "", 400, "cannot unmarshal"},
		{"Cmd is an object", "POST", "/containers/create", `{"Image":"busybox","Cmd":{"a":1}}`, "", 400, "invalid JSON"},
		{"10 MB body", "POST", "/networks/create", tenMB, "", 413, "larger than"},
		{"API version too new", "GET", "/v1.99/networks", "", "", 400, "too new"},
		{"API version too old", "POST", "/v1.12/networks/create", `{"Name":"a"}`, "", 400, "too old"},
		{"API version garbage", "GET", "/v1.x/networks", "", "", 0, ""},
		{"wrong content type", "POST", "/networks/create", `Name=a`, "text/plain", 400, "Content-Type"},
		{"network name missing", "POST", "/networks/create", `{"Driver":"bridge"}`, "", 400, "name is empty"},
		{"network name blank", "POST", "/networks/create", `{"Name":" \t "}`, "", 400, "name is empty"},
		{"network name with NUL", "POST", "/networks/create", `{"Name":"a\u0000b"}`, "", 400, "invalid network name"},
		{"network name with newline", "POST", "/networks/create", `{"Name":"a\nb"}`, "", 400, "invalid network name"},
		{"network name with an escape sequence", "POST", "/networks/create", `{"Name":"a\u001b[31mb"}`, "", 400, "invalid network name"},
		{"duplicate network name", "POST", "/networks/create", `{"Name":"web"}`, "", 409, "already exists"},
		{"subnet overlaps web", "POST", "/networks/create", net(`{"Subnet":"10.96.0.0/16"}`), "", 403, "overlaps"},
		{"subnet not CIDR", "POST", "/networks/create", net(`{"Subnet":"10.0.0.0"}`), "", 400, "invalid subnet"},
		{"subnet garbage", "POST", "/networks/create", net(`{"Subnet":"ten/8"}`), "", 400, "invalid subnet"},
		{"subnet /33", "POST", "/networks/create", net(`{"Subnet":"10.0.0.0/33"}`), "", 400, "invalid subnet"},
		{"subnet host bits", "POST", "/networks/create", net(`{"Subnet":"10.1.2.3/16"}`), "", 400, "invalid subnet"},
		{"gateway outside subnet", "POST", "/networks/create", net(`{"Subnet":"10.1.0.0/16","Gateway":"10.2.0.1"}`), "", 400, "gateway"},
		{"gateway not an address", "POST", "/networks/create", net(`{"Subnet":"10.1.0.0/16","Gateway":"gw"}`), "", 400, "gateway"},
		{"ip-range bigger than subnet", "POST", "/networks/create", net(`{"Subnet":"10.1.0.0/24","IPRange":"10.1.0.0/16"}`), "", 400, "ip-range"},
		{"gateway without subnet", "POST", "/networks/create", net(`{"Gateway":"10.1.0.1"}`), "", 400, "subnet"},
		{"no address family", "POST", "/networks/create", `{"Name":"bad","EnableIPv4":false}`, "", 400, "IPv4 or IPv6 must be enabled"},
		{"IPv6 subnet host bits", "POST", "/networks/create", `{"Name":"bad","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00::1/64"}]}}`, "", 400, "invalid subnet"},
		{"two subnets", "POST", "/networks/create", net(`{"Subnet":"10.3.0.0/24"},{"Subnet":"10.4.0.0/24"}`), "", 403, "bridge driver doesn't support multiple subnets"},
		{"unknown driver", "POST", "/networks/create", `{"Name":"bad","Driver":"overlay9"}`, "", 404, "not found"},
		{"unknown IPAM driver", "POST", "/networks/create", `{"Name":"bad","IPAM":{"Driver":"dhcp"}}`, "", 400, "IPAM driver"},
		{"unsupported option", "POST", "/networks/create", opt("com.docker.network.bridge.default_bridge", "true"), "", 400, "not supported"},
		{"MTU 67", "POST", "/networks/create", opt("com.docker.network.driver.mtu", "67"), "", 400, "68-65535"},
		{"MTU 65536", "POST", "/networks/create", opt("com.docker.network.driver.mtu", "65536"), "", 400, "68-65535"},
		{"MTU not a number", "POST", "/networks/create", opt("com.docker.network.driver.mtu", "big"), "", 400, "failed to parse com.docker.network.driver.mtu value: big"},
		{"bridge name 16 chars", "POST", "/networks/create", opt("com.docker.network.bridge.name", "abcdefghijklmnop"), "", 400, "interface name"},
		{"bridge name with /", "POST", "/networks/create", opt("com.docker.network.bridge.name", "br/0"), "", 400, "interface name"},
		{"bridge name taken", "POST", "/networks/create", opt("com.docker.network.bridge.name", "berth0"), "", 409, "already used"},
		{"enable_icc maybe", "POST", "/networks/create", opt("com.docker.network.bridge.enable_icc", "maybe"), "", 400, "failed to parse com.docker.network.bridge.enable_icc value: maybe"},
		{"host binding not an address", "POST", "/networks/create", opt("com.docker.network.bridge.host_binding_ipv4", "fe80::1%eth0"), "", 400, "zone"},
		{"remove predefined bridge", "DELETE", "/networks/bridge", "", "", 403, "pre-defined"},
		{"remove predefined none", "DELETE", "/networks/none", "", "", 403, "pre-defined"},
		{"remove network in use", "DELETE", "/networks/web", "", "", 403, "active endpoints"},
		{"remove unknown network", "DELETE", "/networks/nosuch", "", "", 404, "not found"},
		{"inspect unknown network", "GET", "/networks/nosuch", "", "", 404, "not found"},
		{"container name 10,000 chars", "POST", "/containers/create?name=" + long, ctr(""), "", 400, ""},
		{"container name with /", "POST", "/containers/create?name=a/b", ctr(""), "", 400, "Invalid container name"},
		{"container name with space", "POST", "/containers/create?name=a%20b", ctr(""), "", 400, "Invalid container name"},
		{"container name with NUL", "POST", "/containers/create?name=a%00b", ctr(""), "", 400, "Invalid container name"},
		{"container name ..", "POST", "/containers/create?name=..", ctr(""), "", 400, "Invalid container name"},
		{"duplicate container name", "POST", "/containers/create?name=c1", ctr(""), "", 409, "already in use"},
		{"unknown image", "POST", "/containers/create?name=x1", `{"Image":"nosuch","Cmd":["true"]}`, "", 404, "nosuch"},
		{"--ip on bridge", "POST", "/containers/create?name=x3", ctr(`,"HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"IPv4Address":"172.17.0.9"}}}}`), "", 400, "user defined networks"},
		{"--ip not an address", "POST", "/containers/create?name=x4", ctr(`,"HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv4Address":"ten"}}}}`), "", 400, ""},
		{"--ip outside the subnet", "POST", "/containers/create?name=x7", ctr(`,"HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv4Address":"10.9.0.5"}}}}`), "", 400, "no configured subnet contains IP address 10.9.0.5"},
		{"bad MAC address", "POST", "/containers/create?name=x5", ctr(`,"HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"MacAddress":"zz:zz"}}}}`), "", 400, ""},
		{"start unknown container", "POST", "/containers/nosuch/start", "", "", 404, "No such container"},
		{"inspect path traversal", "GET", "/containers/..%2F..%2Fetc%2Fpasswd/json", "", "", 404, ""},
		{"kill with a bad signal", "POST", "/containers/c1/kill?signal=SIGNOPE", "", "", 400, "signal"},
		{"stop with a bad timeout", "POST", "/containers/c1/stop?t=soon", "", "", 400, ""},
		{"connect unknown container", "POST", "/networks/web/connect", `{"Container":"nosuch"}`, "", 404, "No such container"},
		{"connect to unknown network", "POST", "/networks/nosuch/connect", `{"Container":"c1"}`, "", 404, "not found"},
		{"connect twice", "POST", "/networks/web/connect", `{"Container":"c1"}`, "", 403, "already exists"},
		{"connect without container", "POST", "/networks/web/connect", `{}`, "", 400, ""},
		{"disconnect not connected", "POST", "/networks/bridge/disconnect", `{"Container":"c1"}`, "", 403, "not connected"},
		{"exec on unknown container", "POST", "/containers/nosuch/exec", `{"Cmd":["true"]}`, "", 404, "No such container"},
		{"exec Cmd wrong type", "POST", "/containers/c1/exec", `{"Cmd":"true"}`, "", 400, "invalid JSON"},
		{"exec start unknown", "POST", "/exec/nosuch/start", `{"Detach":true}`, "", 404, ""},
		{"bad filters JSON", "GET", "/networks?filters=%7Bname", "", "", 400, "invalid filter"},
		{"unknown filter", "GET", "/networks?filters=%7B%22color%22%3A%7B%22red%22%3Atrue%7D%7D", "", "", 400, "invalid filter"},
		{"bad limit", "GET", "/containers/json?limit=ten", "", "", 400, "limit"},
		{"remove unknown image", "DELETE", "/images/nosuch", "", "", 404, ""},
		{"unknown path", "GET", "/networks/web/nothing/here", "", "", 404, ""},
	}
}

// apiState is what no bad request may change.
type apiState struct {
	Networks, Images string
	Containers       []string // ID, names and state of each
}

func stateOf(t *testing.T, c *reliability.Client) apiState {
	t.Helper()
	var s apiState
	for path, dst := range map[string]*string{"/networks": &s.Networks, "/images/json": &s.Images} {
		out, err := c.Want(http.MethodGet, path, nil, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		*dst = string(out)
	}
	var ctrs []struct {
		ID    string `json:"Id"`
		Names []string
		State string
	}
	if err := c.Get("/containers/json?all=1", &ctrs); err != nil {
		t.Fatal(err)
	}
	for _, ct := range ctrs {
		s.Containers = append(s.Containers, ct.ID+" "+strings.Join(ct.Names, ",")+" "+ct.State)
	}
	return s
}

// TestBadInput sends malformed, invalid and hostile requests to the real
// daemon and bad invocations through the berth CLI: each is refused with
// a 4xx and a JSON message, the daemon lives on, and its state is unchanged.
func TestBadInput(t *testing.T) {
	w, d := startWorld(t)
	w.MustBerth(t, "network", "create", "--subnet", "10.96.0.0/24", "web")
	runSleeper(t, w, "c1", "--network", "web")
	c := reliability.NewClient(w.Socket)
	before := stateOf(t, c)
	n := 0
	for _, tc := range badRequests() {
		t.Run("api/"+tc.name, func(t *testing.T) {
			n++
			ct := tc.contentType
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
				if ct == "" {
					ct = "application/json"
				}
			}
			code, gotCT, out, err := c.DoRaw(tc.method, tc.path, ct, body)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			if code < 400 || code > 499 || (tc.status != 0 && code != tc.status) {
				t.Errorf("status %d, want %d (4xx): %.300s", code, tc.status, out)
			}
			var msg struct{ Message string }
			if err := json.Unmarshal(out, &msg); err != nil || msg.Message == "" || !strings.HasPrefix(gotCT, "application/json") {
				t.Errorf("answer is not a JSON message (Content-Type %q): %.300s", gotCT, out)
			}
			if !strings.Contains(msg.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", msg.Message, tc.msg)
			}
		})
	}
	cli := [][]string{
		{"network", "create", "bad\x1bname"},
		{"network", "create", " "},
		{"network", "create", "--subnet", "10.0.0.0", "bad"},
		{"network", "create", "--subnet", "10.96.0.0/16", "bad"},
		{"network", "create", "--driver", "weird", "bad"},
		{"network", "create", "-o", "com.docker.network.driver.mtu=70000", "bad"},
		{"network", "create", "--gateway", "10.9.0.1", "bad"},
		{"network", "rm", "bridge"},
		{"network", "rm", "web"},
		{"network", "connect", "nosuch", "c1"},
		{"network", "disconnect", "bridge", "c1"},
		{"run", "-d", "--name", "x6", "--ip", "172.17.0.9", testworld.BusyboxImage, "true"},
		{"run", "-d", "--name", "c1", testworld.BusyboxImage, "true"},
		{"run", "-d", "--name", "x7", "nosuch-image", "true"},
		{"run", "-d", "--name", "bad name", testworld.BusyboxImage, "true"},
		{"inspect", "nosuch"},
		{"rm", "nosuch"},
		{"kill", "--signal", "NOPE", "c1"},
	}
	for _, args := range cli {
		name := strings.Join(args, " ")
		t.Run("cli/"+name[:min(len(name), 60)], func(t *testing.T) {
			n++
			_, errOut, code := w.Berth(t, args...)
			if code == 0 || strings.TrimSpace(errOut) == "" {
				t.Errorf("berth %.80s: exit %d, stderr %q; want a failure with an error message", name, code, errOut)
			}
		})
	}
	t.Logf("%d bad requests and invocations", n)
	after := stateOf(t, c)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("state changed (-before +after):\n%s", diff)
	}
	if code, _, err := c.Do(http.MethodGet, "/_ping", nil); err != nil || code != http.StatusOK {
		t.Errorf("daemon does not answer /_ping after the bad input: %d %v", code, err)
	}
	if log := daemonLog(t, d); strings.Contains(log, "panic") {
		t.Errorf("daemon log mentions a panic:\n%s", log)
	}
	runSleeper(t, w, "still-works", "--network", "web")
}
