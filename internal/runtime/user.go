package runtime

import (
	"bufio"
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolveUser turns a docker --user value ("", "uid", "uid:gid", "name",
// "name:group", "uid:group", …) into IDs, looking names up in the image's
// /etc/passwd and /etc/group contents (either may be empty), as runc's
// libcontainer/user does for Docker.
//
// groupAdd (--group-add) are more groups, names or IDs, after those: a
// name /etc/group does not list fails in moby's words.
func resolveUser(spec string, passwd, group []byte, groupAdd []string) (user, error) {
	users, groups := parsePasswd(passwd), parseGroup(group)
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	u, err := lookupUser(userPart, users)
	if err != nil {
		return user{}, err
	}
	out := user{UID: u.uid, GID: u.gid, Home: u.home}
	if hasGroup && groupPart != "" { // "33:" is the user's own group, as in runc and moby
		if out.GID, err = lookupGroup(groupPart, groups); err != nil {
			return user{}, err
		}
	}
	// As containerd does for Docker: the primary group first, then the
	// groups that list the user as a member.
	out.AdditionalGids = []uint32{out.GID}
	for _, g := range groups {
		if u.name != "" && slices.Contains(g.members, u.name) && !slices.Contains(out.AdditionalGids, g.gid) {
			out.AdditionalGids = append(out.AdditionalGids, g.gid)
		}
	}
	for _, name := range groupAdd {
		gid, err := additionalGroup(name, groups)
		if err != nil {
			return user{}, err
		}
		if !slices.Contains(out.AdditionalGids, gid) {
			out.AdditionalGids = append(out.AdditionalGids, gid)
		}
	}
	return out, nil
}

// additionalGroup is a --group-add's ID (moby's GetAdditionalGroups): a
// group of that name or ID in /etc/group, else a number in range.
func additionalGroup(s string, groups []groupEntry) (uint32, error) {
	for _, g := range groups {
		if g.name == s || strconv.FormatUint(uint64(g.gid), 10) == s {
			return g.gid, nil
		}
	}
	gid, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errdefs.Invalid("Unable to find group %s: no matching entries in group file", s)
	}
	if gid < 0 || gid > 2147483647 {
		return 0, errdefs.Invalid("uids and gids must be in range 0-2147483647")
	}
	return uint32(gid), nil
}

// resolveOwner turns a container's --user into the IDs docker cp -a gives
// the files it unpacks, as moby's getUIDGID: a user ID that passwd does
// not list keeps group 0, an empty part is root's (or, for the group, the
// user's own), and a name that is not listed fails in moby's words.
func resolveOwner(spec string, passwd, group []byte) (uid, gid uint32, err error) {
	userPart, groupPart, _ := strings.Cut(spec, ":")
	if userPart != "" {
		u, err := lookupUser(userPart, parsePasswd(passwd))
		if err != nil {
			return 0, 0, errdefs.Invalid("failed to look up user %q in container: no matching entries in passwd file", userPart)
		}
		uid, gid = u.uid, u.gid
	}
	if groupPart != "" {
		if gid, err = lookupGroup(groupPart, parseGroup(group)); err != nil {
			return 0, 0, errdefs.Invalid("failed to look up group %q in container: no matching entries in group file", groupPart)
		}
	}
	return uid, gid, nil
}

func lookupUser(s string, users []passwdEntry) (passwdEntry, error) {
	if uid, err := strconv.ParseUint(s, 10, 31); err == nil {
		for _, u := range users {
			if u.uid == uint32(uid) {
				return u, nil
			}
		}
		home := "/"
		if uid == 0 {
			home = "/root"
		}
		return passwdEntry{uid: uint32(uid), home: home}, nil
	}
	for _, u := range users {
		if u.name == s {
			return u, nil
		}
	}
	return passwdEntry{}, errdefs.Invalid("unable to find user %s: no matching entries in passwd file", s)
}

func lookupGroup(s string, groups []groupEntry) (uint32, error) {
	if gid, err := strconv.ParseUint(s, 10, 31); err == nil {
		return uint32(gid), nil
	}
	for _, g := range groups {
		if g.name == s {
			return g.gid, nil
		}
	}
	return 0, errdefs.Invalid("unable to find group %s: no matching entries in group file", s)
}

// parsePasswd reads name:password:uid:gid:gecos:home:shell lines, skipping
// malformed ones as libc does.
func parsePasswd(b []byte) []passwdEntry {
	var out []passwdEntry
	for _, f := range colonLines(b, 7) {
		uid, err1 := strconv.ParseUint(f[2], 10, 31)
		gid, err2 := strconv.ParseUint(f[3], 10, 31)
		if err1 != nil || err2 != nil {
			continue
		}
		home := f[5]
		if home == "" {
			home = "/"
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: home})
	}
	return out
}

// parseGroup reads name:password:gid:member,member lines.
func parseGroup(b []byte) []groupEntry {
	var out []groupEntry
	for _, f := range colonLines(b, 4) {
		gid, err := strconv.ParseUint(f[2], 10, 31)
		if err != nil {
			continue
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{name: f[0], gid: uint32(gid), members: members})
	}
	return out
}

// colonLines splits non-comment lines into exactly n colon-separated fields.
func colonLines(b []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != n || f[0] == "" {
			continue
		}
		out = append(out, f)
	}
	return out
}
