package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
)

const testPasswd = `# comment
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
broken:x:notanumber:1::/:/bin/sh
short:x:1
nohome:x:40:40:::/bin/sh
`

const testGroup = `root:x:0:
www-data:x:33:
users:x:100:www-data,nohome
staff:x:50: www-data
bad:x:zz:www-data
`

func TestResolveUser(t *testing.T) {
	for spec, want := range map[string]user{
		"":              {UID: 0, GID: 0, AdditionalGids: []uint32{0}, Home: "/root"},
		"root":          {UID: 0, GID: 0, AdditionalGids: []uint32{0}, Home: "/root"},
		"www-data":      {UID: 33, GID: 33, AdditionalGids: []uint32{33, 100, 50}, Home: "/var/www"},
		"33":            {UID: 33, GID: 33, AdditionalGids: []uint32{33, 100, 50}, Home: "/var/www"},
		"www-data:100":  {UID: 33, GID: 100, AdditionalGids: []uint32{100, 50}, Home: "/var/www"},
		"www-data:root": {UID: 33, GID: 0, AdditionalGids: []uint32{0, 100, 50}, Home: "/var/www"},
		"1000":          {UID: 1000, GID: 0, AdditionalGids: []uint32{0}, Home: "/"},
		"1000:2000":     {UID: 1000, GID: 2000, AdditionalGids: []uint32{2000}, Home: "/"},
		"nohome":        {UID: 40, GID: 40, AdditionalGids: []uint32{40, 100}, Home: "/"},
		":users":        {UID: 0, GID: 100, AdditionalGids: []uint32{100}, Home: "/root"},
		"33:":           {UID: 33, GID: 33, AdditionalGids: []uint32{33, 100, 50}, Home: "/var/www"},
	} {
		got, err := resolveUser(spec, []byte(testPasswd), []byte(testGroup), nil)
		if err != nil {
			t.Errorf("resolveUser(%q): %v", spec, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("resolveUser(%q) (-want +got):\n%s", spec, diff)
		}
	}
}

func TestResolveUserRefuses(t *testing.T) {
	for _, spec := range []string{"nosuch", "broken", "short", "root:nosuch", "root:bad", "-1", "99999999999", "www-data:-5"} {
		if got, err := resolveUser(spec, []byte(testPasswd), []byte(testGroup), nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("resolveUser(%q) = %+v, %v; want an Invalid error", spec, got, err)
		}
	}
	// No passwd file at all: numeric IDs still work, names do not.
	if got, err := resolveUser("5:6", nil, nil, nil); err != nil || got.UID != 5 || got.GID != 6 {
		t.Errorf("resolveUser without files = %+v, %v", got, err)
	}
	if _, err := resolveUser("root", nil, nil, nil); err == nil {
		t.Error("resolveUser(\"root\") without a passwd file succeeded")
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615"
	st, err := parseStat(line)
	if err != nil || st.state != 'S' || st.start != 987654 {
		t.Errorf("parseStat = %+v, %v; want state S, start 987654", st, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// TestResolveOwner: docker cp -a's IDs for a container's --user, as
// moby's getUIDGID: an unlisted user ID keeps group 0, empty parts are
// root's or the user's own group, names must be listed.
func TestResolveOwner(t *testing.T) {
	for spec, want := range map[string][2]uint32{
		"": {0, 0}, "www-data": {33, 33}, "33": {33, 33}, "12345": {12345, 0}, ":33": {0, 33},
		"33:": {33, 33}, "www-data:users": {33, 100}, "1000:2000": {1000, 2000},
	} {
		uid, gid, err := resolveOwner(spec, []byte(testPasswd), []byte(testGroup))
		if err != nil || [2]uint32{uid, gid} != want {
			t.Errorf("resolveOwner(%q) = %d, %d, %v; want %v", spec, uid, gid, err, want)
		}
	}
}

// TestResolveUserGroupAdd: --group-add's groups, by name or ID, after the
// user's own, as moby's getUser; an unknown name fails in moby's words, an
// unknown ID is taken as it is.
func TestResolveUserGroupAdd(t *testing.T) {
	got, err := resolveUser("www-data", []byte(testPasswd), []byte(testGroup), []string{"root", "4242", "users"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint32{33, 100, 50, 0, 4242}, got.AdditionalGids); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for add, want := range map[string]string{
		"nosuch":      "Unable to find group nosuch: no matching entries in group file",
		"99999999999": "uids and gids must be in range 0-2147483647",
		"-1":          "uids and gids must be in range 0-2147483647",
	} {
		if _, err := resolveUser("root", []byte(testPasswd), []byte(testGroup), []string{add}); err == nil || err.Error() != want || !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("--group-add %s: %v, want %q", add, err, want)
		}
	}
}
