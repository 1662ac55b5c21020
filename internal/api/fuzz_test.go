package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	ctypes "github.com/docker/docker/api/types/container"
	nettypes "github.com/docker/docker/api/types/network"

	"github.com/berth-net/berth/internal/errdefs"
)

// Fuzz targets for every request decoder, run in CI for a short fixed
// time (scripts/test):
//
//	go test ./internal/api -run '^$' -fuzz '^FuzzNetworkCreateRequest$' -fuzztime 10s
//	go test ./internal/api -run '^$' -fuzz '^FuzzContainerCreateRequest$' -fuzztime 10s
//	go test ./internal/api -run '^$' -fuzz '^FuzzEndpointRequest$' -fuzztime 10s
//	go test ./internal/api -run '^$' -fuzz '^FuzzContainerName$' -fuzztime 10s
//	go test ./internal/api -run '^$' -fuzz '^FuzzFilters$' -fuzztime 10s
//	go test ./internal/api -run '^$' -fuzz '^FuzzServerRequests$' -fuzztime 10s
//
// Without -fuzz, go test runs each on its seed corpus.

// decoderError checks what a decoder returned for bad input: an error
// with a kind, so that it reaches the client as a 4xx and not a 500.
func decoderError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	switch errdefs.KindOf(err) {
	case errdefs.KindUnknown, errdefs.KindUnavailable, errdefs.KindNotImplemented:
		t.Errorf("decoder error %q has kind %d, which is a 5xx; want a 4xx", err, errdefs.KindOf(err))
	}
}

func FuzzNetworkCreateRequest(f *testing.F) {
	for _, s := range []string{
		`{"Name":"web"}`,
		`{"Name":"web","Driver":"bridge","Internal":true,"Options":{"com.docker.network.driver.mtu":"1400"}}`,
		`{"Name":"web","IPAM":{"Driver":"default","Config":[{"Subnet":"10.1.0.0/16","IPRange":"10.1.2.0/24","Gateway":"10.1.0.1"}]}}`,
		`{"Name":"web","IPAM":{"Config":[{"Subnet":"10.1.2.3/16","AuxiliaryAddresses":{"a":"10.1.0.9"}}]}}`,
		`{"Name":"v6","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00::/64"}]}}`,
		`{"Name":"x","Scope":"swarm","ConfigFrom":{"Network":"y"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var body nettypes.CreateRequest
		if json.Unmarshal(raw, &body) != nil {
			return
		}
		req, err := networkCreateRequest(body)
		decoderError(t, err)
		if err != nil {
			return
		}
		for _, c := range req.IPAM {
			if c.Subnet.Addr().Is6() && !req.EnableIPv6 {
				// Kept as given and unused, as moby keeps it (its
				// ValidateIPAM skips the triples of IPv6 when it is off).
				continue
			}
			if c.Subnet.IsValid() && c.Subnet != c.Subnet.Masked() {
				t.Errorf("accepted subnet %s (IPv6 on: %v)", c.Subnet, req.EnableIPv6)
			}
			if c.Gateway.IsValid() && !c.Subnet.Contains(c.Gateway) {
				t.Errorf("accepted gateway %s outside %s", c.Gateway, c.Subnet)
			}
		}
	})
}

func FuzzContainerCreateRequest(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","Cmd":["sleep","1"]}`,
		`{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"web"},"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv4Address":"10.1.0.5"},"Aliases":["a"],"MacAddress":"02:42:ac:11:00:09"}}}}`,
		`{"Image":"busybox","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`,
		`{"Image":"busybox","HostConfig":{"Dns":["1.1.1.1"],"ExtraHosts":["a:1.2.3.4"],"AutoRemove":true}}`,
		`{"Image":"busybox","MacAddress":"zz","HostConfig":{"NetworkMode":"container:x"}}`,
	} {
		f.Add([]byte(s), "1.51")
	}
	f.Add([]byte(`{"Image":"busybox","MacAddress":"02:42:ac:11:00:09"}`), "1.43")
	f.Fuzz(func(t *testing.T, raw []byte, version string) {
		var req ctypes.CreateRequest
		if json.Unmarshal(raw, &req) != nil {
			return
		}
		if version == "" || len(version) > 8 {
			version = "1.51"
		}
		_, err := createConfig(req, version)
		decoderError(t, err)
	})
}

