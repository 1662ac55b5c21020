package runtime

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-net/berth/internal/container"
)

// allowed tells how a filter treats a call: allowed outright, only with
// some arguments, refused with an errno (its own or the default), never
// named (the default action).
func allowed(f *specs.LinuxSeccomp, name string) (outright, withArgs bool, errno uint) {
	for _, r := range f.Syscalls {
		for _, n := range r.Names {
			if n != name {
				continue
			}
			switch {
			case r.Action == specs.ActAllow && len(r.Args) == 0:
				outright = true
			case r.Action == specs.ActAllow:
				withArgs = true
			case r.ErrnoRet != nil:
				errno = *r.ErrnoRet
			}
		}
	}
	return outright, withArgs, errno
}

// TestDefaultSeccompAsDockers: Docker's default profile for Docker's
// default capabilities on amd64: the common calls allowed, namespaces and
// the kernel's keyring refused (EPERM by default), clone only without
// namespace flags, clone3 ENOSYS; CAP_SYS_ADMIN lifts them; ptrace needs a
// kernel from 4.8 on.
func TestDefaultSeccompAsDockers(t *testing.T) {
	f := defaultSeccomp().spec(container.DefaultCapabilities, "amd64", "6.1.0")
	if f.DefaultAction != specs.ActErrno || f.DefaultErrnoRet == nil || *f.DefaultErrnoRet != 1 {
		t.Errorf("default action %s %v, want EPERM", f.DefaultAction, f.DefaultErrnoRet)
	}
	if got := f.Architectures; len(got) != 3 || got[0] != specs.ArchX86_64 {
		t.Errorf("architectures %v", got)
	}
	for _, name := range []string{"read", "openat", "execve", "arch_prctl", "chroot", "ptrace", "io_setup"} {
		if out, _, _ := allowed(f, name); !out {
			t.Errorf("%s is not allowed", name)
		}
	}
	for _, name := range []string{"unshare", "setns", "mount", "keyctl", "add_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "kexec_load", "reboot", "open_by_handle_at"} {
		if out, args, errno := allowed(f, name); out || args || errno != 0 {
			t.Errorf("%s: allowed %v, with args %v, errno %d; want the default EPERM", name, out, args, errno)
		}
	}
	if _, args, _ := allowed(f, "clone"); !args {
		t.Error("clone is not allowed without namespace flags")
	}
	if _, _, errno := allowed(f, "clone3"); errno != 38 {
		t.Errorf("clone3 errno %d, want ENOSYS", errno)
	}
	if _, args, _ := allowed(f, "socket"); !args {
		t.Error("socket is not filtered by family")
	}

	admin := defaultSeccomp().spec(append(container.DefaultCapabilities, "CAP_SYS_ADMIN"), "amd64", "6.1.0")
	for _, name := range []string{"unshare", "setns", "mount", "clone"} {
		if out, _, _ := allowed(admin, name); !out {
			t.Errorf("with CAP_SYS_ADMIN, %s is not allowed", name)
		}
	}
	if _, _, errno := allowed(admin, "clone3"); errno != 0 {
		t.Errorf("with CAP_SYS_ADMIN, clone3 gets errno %d", errno)
	}
	noChroot := defaultSeccomp().spec([]string{"CAP_CHOWN"}, "amd64", "6.1.0")
	if out, _, _ := allowed(noChroot, "chroot"); out {
		t.Error("chroot allowed without CAP_SYS_CHROOT in the bounding set")
	}
	old := defaultSeccomp().spec(container.DefaultCapabilities, "amd64", "4.4.0")
	if out, _, _ := allowed(old, "ptrace"); out {
		t.Error("ptrace allowed on a kernel before 4.8")
	}
	arm := defaultSeccomp().spec(container.DefaultCapabilities, "arm64", "6.1.0")
	if out, _, _ := allowed(arm, "arch_prctl"); out {
		t.Error("arch_prctl (x86 only) allowed on arm64")
	}
}

// TestParseSeccompProfile: a profile of the user's own in Docker's format,
// with its archMap and conditions, and moby's refusals.
func TestParseSeccompProfile(t *testing.T) {
	p, err := parseSeccompProfile([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":[]}],
		"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},{"name":"chmod","action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_FOWNER"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	f := p.spec([]string{"CAP_CHOWN"}, "amd64", "6.1.0")
	if got := f.Architectures; len(got) != 2 || got[0] != specs.ArchX86_64 || got[1] != specs.ArchX86 {
		t.Errorf("architectures %v", got)
	}
	if _, _, errno := allowed(f, "mkdir"); errno != 13 {
		t.Errorf("mkdir errno %d", errno)
	}
	if len(f.Syscalls) != 2 || p.spec([]string{"CAP_FOWNER"}, "amd64", "6.1.0").Syscalls[0].Names[0] != "mkdir" {
		t.Errorf("the chmod rule's excludes: %+v", f.Syscalls)
	}
	// A notifying profile's listener goes to runc, as moby's setupSeccomp
	// passes it (dropped, the container failed to start: runc's
	// "listenerPath is not set").
	n, err := parseSeccompProfile([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"m",
		"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if f := n.spec(nil, "amd64", "6.1.0"); f.ListenerPath != "/run/agent.sock" || f.ListenerMetadata != "m" {
		t.Errorf("listener %q %q, want the profile's", f.ListenerPath, f.ListenerMetadata)
	}
	for _, bad := range []struct{ json, want string }{
		{`{`, "Decoding seccomp profile failed"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, "both 'architectures' and 'archMap'"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}`, "both 'name' and 'names'"},
	} {
		if _, err := parseSeccompProfile([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.json, err, bad.want)
		}
	}
}

// TestCheckSeccompProfile: the names pass, a profile is parsed.
func TestCheckSeccompProfile(t *testing.T) {
	for _, ok := range []string{"", "unconfined", "builtin", `{"defaultAction":"SCMP_ACT_ALLOW"}`} {
		if err := CheckSeccompProfile(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if err := CheckSeccompProfile("{"); err == nil {
		t.Error("a broken profile passed")
	}
}
