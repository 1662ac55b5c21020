package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// TestDockerCp: docker cp both ways, as with Docker: out of a running
// container (its /etc/hosts is the one berth wrote for it, as the
// container sees it), a directory into it and back, into a stopped
// container that then starts with the file, -a giving the files to the
// container's user, and moby's words for a path that is not there.
func TestDockerCp(t *testing.T) {
	w, _ := startWorld(t)
	dir := t.TempDir()
	mustDocker(t, w, "run", "-d", "--name", "c1", "--hostname", "cpbox", testworld.BusyboxImage, "sleep", "600")

	mustDocker(t, w, "cp", "c1:/etc/hosts", filepath.Join(dir, "hosts"))
	if b, err := os.ReadFile(filepath.Join(dir, "hosts")); err != nil || !strings.Contains(string(b), "\tcpbox\n") {
		t.Errorf("docker cp c1:/etc/hosts: %q, %v; want the container's hosts file", b, err)
	}

	src := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "file"), []byte("payload\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, w, "cp", src, "c1:/srv")
	if out := mustDocker(t, w, "exec", "c1", "stat", "-c", "%a", "/"); out != "755\n" {
		t.Errorf("the container's / has mode %q, want 755 as overlay2's", out)
	}
	// Docker's init layer: /.dockerenv (what programs look for to know
	// they are in a container) and /etc/mtab, and docker diff does not
	// count them as changes.
	if out := mustDocker(t, w, "exec", "c1", "sh", "-c", "stat -c %a /.dockerenv; readlink /etc/mtab"); out != "755\n/proc/mounts\n" {
		t.Errorf("/.dockerenv and /etc/mtab in c1: %q", out)
	}
	if out := mustDocker(t, w, "diff", "c1"); strings.Contains(out, "dockerenv") || strings.Contains(out, "mtab") {
		t.Errorf("docker diff c1 lists the init layer:\n%s", out)
	}
	if out := mustDocker(t, w, "exec", "c1", "sh", "-c", "cat /srv/sub/file; stat -c %a /srv/sub/file"); out != "payload\n640\n" {
		t.Errorf("the copied tree in c1: %q", out)
	}
	mustDocker(t, w, "cp", "c1:/srv", filepath.Join(dir, "back"))
	if b, err := os.ReadFile(filepath.Join(dir, "back", "sub", "file")); err != nil || string(b) != "payload\n" {
		t.Errorf("the tree copied back: %q, %v", b, err)
	}

	_, errOut, code := w.Docker(t, "cp", "c1:/nope", filepath.Join(dir, "x"))
	if want := "Error response from daemon: Could not find the file /nope in container c1"; code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("docker cp of a missing path: exit %d, %q; want %q", code, errOut, want)
	}

	// docker cp - takes a tar from its input, compressed too, as moby's
	// Untar (DecompressStream): xz and zstd were refused. A corrupt
	// stream is an error, not a short archive, also when only its end is
	// missing.
	for _, c := range []struct{ flag, name string }{{"--xz", "xz"}, {"--zstd", "zst"}, {"--gzip", "gz"}} {
		arc := filepath.Join(dir, "in."+c.name)
		if err := os.WriteFile(filepath.Join(dir, "packed-"+c.name), []byte(c.name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-C", dir, c.flag, "-cf", arc, "packed-"+c.name).CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v %s", c.flag, err, out)
		}
		b, err := os.ReadFile(arc)
		if err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := w.DockerIn(t, string(b), "cp", "-", "c1:/tmp"); code != 0 {
			t.Errorf("docker cp - of a %s tar: exit %d, %s", c.name, code, errOut)
		} else if out := mustDocker(t, w, "exec", "c1", "cat", "/tmp/packed-"+c.name); out != c.name+"\n" {
			t.Errorf("docker cp - of a %s tar: the file holds %q", c.name, out)
		}
		if c.name == "xz" { // cut in its data, and in its footer (the tar inside whole)
			for _, cut := range []int{len(b) / 2, len(b) - 8} {
				if _, errOut, code := w.DockerIn(t, string(b[:cut]), "cp", "-", "c1:/tmp"); code == 0 || !strings.Contains(errOut, "xz") {
					t.Errorf("docker cp - of an xz tar cut at %d of %d bytes: exit %d, %q; want an error naming xz", cut, len(b), code, errOut)
				}
			}
		}
	}

	// A stopped container: the file is there when it starts, and it
	// starts (the copy left no overlay mounted over its root).
	mustDocker(t, w, "create", "--name", "c2", testworld.BusyboxImage, "cat", "/srv/sub/file")
	mustDocker(t, w, "cp", src, "c2:/srv")
	if out, errOut, code := w.Docker(t, "start", "-a", "c2"); code != 0 || out != "payload\n" {
		t.Errorf("docker start -a c2: exit %d, %q, %q; want the copied file", code, out, errOut)
	}

	// docker export: the whole tree, with what was copied in.
	mustDocker(t, w, "export", "-o", filepath.Join(dir, "c1.tar"), "c1")
	f, err := os.Open(filepath.Join(dir, "c1.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	for tr := tar.NewReader(f); ; {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	for _, want := range []string{"bin/busybox", "etc/passwd", "srv/sub/file", ".dockerenv", "etc/mtab", "proc/", "dev/console"} {
		if !names[want] {
			t.Errorf("docker export c1 lacks %s (%d entries)", want, len(names))
		}
	}

	// -a: the container's user owns the files.
	mustDocker(t, w, "run", "-d", "--name", "c3", "--user", "nobody", testworld.BusyboxImage, "sleep", "600")
	mustDocker(t, w, "cp", "-a", filepath.Join(src, "sub", "file"), "c3:/tmp/f")
	if out := mustDocker(t, w, "exec", "c3", "stat", "-c", "%u:%g", "/tmp/f"); out != "65534:65534\n" {
		t.Errorf("docker cp -a into c3 (user nobody): owner %q, want 65534:65534", out)
	}
}