func FuzzEndpointRequest(f *testing.F) {
	for _, s := range []string{
		`{"IPAMConfig":{"IPv4Address":"10.1.0.5"},"Aliases":["a","b"]}`,
		`{"IPAMConfig":{"IPv4Address":"::ffff:10.1.0.5"}}`,
		`{"IPAMConfig":{"IPv6Address":"fd00::5"}}`,
		`{"MacAddress":"02:42:ac:11:00:09"}`,
		`{"IPAMConfig":{"IPv4Address":"fe80::1"}}`,
		`null`,
	} {
		f.Add([]byte(s), "", true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, mac string, perEndpoint bool) {
		var es *nettypes.EndpointSettings
		if json.Unmarshal(raw, &es) != nil {
			return
		}
		req, err := endpointRequest(es, mac, perEndpoint)
		decoderError(t, err)
		if err == nil && req.IPv4Address.IsValid() && !req.IPv4Address.Is4() {
			t.Errorf("accepted IPv4 address %s", req.IPv4Address)
		}
	})
}

func FuzzContainerName(f *testing.F) {
	for _, s := range []string{"web", "/web", "a/b", "..", "a b", "a\x00b", strings.Repeat("n", 300), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := containerName(name)
		decoderError(t, err)
		if err == nil && strings.ContainsAny(got, "/ \x00\n") {
			t.Errorf("containerName(%q) accepted %q", name, got)
		}
	})
}

func FuzzFilters(f *testing.F) {
	for _, s := range []string{`{"name":{"web":true}}`, `{"name":["web"]}`, `{"label":{"a=b":true}}`, `{"color":{"red":true}}`, `{`, `[]`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filters string) {
		r := httptest.NewRequest(http.MethodGet, "/networks?filters="+url.QueryEscape(filters), nil)
		_, err := parseFilters(r, networkListFilters)
		decoderError(t, err)
	})
}

// FuzzServerRequests sends arbitrary bodies and query strings to the
// routes that decode them, through the whole server over the fake backend:
// no request may make a handler panic.
func FuzzServerRequests(f *testing.F) {
	routes := []struct{ method, path string }{
		{"POST", "/networks/create"},
		{"POST", "/networks/web/connect"},
		{"POST", "/networks/web/disconnect"},
		{"POST", "/networks/prune"},
		{"GET", "/networks"},
		{"POST", "/containers/create"},
		{"GET", "/containers/json"},
		{"POST", "/containers/test1/exec"},
		{"POST", "/containers/test1/stop"},
		{"POST", "/containers/test1/kill"},
		{"POST", "/containers/test1/wait"},
		{"GET", "/images/json"},
	}
	for i := range routes {
		f.Add(uint8(i), "", `{}`)
		f.Add(uint8(i), "filters=%7B%22name%22%3A%5B%22x%22%5D%7D&t=3&signal=KILL&condition=removed", `{"Name":"x","Container":"test1","Cmd":["true"],"Image":"busybox"}`)
	}
	f.Fuzz(func(t *testing.T, route uint8, query, body string) {
		rt := routes[int(route)%len(routes)]
		if strings.Contains(query, "condition") && rt.path == "/containers/test1/wait" {
			return // wait blocks until the condition holds
		}
		path := rt.path
		if q, err := url.ParseQuery(query); err == nil {
			q.Del("condition")
			path += "?" + q.Encode()
		}
		rec := call(t, newServer(newFakeBackend()), rt.method, path, body)
		if rec.Code >= 500 && strings.Contains(rec.Body.String(), "internal error in") {
			t.Errorf("%s %s with %q panicked: %s", rt.method, path, body, rec.Body)
		}
		if rec.Code >= 400 {
			var msg struct{ Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &msg); err != nil || msg.Message == "" {
				t.Errorf("%s %s: error answer is not a JSON message: %q", rt.method, path, rec.Body)
			}
		}
	})
}

// FuzzSlashNamePath: the rewrite that keeps a name's "/" in one segment
// never changes what the path says once unescaped, only where its
// segments end.
func FuzzSlashNamePath(f *testing.F) {
	for _, s := range []string{"/networks/a/b/connect", "/networks/a/b", "/containers/web/db/stop", "/containers/web/db", "/networks/", "/networks/a%2F/x/disconnect"} {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			f.Add(m, s)
		}
	}
	f.Fuzz(func(t *testing.T, method, escaped string) {
		before, err := url.PathUnescape(escaped)
		if err != nil {
			return
		}
		got, ok := slashNamePath(method, escaped)
		if !ok {
			return
		}
		after, err := url.PathUnescape(got)
		if err != nil || after != before {
			t.Errorf("slashNamePath(%s, %q) = %q: unescaped %q, want %q (%v)", method, escaped, got, after, before, err)
		}
	})
}
