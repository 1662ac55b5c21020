package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/client/clienttest"
	"github.com/berth-net/berth/internal/errdefs"
)

func newClient(t *testing.T, host string) *client.Client {
	t.Helper()
	c, err := client.New(host, nil)
	if err != nil {
		t.Fatalf("New(%q): %v", host, err)
	}
	return c
}

func TestResolveHost(t *testing.T) {
	t.Setenv(client.HostEnv, "")
	if got := client.ResolveHost(""); got != client.DefaultHost {
		t.Errorf("no flag, no env: got %q, want %q", got, client.DefaultHost)
	}
	t.Setenv(client.HostEnv, "unix:///tmp/env.sock")
	if got := client.ResolveHost(""); got != "unix:///tmp/env.sock" {
		t.Errorf("env: got %q", got)
	}
	if got := client.ResolveHost("unix:///tmp/flag.sock"); got != "unix:///tmp/flag.sock" {
		t.Errorf("flag over env: got %q", got)
	}
}

func TestNewRejectsBadHosts(t *testing.T) {
	for _, host := range []string{"", "tcp://127.0.0.1:2375", "unix://", "/run/berth.sock", "npipe:////./pipe/x"} {
		if _, err := client.New(host, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("New(%q) = %v, want an invalid-argument error", host, err)
		}
	}
}

func TestVersionNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name, advertised, want string
	}{
		{"server newer", "1.52", client.MaxAPIVersion},
		{"same", "1.51", "1.51"},
		{"server older", "1.44", "1.44"},
		{"older by numeric order", "1.9", "1.9"},
		{"no header", "", "1.24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := negotiateAgainst(t, tc.advertised); got != tc.want {
				t.Errorf("negotiated %q, want %q", got, tc.want)
			}
		})
	}
}

// negotiateAgainst runs a minimal server advertising v and returns the
// version prefix the client then used.
func negotiateAgainst(t *testing.T, v string) string {
	t.Helper()
	seen := new(string)
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			if v != "" {
				w.Header().Set("Api-Version", v)
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		*seen = r.URL.Path
		clienttest.WriteJSON(w, 200, []network.Summary{})
	})
	c := newClient(t, srv)
	if _, err := c.NetworkList(context.Background(), nil); err != nil {
		t.Fatalf("NetworkList: %v", err)
	}
	got, err := c.APIVersion(context.Background())
	if err != nil {
		t.Fatalf("APIVersion: %v", err)
	}
	if want := "/v" + got + "/networks"; *seen != want {
		t.Errorf("path %q, want %q", *seen, want)
	}
	return got
}

// newRawServer serves h on a unix socket, without the fake's ping.
func newRawServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-raw-") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

func TestVersionedPathsAndFilters(t *testing.T) {
	srv := clienttest.New(t)
	srv.JSON("GET /networks", 200, []network.Summary{{Name: "bridge"}})
	c := newClient(t, srv.Host)
	f := client.Filters{}
	f.Add("driver", "bridge")
	nets, err := c.NetworkList(context.Background(), f)
	if err != nil {
		t.Fatalf("NetworkList: %v", err)
	}
	if len(nets) != 1 || nets[0].Name != "bridge" {
		t.Errorf("got %+v", nets)
	}
	want := []string{`GET /networks?filters=%7B%22driver%22%3A%7B%22bridge%22%3Atrue%7D%7D`}
	if diff := cmp.Diff(want, srv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestErrorsCarryKindAndMessage(t *testing.T) {
	for _, tc := range []struct {
		status int
		kind   errdefs.Kind
	}{
		{404, errdefs.KindNotFound},
		{409, errdefs.KindConflict},
		{400, errdefs.KindInvalid},
		{403, errdefs.KindForbidden},
		{500, errdefs.KindUnknown},
		{503, errdefs.KindUnavailable},
	} {
		srv := clienttest.New(t)
		srv.Handle("DELETE /networks/{id}", func(w http.ResponseWriter, r *http.Request) {
			clienttest.Error(w, tc.status, "network "+r.PathValue("id")+" not found")
		})
		err := newClient(t, srv.Host).NetworkRemove(context.Background(), "web")
		if !errdefs.Is(err, tc.kind) {
			t.Errorf("status %d: kind %v, want %v", tc.status, errdefs.KindOf(err), tc.kind)
		}
		if want := "Error response from daemon: network web not found"; err == nil || err.Error() != want {
			t.Errorf("status %d: message %v, want %q", tc.status, err, want)
		}
	}
}

func TestConnectErrorNamesTheHost(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "absent.sock")
	_, err := newClient(t, host).NetworkList(context.Background(), nil)
	var ce *client.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a ConnectError", err)
	}
	want := "Cannot connect to the berth daemon at " + host + ". Is the berth daemon running?"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

func TestHijackEchoWithHalfClose(t *testing.T) {
	srv := clienttest.New(t)
	srv.Handle("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "tcp" || !strings.EqualFold(r.Header.Get("Connection"), "Upgrade") {
			clienttest.Error(w, 400, "not an upgrade")
			return
		}
		conn, rw, err := clienttest.Hijack(w, r, client.MediaTypeMultiplexedStream)
		if err != nil {
			return
		}
		defer conn.Close()
		// Echo stdin to stdout until the client half-closes, then say
		// goodbye on stderr: proof that output flows after stdin's EOF.
		in, _ := io.ReadAll(rw)
		_, _ = client.FrameWriter{W: conn, Stream: client.StreamStdout}.Write(in)
		_, _ = client.FrameWriter{W: conn, Stream: client.StreamStderr}.Write([]byte("bye\n"))
	})
	c := newClient(t, srv.Host)
	conn, err := c.ExecAttach(context.Background(), "e1", false, nil)
	if err != nil {
		t.Fatalf("ExecAttach: %v", err)
	}
	defer conn.Close()
	if !conn.Multiplexed() {
		t.Errorf("media type %q, want multiplexed", conn.MediaType)
	}
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
	if err := conn.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := client.Demux(&stdout, &stderr, conn); err != nil {
		t.Fatalf("Demux: %v", err)
	}
	if stdout.String() != "hello\n" || stderr.String() != "bye\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