// TestStalledCpEndsAtStart: a docker cp whose client stops reading holds
// nothing the rest of the daemon needs: ps answers, and a start of the
// container ends the copy (its stream is cut) once it has moved nothing
// for a while, instead of waiting for it.
func TestStalledCpEndsAtStart(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "run", "-d", "--name", "s1", testworld.BusyboxImage, "sleep", "600")
	client := apiClient(w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := apiGet(t, ctx, client, "/v1.51/containers/s1/archive?path=/")
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 512)); err != nil {
		t.Fatalf("read the start of the stream: %v", err)
	}
	// The client reads no more. The daemon goes on, and so does another
	// copy of the container once the stalled one has moved nothing for a
	// while (it waited for as long as the stalled client's socket stayed).
	if out := mustDocker(t, w, "ps", "--format", "{{.Names}}"); out != "s1\n" {
		t.Errorf("docker ps during the copy: %q", out)
	}
	if out, errOut, code := w.Docker(t, "cp", "s1:/etc/hostname", "-"); code != 0 || !strings.Contains(out, "hostname") {
		t.Errorf("docker cp beside a stalled copy: exit %d, %q %s", code, out, errOut)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Error("the stalled copy's stream ended cleanly, though another copy took the files")
	}
	resp.Body.Close()
	resp = apiGet(t, ctx, client, "/v1.51/containers/s1/archive?path=/")
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 512)); err != nil {
		t.Fatalf("read the start of the second stream: %v", err)
	}
	mustDocker(t, w, "stop", "-t", "0", "s1")
	mustDocker(t, w, "start", "s1")
	if out := mustDocker(t, w, "ps", "--format", "{{.Names}} {{.State}}"); out != "s1 running\n" {
		t.Errorf("docker ps after the start: %q", out)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Error("the copy's stream ended cleanly, though the start cut it")
	}

	// An upload whose client stops sending: the start ends it too, and
	// the client is told why.
	mustDocker(t, w, "stop", "-t", "0", "s1")
	body, feed := io.Pipe()
	defer feed.Close()
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://berth/v1.51/containers/s1/archive?path=/tmp", body)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Do(put)
		if err != nil {
			t.Errorf("PUT archive: %v", err)
		}
		answered <- resp
	}()
	if _, err := feed.Write(make([]byte, 512)); err != nil { // the first block, then nothing
		t.Fatal(err)
	}
	mustDocker(t, w, "start", "s1")
	if resp := <-answered; resp != nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "the container started or was removed during the copy") {
			t.Errorf("the cut upload's answer: %d %s", resp.StatusCode, b)
		}
	}
}

