package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/build"
	"github.com/berth-net/berth/internal/container"
)

// TestBuildRequest: docker build's query as moby's newImageBuildOptions
// reads it (rm by default, forcerm implying it, JSON build args and
// labels, the RUN containers' network, hosts and resources, no logs),
// the context body passed on, and the answer a jsonmessage stream: the
// output as "stream" (stderr's in red), the image ID as "aux".
func TestBuildRequest(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	rec := call(t, s, http.MethodPost, "/v1.51/build?t=app:1&t=app:2&dockerfile=df&buildargs=%7B%22A%22%3A%22x%22%2C%22B%22%3Anull%7D"+
		"&labels=%7B%22l%22%3A%22v%22%7D&nocache=1&target=t1&networkmode=none&extrahosts=h%3A10.0.0.1&memory=67108864&cgroupparent=%2Fbuilds", "TARBYTES")
	wantStatus(t, rec, http.StatusOK)
	want := "{\"stream\":\"Step 1/1 : FROM busybox\\n\"}\r\n{\"stream\":\"\\u001b[91mcareful\\n\\u001b[0m\"}\r\n{\"aux\":{\"ID\":\"sha256:" + hexID("b1") + "\"}}\r\n"
	if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	r := f.recorded()
	x := "x"
	wantOpts := build.Options{Dockerfile: "df", BuildArgs: map[string]*string{"A": &x, "B": nil}, Labels: map[string]string{"l": "v"},
		Target: "t1", NoCache: true, Remove: true}
	if diff := cmp.Diff(wantOpts, r.Build.Options); diff != "" || string(r.BuildBody) != "TARBYTES" || !cmp.Equal(r.Build.Tags, []string{"app:1", "app:2"}) {
		t.Errorf("options (-want +got):\n%s\nbody %q tags %q", diff, r.BuildBody, r.Build.Tags)
	}
	c := r.Build.Container
	if c.NetworkMode != "none" || !cmp.Equal(c.ExtraHosts, []string{"h:10.0.0.1"}) || c.Resources.Memory != 64<<20 ||
		c.CgroupParent != "/builds" || c.LogConfig.Type != container.LogDriverNone {
		t.Errorf("RUN container template: %+v", c)
	}
	// What the docker CLI 28 sends: version=1; --platform from 1.32;
	// --pull and --cache-from passed on.
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/build?version=1&platform=linux%2Famd64&pull=1&cachefrom=%5B%22app%3A1%22%5D", ""), http.StatusOK)
	if o := f.recorded().Build.Options; o.Platform != "linux/amd64" || !o.Pull || !cmp.Equal(o.CacheFrom, []string{"app:1"}) {
		t.Errorf("platform, pull, cache-from: %+v", o)
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.31/build?platform=linux%2Fs390x", ""), http.StatusOK)
	if o := f.recorded().Build.Options; o.Platform != "" {
		t.Errorf("platform before 1.32: %q", o.Platform)
	}
	for path, rm := range map[string][2]bool{"/v1.51/build?rm=0": {false, false}, "/v1.51/build?rm=0&forcerm=1": {true, true}, "/v1.51/build": {true, false}} {
		wantStatus(t, call(t, s, http.MethodPost, path, ""), http.StatusOK)
		if o := f.recorded().Build.Options; o.Remove != rm[0] || o.ForceRemove != rm[1] {
			t.Errorf("%s: remove %v force %v", path, o.Remove, o.ForceRemove)
		}
		if f.recorded().Build.Container.NetworkMode != "bridge" {
			t.Errorf("%s: the default network is %q", path, f.recorded().Build.Container.NetworkMode)
		}
	}
	// Before 1.30 no aux; with q only the ID, at the end.
	if rec := call(t, s, http.MethodPost, "/v1.29/build", ""); strings.Contains(rec.Body.String(), "aux") {
		t.Errorf("aux before 1.30: %s", rec.Body.String())
	}
	rec = call(t, s, http.MethodPost, "/v1.51/build?q=1", "")
	if got := rec.Body.String(); got != "{\"stream\":\"sha256:"+hexID("b1")+"\\n\"}\r\n" {
		t.Errorf("quiet: %q", got)
	}
}

// TestBuildErrors: a failure before any output is an error response; one
// after it a stream message with moby's errorDetail (a failed RUN's code
// with it), and with q the held output first; options berth cannot honour
// are refused by name.
func TestBuildErrors(t *testing.T) {
	s := newServer(newFakeBackend())
	wantError(t, call(t, s, http.MethodPost, "/v1.51/build?dockerfile=missing", ""), http.StatusBadRequest, "Cannot locate specified Dockerfile: missing")
	rec := call(t, s, http.MethodPost, "/v1.51/build?dockerfile=fail", "")
	wantStatus(t, rec, http.StatusOK)
	msg := "The command '/bin/sh -c false' returned a non-zero code: 3"
	tail := "{\"error\":\"" + msg + "\",\"errorDetail\":{\"code\":3,\"message\":\"" + msg + "\"}}\r\n"
	if got := rec.Body.String(); !strings.HasPrefix(got, "{\"stream\":\"Step 1/1") || !strings.HasSuffix(got, tail) {
		t.Errorf("failed RUN: %q", got)
	}
	if got := call(t, s, http.MethodPost, "/v1.51/build?dockerfile=fail&q=1", "").Body.String(); !strings.HasPrefix(got, "{\"stream\":\"Step 1/1") || !strings.HasSuffix(got, tail) {
		t.Errorf("failed quiet RUN: %q", got)
	}
	for path, want := range map[string]string{
		"/v1.51/build?version=2":                                    "berth has no BuildKit",
		"/v1.51/build?remote=https://x/y.git":                       "not from a remote one",
		"/v1.51/build?squash=1":                                     "squash is only supported with experimental mode",
		"/v1.51/build?buildargs=nope":                               "error reading buildargs",
		"/v1.51/build?memory=lots":                                  "invalid memory",
		"/v1.51/build?isolation=hyperv":                             "unsupported isolation",
		"/v1.51/build?securityopt=seccomp%3Dx":                      "security options are not supported on linux",
		"/v1.51/build?networkmode=container:x&extrahosts=h:1.2.3.4": "",
	} {
		rec := call(t, s, http.MethodPost, path, "")
		if want == "" {
			if rec.Code == http.StatusOK {
				t.Errorf("%s: accepted", path)
			}
			continue
		}
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %s, want a 400 with %q", path, rec.Code, rec.Body.String(), want)
		}
	}
}
