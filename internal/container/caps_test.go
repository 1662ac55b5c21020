package container

import (
	"slices"
	"testing"
)

func TestNormalizeCapabilities(t *testing.T) {
	got, err := NormalizeCapabilities([]string{"net_admin", "CAP_SYS_TIME", "all", "NET_ADMIN"})
	if want := []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("NormalizeCapabilities = %v, %v; want %v", got, err, want)
	}
	if _, err := NormalizeCapabilities([]string{"CAP_FLY"}); err == nil || err.Error() != `unknown capability: "CAP_FLY"` {
		t.Errorf("unknown capability: err = %v", err)
	}
}

func TestCapabilities(t *testing.T) {
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(DefaultCapabilities), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"defaults", nil, nil, DefaultCapabilities},
		{"add one", []string{"CAP_NET_ADMIN"}, nil, append(slices.Clone(DefaultCapabilities), "CAP_NET_ADMIN")},
		{"add one already there", []string{"CAP_KILL"}, nil, DefaultCapabilities},
		{"drop one", nil, []string{"CAP_NET_RAW"}, without("CAP_NET_RAW")},
		{"drop all, add one", []string{"CAP_NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}},
		{"drop all", nil, []string{"ALL"}, nil},
		{"add all but one", []string{"ALL"}, []string{"CAP_SYS_ADMIN"}, slices.DeleteFunc(slices.Clone(knownCapabilities), func(c string) bool { return c == "CAP_SYS_ADMIN" })},
	} {
		if got := Capabilities(tc.add, tc.drop); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Capabilities(%v, %v) = %v, want %v", tc.name, tc.add, tc.drop, got, tc.want)
		}
	}
}

func TestCheckSysctl(t *testing.T) {
	for _, tc := range []struct {
		key  string
		host bool
		want string
	}{
		{"net.ipv4.tcp_keepalive_time", false, ""},
		{"net.core.somaxconn", false, ""},
		{"fs.mqueue.msg_max", true, ""},
		{"kernel.shmmax", false, ""},
		{"kernel.hostname", false, "sysctl 'kernel.hostname' is not allowed"},
		{"vm.swappiness", false, "sysctl 'vm.swappiness' is not allowed"},
		{"net.ipv4.ip_forward", true, `sysctl "net.ipv4.ip_forward" not allowed in host network namespace`},
	} {
		err := CheckSysctl(tc.key, tc.host)
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("CheckSysctl(%q, %v) = %q, want %q", tc.key, tc.host, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("CheckSysctl(%q, %v) = nil, want %q", tc.key, tc.host, tc.want)
		}
	}
}