// TestSlowCpFinishesBeforeStart: a docker cp out of a stopped container
// whose client reads slowly but steadily completes when the container is
// started meanwhile, and the start goes through after it, as moby's start
// waits for the copy; the start cut it short (328 KB of 300 MB copied).
func TestSlowCpFinishesBeforeStart(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "create", "--name", "big", testworld.BusyboxImage, "sleep", "600")
	const size = 16 << 20
	src := filepath.Join(w.Dir, "bigf")
	if err := os.WriteFile(src, bytes.Repeat([]byte("berth"), size/5), 0o644); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, w, "cp", src, "big:/bigf")
	client := apiClient(w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := apiGet(t, ctx, client, "/v1.51/containers/big/archive?path=/bigf")
	defer resp.Body.Close()
	started := make(chan string, 1)
	go func() {
		_, errOut, code := w.Docker(t, "start", "big")
		started <- fmt.Sprintf("exit %d %s", code, errOut)
	}()
	// 64 KiB every 10 ms: about 3 s for the file, never a pause the
	// daemon could take for a client that stopped.
	var got int64
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the copy failed after %d bytes: %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got < size {
		t.Errorf("the copy gave %d bytes, want the file's %d and its tar header", got, size)
	}
	if out := <-started; out != "exit 0 " {
		t.Errorf("docker start during the copy: %s", out)
	}
	if out := mustDocker(t, w, "inspect", "-f", "{{.State.Running}}", "big"); out != "true\n" {
		t.Errorf("after the start: Running %q", out)
	}
}

// TestCpIntoAnswersForTheRightPath: an upload into a directory that is
// not there is moby's 404 naming it; an archive whose own entry fails (a
// hard link to a file it does not hold) is the extraction's error, not a
// 404 for a destination that is there.
func TestCpIntoAnswersForTheRightPath(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "create", "--name", "dst", testworld.BusyboxImage, "true")
	client := apiClient(w)
	put := func(path string, hdr tar.Header) (int, string) {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		req, err := http.NewRequest(http.MethodPut, "http://berth/v1.51/containers/dst/archive?path="+path, &b)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	link := tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "not-in-the-archive"}
	if code, body := put("/tmp", link); code != http.StatusInternalServerError || strings.Contains(body, "Could not find the file") {
		t.Errorf("a hard link to nothing into /tmp: %d %s; want the extraction's error (500)", code, body)
	}
	dir := tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}
	if code, body := put("/nope", dir); code != http.StatusNotFound || !strings.Contains(body, "Could not find the file /nope in container dst") {
		t.Errorf("into a missing directory: %d %s; want moby's 404", code, body)
	}
	// A destination that is a symlink is followed, as moby's EvalSymlinks:
	// to a directory, the archive goes there; to nothing, it is the 404
	// naming the path as given.
	for _, l := range []tar.Header{
		{Typeflag: tar.TypeSymlink, Name: "dangling", Linkname: "/nonexistent/dir"},
		{Typeflag: tar.TypeSymlink, Name: "totmp", Linkname: "/tmp"},
	} {
		if code, body := put("/", l); code != http.StatusOK {
			t.Fatalf("symlink %s: %d %s", l.Name, code, body)
		}
	}
	if code, body := put("/dangling", dir); code != http.StatusNotFound || !strings.Contains(body, "Could not find the file /dangling in container dst") {
		t.Errorf("into a symlink to nothing: %d %s; want moby's 404", code, body)
	}
	if code, body := put("/totmp", dir); code != http.StatusOK {
		t.Errorf("into a symlink to /tmp: %d %s", code, body)
	}
	// ".." goes before any link is followed, as moby's Join with "/".
	if code, body := put("/nope/../tmp", tar.Header{Typeflag: tar.TypeDir, Name: "e/", Mode: 0o755}); code != http.StatusOK {
		t.Errorf("into /nope/../tmp: %d %s; want it in /tmp", code, body)
	}
	if out := mustDocker(t, w, "export", "dst"); !strings.Contains(out, "tmp/d/") || !strings.Contains(out, "tmp/e/") {
		t.Error("the archives put through the symlink /totmp and /nope/../tmp are not in /tmp")
	}
}

// apiClient is an HTTP client of the world's daemon socket.
func apiClient(w *testworld.World) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", w.Socket)
	}}}
}

// apiGet sends GET path to the daemon and returns its response, whose
// body the caller closes.
func apiGet(t *testing.T, ctx context.Context, client *http.Client, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://berth"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
