package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/runtime/image/imagetest"
)

// digestOf is b's sha256 digest, "sha256:<hex>".
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tarBytes is a tar of files (name → body; a name ending in "/" is a
// directory).
func tarBytes(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f[0], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDockerLoad: docker load takes what docker save writes — here two
// layers (busybox, then one that adds a file and deletes one) and a
// config — and docker run uses the image's command, environment and
// working directory, as Docker does; image inspect shows its config.
func TestDockerLoad(t *testing.T) {
	w, _ := startWorld(t)
	base, err := os.ReadFile(imagetest.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	top := tarBytes(t, [2]string{"srv/", ""}, [2]string{"srv/hello", "hi\n"}, [2]string{"bin/.wh.vi", ""})
	config := `{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","FOO=bar"],"WorkingDir":"/srv",` +
		`"Cmd":["sh","-c","echo $FOO; pwd; cat hello; test -e /bin/vi || echo no vi"],"ExposedPorts":{"80/tcp":{}},"Labels":{"made":"by-test"}},` +
		`"rootfs":{"type":"layers","diff_ids":["` + digestOf(base) + `","` + digestOf(top) + `"]}}`
	manifest, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/cfg", "RepoTags": []string{"shop/web:1.0"},
		"Layers": []string{"blobs/sha256/l1", "blobs/sha256/l2"}}})
	archive := filepath.Join(t.TempDir(), "web.tar")
	if err := os.WriteFile(archive, tarBytes(t, [2]string{"blobs/", ""}, [2]string{"blobs/sha256/", ""},
		[2]string{"blobs/sha256/cfg", config}, [2]string{"blobs/sha256/l1", string(base)}, [2]string{"blobs/sha256/l2", string(top)},
		[2]string{"manifest.json", string(manifest)}), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustDocker(t, w, "load", "-i", archive); out != "Loaded image: shop/web:1.0\n" {
		t.Errorf("docker load: %q", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "shop/web:1.0"); out != "bar\n/srv\nhi\nno vi\n" {
		t.Errorf("docker run of the loaded image: %q", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "-e", "FOO=mine", "shop/web:1.0", "sh", "-c", "echo $FOO $PATH"); out != "mine /bin\n" {
		t.Errorf("docker run with its own command and -e: %q", out)
	}
	if out := dockerInspect(t, w, "{{json .Config.Cmd}} {{.Config.WorkingDir}} {{json .Config.ExposedPorts}}", "shop/web:1.0"); out != `["sh","-c","echo $FOO; pwd; cat hello; test -e /bin/vi || echo no vi"] /srv {"80/tcp":{}}` {
		t.Errorf("image inspect: %s", out)
	}
	mustDocker(t, w, "create", "--name", "fromload", "shop/web:1.0")
	if out := dockerInspect(t, w, `{{index .Config.Labels "made"}} {{json .Config.Env}}`, "fromload"); out != `by-test ["PATH=/bin","FOO=bar"]` {
		t.Errorf("the container's labels and env from its image: %s", out)
	}

	// docker tag: another name for it, and docker run by that name.
	mustDocker(t, w, "tag", "shop/web:1.0", "web")
	if out := mustDocker(t, w, "images", "--format", "{{.Repository}}:{{.Tag}}", "web"); out != "web:latest\n" {
		t.Errorf("docker images web after docker tag: %q", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "web", "cat", "hello"); out != "hi\n" {
		t.Errorf("docker run web: %q", out)
	}

	// docker save writes what docker load reads back: the same files and
	// config under the same name.
	saved := filepath.Join(t.TempDir(), "saved.tar")
	mustDocker(t, w, "save", "-o", saved, "shop/web:1.0")
	mustDocker(t, w, "rm", "fromload")
	mustDocker(t, w, "rmi", "shop/web:1.0", "web")
	if out := mustDocker(t, w, "load", "-i", saved); out != "Loaded image: shop/web:1.0\n" {
		t.Errorf("docker load of docker save's archive: %q", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "shop/web:1.0"); out != "bar\n/srv\nhi\nno vi\n" {
		t.Errorf("docker run after save and load: %q", out)
	}

	// As moby's: a bare name saves its repository's tags, an ID none.
	mustDocker(t, w, "tag", "shop/web:1.0", "shop/web:1.1")
	byName := filepath.Join(t.TempDir(), "byname.tar")
	mustDocker(t, w, "save", "-o", byName, "shop/web")
	if out := mustDocker(t, w, "load", "-i", byName); out != "Loaded image: shop/web:1.0\nLoaded image: shop/web:1.1\n" && out != "Loaded image: shop/web:1.1\nLoaded image: shop/web:1.0\n" {
		t.Errorf("docker load of docker save shop/web: %q", out)
	}
	id := dockerInspect(t, w, "{{.Id}}", "shop/web:1.0")
	byID := filepath.Join(t.TempDir(), "byid.tar")
	mustDocker(t, w, "save", "-o", byID, id[7:19])
	if out := mustDocker(t, w, "load", "-i", byID); out != "Loaded image ID: "+id+"\n" {
		t.Errorf("docker load of docker save by ID: %q, want the ID alone", out)
	}

	// docker import --change: the image's config from Dockerfile lines.
	busybox := filepath.Join(t.TempDir(), "busybox.tar")
	os.WriteFile(busybox, base, 0o644)
	mustDocker(t, w, "import", "-c", `CMD ["sh", "-c", "echo $X from $PWD"]`, "-c", "ENV X=imported", "-c", "WORKDIR /tmp", busybox, "withcmd")
	if out := mustDocker(t, w, "run", "--rm", "withcmd"); out != "imported from /tmp\n" {
		t.Errorf("docker run of an image imported with --change: %q", out)
	}
	if _, errOut, code := w.Docker(t, "import", "-c", "RUN true", busybox, "bad"); code == 0 || !strings.Contains(errOut, "run is not a valid change command") {
		t.Errorf("docker import -c 'RUN true': exit %d, %q", code, errOut)
	}

	// Two images of one tree share its layer blob in a save, written once
	// (a tar with the same entry twice); import -m's comment survives a
	// save and load (QA round 27).
	mustDocker(t, w, "import", "-m", "my msg", busybox, "commented")
	both := filepath.Join(t.TempDir(), "both.tar")
	mustDocker(t, w, "save", "-o", both, "commented", "withcmd")
	names, _, code := w.InHost(t, "tar", "-tf", both)
	if code != 0 {
		t.Fatalf("tar -tf %s failed", both)
	}
	seen := map[string]bool{}
	for _, n := range strings.Fields(names) {
		if seen[n] {
			t.Errorf("docker save wrote %s twice", n)
		}
		seen[n] = true
	}
	// An OCI image layout too, as Docker 28's save: index.json names
	// each tag's manifest, whose config and layer are blobs beside it.
	for _, n := range []string{"index.json", "oci-layout", "repositories", "manifest.json"} {
		if !seen[n] {
			t.Errorf("docker save wrote no %s: %q", n, names)
		}
	}
	index, _, _ := w.InHost(t, "tar", "-xOf", both, "index.json")
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal([]byte(index), &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("index.json %s: %v", index, err)
	}
	for _, m := range idx.Manifests {
		if name := m.Annotations["io.containerd.image.name"]; name != "docker.io/library/commented:latest" && name != "docker.io/library/withcmd:latest" {
			t.Errorf("index.json's manifest named %q", name)
		}
		blob := "blobs/sha256/" + strings.TrimPrefix(m.Digest, "sha256:")
		body, _, _ := w.InHost(t, "tar", "-xOf", both, blob)
		var manifest struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		if err := json.Unmarshal([]byte(body), &manifest); err != nil || len(manifest.Layers) != 1 ||
			!seen["blobs/sha256/"+strings.TrimPrefix(manifest.Config.Digest, "sha256:")] || !seen["blobs/sha256/"+strings.TrimPrefix(manifest.Layers[0].Digest, "sha256:")] {
			t.Errorf("the OCI manifest %s: %s (%v)", blob, body, err)
		}
	}
	mustDocker(t, w, "rmi", "commented", "withcmd")
	mustDocker(t, w, "load", "-i", both)
	if out := dockerInspect(t, w, "{{.Comment}}", "commented"); out != "my msg" {
		t.Errorf("the comment after save and load = %q, want my msg", out)
	}
	if out := mustDocker(t, w, "run", "--rm", "withcmd"); out != "imported from /tmp\n" {
		t.Errorf("docker run withcmd after save and load: %q", out)
	}

	// What docker save does not write is refused, in the stream.
	rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(rootfs, base, 0o644)
	_, errOut, code := w.Docker(t, "load", "-i", rootfs)
	if code == 0 || !strings.Contains(errOut, "no manifest.json") {
		t.Errorf("docker load of a root file system: exit %d, %q", code, errOut)
	}
}