func TestHijackRefusedIsAnError(t *testing.T) {
	srv := clienttest.New(t)
	srv.Handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		clienttest.Error(w, 404, "No such container: "+r.PathValue("id"))
	})
	_, err := newClient(t, srv.Host).ContainerAttach(context.Background(), "nope", client.AttachOptions{Stdout: true})
	if !errdefs.Is(err, errdefs.KindNotFound) || !strings.Contains(err.Error(), "No such container: nope") {
		t.Errorf("got %v", err)
	}
}

func TestWaitReturnsAfterHeaders(t *testing.T) {
	srv := clienttest.New(t)
	release := make(chan struct{})
	srv.Handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
		_, _ = w.Write([]byte(`{"StatusCode":3,"Error":null}`))
	})
	c := newClient(t, srv.Host)
	ch, err := c.ContainerWait(context.Background(), "c1", "next-exit")
	if err != nil {
		t.Fatalf("ContainerWait: %v", err)
	}
	// ContainerWait returned while the body is still pending: the daemon
	// has registered the wait before anything else is sent.
	close(release)
	if r := <-ch; r.StatusCode != 3 || r.Err != nil {
		t.Errorf("got %+v, want status 3", r)
	}
	if diff := cmp.Diff([]string{"POST /containers/c1/wait?condition=next-exit"}, srv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestPingFallsBackToGetAndAccepts500(t *testing.T) {
	for _, tc := range []struct {
		name       string
		headStatus int
		getStatus  int
		wantErr    bool
	}{
		{"head ok", 200, 0, false},
		{"head refused, get ok", 405, 200, false},
		{"unhealthy daemon still negotiates", 500, 0, false},
		{"both refused", 404, 404, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
				status := tc.headStatus
				if r.Method == http.MethodGet {
					status = tc.getStatus
				}
				w.Header().Set("Api-Version", "1.45")
				w.Header().Set("Ostype", "linux")
				w.WriteHeader(status)
			})
			p, err := newClient(t, host).Ping(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && (p.APIVersion != "1.45" || p.OSType != "linux") {
				t.Errorf("ping %+v", p)
			}
		})
	}
}

// TestNetworkNamesAreEscaped: a network's name reaches the daemon whole,
// whatever it holds (Docker takes any): its "/" escaped, so that it stays
// one segment of the path, and a "%" or a space escaped once.
func TestNetworkNamesAreEscaped(t *testing.T) {
	srv := clienttest.New(t)
	var got []string
	srv.Handle("/", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+versionPrefix.ReplaceAllString(r.RequestURI, "/"))
		clienttest.WriteJSON(w, http.StatusOK, network.Inspect{})
	})
	c := newClient(t, srv.Host)
	ctx := context.Background()
	for _, name := range []string{"ci_build-1/abc", "50% off", "a?b#c"} {
		if _, _, err := c.NetworkInspect(ctx, name); err != nil {
			t.Fatalf("NetworkInspect(%q): %v", name, err)
		}
		if err := c.NetworkConnect(ctx, name, "web", nil); err != nil {
			t.Fatalf("NetworkConnect(%q): %v", name, err)
		}
	}
	want := []string{
		"GET /networks/ci_build-1%2Fabc", "POST /networks/ci_build-1%2Fabc/connect",
		"GET /networks/50%25%20off", "POST /networks/50%25%20off/connect",
		"GET /networks/a%3Fb%23c", "POST /networks/a%3Fb%23c/connect",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+/`)
