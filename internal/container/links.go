package container

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Link is a legacy link (docker run --link on the default bridge): the
// container, the parent, reaches the child by the alias. At each start of
// the parent the child's address goes into the parent's /etc/hosts and
// its ports and environment into the parent's environment (LinkEnv).
type Link struct {
	ChildID string `json:"childId"`
	// Name is the child's name when the link was made: the message for a
	// child that has since been removed names it.
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

// LinkEnv is the environment a link gives the parent, as moby's
// links.Link.ToEnv writes it: for the child's exposed ports ("80/tcp"),
// TCP first and then by number, ALIAS_PORT (the first), and for each
// ALIAS_PORT_80_TCP with _ADDR, _PORT and _PROTO, plus _START/_END
// variables for each run of consecutive ports; then ALIAS_NAME (the link's
// name, "/parent/alias") and the child's environment as ALIAS_ENV_KEY
// (HOME and PATH left out). ALIAS is the alias upper-cased, "-" as "_".
func LinkEnv(linkName, childIP string, childEnv, exposed []string) []string {
	_, n := path.Split(linkName)
	alias := strings.ReplaceAll(strings.ToUpper(n), "-", "_")
	ports := linkPorts(exposed)
	env := make([]string, 0, 2+len(ports)*4+len(childEnv))
	var start, end linkPort
	for i, p := range ports {
		if i == 0 {
			start, end = p, p
			env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", alias, p.proto, childIP, p.num))
		}
		prefix := fmt.Sprintf("%s_PORT_%d_%s", alias, p.num, strings.ToUpper(p.proto))
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", prefix, p.proto, childIP, p.num),
			fmt.Sprintf("%s_ADDR=%s", prefix, childIP),
			fmt.Sprintf("%s_PORT=%d", prefix, p.num),
			fmt.Sprintf("%s_PROTO=%s", prefix, p.proto))
		// The same test as moby's, quirks included: a run ends at a port
		// that does not follow the last one, and the last port closes it.
		if p.num == end.num+1 && strings.EqualFold(p.proto, start.proto) {
			end = p
			if i < len(ports)-1 {
				continue
			}
		}
		if end != start {
			prefix = fmt.Sprintf("%s_PORT_%d_%s", alias, start.num, strings.ToUpper(start.proto))
			env = append(env,
				fmt.Sprintf("%s_START=%s://%s:%d", prefix, start.proto, childIP, start.num),
				fmt.Sprintf("%s_PORT_START=%d", prefix, start.num),
				fmt.Sprintf("%s_END=%s://%s:%d", prefix, end.proto, childIP, end.num),
				fmt.Sprintf("%s_PORT_END=%d", prefix, end.num))
		}
		start, end = p, p
	}
	env = append(env, fmt.Sprintf("%s_NAME=%s", alias, linkName))
	for _, kv := range childEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", alias, k, v))
	}
	return env
}

type linkPort struct {
	num   int
	proto string
}

// linkPorts reads "80/tcp" keys and sorts them as moby's withTCPPriority:
// TCP first, then by protocol name, by number within a protocol.
func linkPorts(exposed []string) []linkPort {
	ports := make([]linkPort, 0, len(exposed))
	for _, e := range exposed {
		num, proto, _ := strings.Cut(e, "/")
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		if proto == "" {
			proto = "tcp"
		}
		ports = append(ports, linkPort{num: n, proto: strings.ToLower(proto)})
	}
	slices.SortFunc(ports, func(a, b linkPort) int {
		switch {
		case a.proto == b.proto:
			return a.num - b.num
		case a.proto == "tcp":
			return -1
		case b.proto == "tcp":
			return 1
		}
		return strings.Compare(a.proto, b.proto)
	})
	return ports
}

// ParseLink reads a link as Docker takes it (moby's opts.ParseLink):
// "name" or "name:alias", and also the "/name:/parent/alias" form that
// inspect shows, whose alias is the last element.
func ParseLink(s string) (name, alias string, err error) {
	if s == "" {
		return "", "", errors.New("empty string specified for links")
	}
	parts := strings.Split(s, ":")
	switch {
	case len(parts) > 2:
		return "", "", fmt.Errorf("bad format for links: %s", s)
	case len(parts) == 1:
		return s, s, nil
	case strings.HasPrefix(parts[0], "/"):
		_, alias := path.Split(parts[1])
		return parts[0][1:], alias, nil
	}
	return parts[0], parts[1], nil
}
