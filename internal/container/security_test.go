package container

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSecurityOpts(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want Security
		err  string
	}{
		{[]string{"no-new-privileges"}, Security{NoNewPrivileges: true}, ""},
		{[]string{"no-new-privileges:true", "no-new-privileges=false"}, Security{}, ""},
		{[]string{"seccomp=unconfined"}, Security{Seccomp: SeccompUnconfined}, ""},
		{[]string{"seccomp=builtin"}, Security{Seccomp: SeccompBuiltin}, ""},
		{[]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}, Security{Seccomp: `{"defaultAction":"SCMP_ACT_ALLOW"}`}, ""},
		{[]string{"writable-cgroups=true", "apparmor=unconfined", "label=disable", "disable"}, Security{WritableCgroups: true}, ""},
		{[]string{"systempaths=unconfined"}, Security{}, `invalid --security-opt 2: "systempaths=unconfined"`}, // the CLI's, sent as empty path lists
		{[]string{"foo"}, Security{}, `invalid --security-opt 1: "foo"`},
		{[]string{"foo=bar"}, Security{}, `invalid --security-opt 2: "foo=bar"`},
		{[]string{"no-new-privileges=maybe"}, Security{}, `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{[]string{"apparmor=docker-default"}, Security{}, "--security-opt apparmor=docker-default: berth applies no AppArmor profile (this option takes only apparmor=unconfined, which is what berth's containers are)"},
	} {
		got, err := ParseSecurityOpts(tc.opts)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.opts, err)
			continue
		}
		tc.want.Opts = tc.opts
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.opts, diff)
		}
	}
}

func TestCapabilitiesIn(t *testing.T) {
	// Docker's default set as a CapEff mask.
	if diff := cmp.Diff([]string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
		"CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"},
		CapabilitiesIn(0xa80425fb)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseDeviceRule(t *testing.T) {
	got, err := ParseDeviceRule("c 10:* rw")
	if err != nil || got != (DeviceRule{Type: "c", Major: 10, Minor: -1, Access: "rw"}) {
		t.Errorf("c 10:* rw: %+v, %v", got, err)
	}
	for _, bad := range []string{"x", "c 1:3 rwx", "d 1:3 r", "c 1 r", "c 99999999999999999999:1 r"} {
		if _, err := ParseDeviceRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if err := CheckDeviceMapping(DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []DeviceMapping{{PathOnHost: "dev/fuse", PathInContainer: "/x", CgroupPermissions: "r"},
		{PathOnHost: "/dev/fuse", PathInContainer: "x", CgroupPermissions: "r"}, {PathOnHost: "/dev/fuse", PathInContainer: "/x", CgroupPermissions: "rr"}} {
		if err := CheckDeviceMapping(bad); err == nil {
			t.Errorf("%+v passed", bad)
		}
	}
}

func TestCheckNamespaces(t *testing.T) {
	for _, ok := range []Namespaces{{}, {PidMode: "host", IpcMode: "shareable", UTSMode: "host", CgroupnsMode: "private"},
		{PidMode: "container:a", IpcMode: "container:b"}, {IpcMode: "none"}, {IpcMode: "private", CgroupnsMode: "host"}} {
		if err := CheckNamespaces(ok, "", ""); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []struct {
		ns       Namespaces
		hostname string
		want     string
	}{
		{Namespaces{PidMode: "container:"}, "", "invalid PID mode: container:"},
		{Namespaces{PidMode: "private"}, "", "invalid PID mode: private"},
		{Namespaces{IpcMode: "other"}, "", "invalid IPC mode: other"},
		{Namespaces{UTSMode: "private"}, "", "invalid UTS mode: private"},
		{Namespaces{UTSMode: "host"}, "box", "conflicting options: hostname and the UTS mode"},
		{Namespaces{CgroupnsMode: "shared"}, "", "invalid cgroup namespace mode: shared"},
	} {
		if err := CheckNamespaces(bad.ns, bad.hostname, ""); err == nil || err.Error() != bad.want {
			t.Errorf("%+v: %v, want %q", bad.ns, err, bad.want)
		}
	}
}

// TestSecurityPathsEachOnItsOwn: an empty MaskedPaths leaves the read-only
// paths Docker's (a container could otherwise write the host's
// /proc/sys), and the reverse; privileged has neither unless given.
func TestSecurityPathsEachOnItsOwn(t *testing.T) {
	s := Security{MaskedPaths: &[]string{}}
	if len(s.Masked()) != 0 || len(s.Readonly()) != len(DefaultReadonlyPaths()) {
		t.Errorf("MaskedPaths [] alone: masked %v, read-only %v", s.Masked(), s.Readonly())
	}
	s = Security{ReadonlyPaths: &[]string{"/proc/sys"}}
	if len(s.Masked()) != len(DefaultMaskedPaths()) || len(s.Readonly()) != 1 {
		t.Errorf("ReadonlyPaths of its own: masked %v, read-only %v", s.Masked(), s.Readonly())
	}
	s = Security{Privileged: true, MaskedPaths: &[]string{"/proc/kcore"}}
	if len(s.Masked()) != 1 || s.Readonly() != nil {
		t.Errorf("privileged with MaskedPaths: masked %v, read-only %v", s.Masked(), s.Readonly())
	}
}
