// Package imagetest builds the busybox root filesystem that berth's tests,
// demo and end-to-end runs import as an image. It is a non-test package so
// that the CLI and test tools can write the same tar.
package imagetest

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/usr/bin/busybox"

// mtime is fixed so that the tar, and so the image ID, is the same every time.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
www-data:x:33:
users:x:100:www-data
nogroup:x:65534:
`

// BusyboxTar writes the busybox root filesystem tar into the test's temp
// dir and returns its path. It fails the test, naming the Debian package,
// when busybox-static is missing.
func BusyboxTar(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatalf("create busybox tar: %v", err)
	}
	defer f.Close()
	if err := WriteBusyboxTar(f); err != nil {
		t.Fatalf("write busybox tar: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("write busybox tar: %v", err)
	}
	return p
}

// WriteBusyboxTar writes a tar of a minimal root filesystem: /bin/busybox
// (a copy of the host's static busybox), a symlink in /bin per applet,
// /etc/passwd and /etc/group, and the empty directories and files a
// container runtime mounts over (/proc, /sys, /dev, /tmp, /etc/hosts, …).
// The output is byte-for-byte the same for the same busybox binary.
func WriteBusyboxTar(w io.Writer) error {
	bin, applets, err := readBusybox()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"home", 0o755}, {"proc", 0o555},
		{"root", 0o700}, {"sys", 0o555}, {"tmp", 0o1777}, {"var", 0o755}, {"var/www", 0o755},
	} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name + "/", Mode: d.mode, ModTime: mtime}); err != nil {
			return err
		}
	}
	if err := writeFile(tw, "bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, a := range applets {
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, body string }{
		{"etc/passwd", passwd}, {"etc/group", group},
		{"etc/hosts", ""}, {"etc/resolv.conf", ""}, {"etc/hostname", ""},
	} {
		if err := writeFile(tw, f.name, 0o644, []byte(f.body)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, name string, mode int64, body []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(body)
	return err
}

// readBusybox returns the static busybox binary and its applet names.
func readBusybox() ([]byte, []string, error) {
	const hint = "install the Debian package busybox-static (apt-get install busybox-static)"
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w; %s", BusyboxPath, err, hint)
	}
	if err := requireStatic(bin); err != nil {
		return nil, nil, fmt.Errorf("%s: %w; %s", BusyboxPath, err, hint)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	return bin, applets, nil
}

// requireStatic refuses a dynamically linked busybox (Debian's package
// "busybox"), which would not run in a root filesystem without its libraries.
func requireStatic(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("is dynamically linked")
		}
	}
	return nil
}
