# Shared by scripts/demo and scripts/test; source it, do not run it.

# berth_ensure_packages installs the Debian packages given that are missing,
# running apt-get update first only when something is missing.
berth_ensure_packages() {
	local missing=() p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	echo "installing missing Debian packages: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# No package may start its service (firewalld, iperf3, dbus): a
	# service started here would run in the machine's own namespace, and
	# the tests start what they need in namespaces of their own.
	# policy-rc.d answering 101 is Debian's way to say so; one already
	# there is put back afterwards, whatever happens.
	local saved=""
	if [ -e /usr/sbin/policy-rc.d ] || [ -L /usr/sbin/policy-rc.d ]; then
		saved=/usr/sbin/policy-rc.d.berth-saved
		mv -f /usr/sbin/policy-rc.d "$saved"
	fi
	# The EXIT trap puts things back; INT and TERM only leave (through it).
	# shellcheck disable=SC2064 # $saved is meant to be expanded now
	trap "berth_restore_policy_rc '$saved'" EXIT
	trap 'exit 130' INT TERM
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	local rc=0 p
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
	berth_restore_policy_rc "$saved"
	trap - EXIT INT TERM
	# Nor may one start at the machine's next boot: firewalld's package
	# enables it, and it would then filter the machine's own traffic.
	for p in "${missing[@]}"; do
		if [ "$p" = firewalld ] && command -v deb-systemd-helper >/dev/null 2>&1; then
			DPKG_MAINTSCRIPT_PACKAGE=firewalld deb-systemd-helper disable firewalld.service >/dev/null 2>&1 || true
		fi
	done
	return "$rc"
}

# berth_restore_policy_rc puts back the policy-rc.d that
# berth_ensure_packages moved aside to SAVED, or, with none saved,
# removes its own; running it twice changes nothing more.
berth_restore_policy_rc() {
	if [ -n "$1" ]; then
		if [ -e "$1" ] || [ -L "$1" ]; then # not yet put back
			mv -f "$1" /usr/sbin/policy-rc.d
		fi
	else
		rm -f /usr/sbin/policy-rc.d
	fi
}

# berth_ensure_go puts Go on PATH (the machines keep it at /usr/local/go).
berth_ensure_go() {
	# go keeps its caches under $HOME; CI may start us without one.
	export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	command -v go >/dev/null 2>&1 || { echo "Go is not installed (expected /usr/local/go)" >&2; return 1; }
}

# berth_require_root stops early with a clear message when not root.
berth_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$0 needs root: it makes network namespaces and runs containers" >&2
		exit 1
	fi
}

# berth_require_docker_cli stops early, with the reason, when the docker CLI
# that the compatibility tests drive is missing. It is not a Debian package
# here (Debian's docker.io is 20.10 and brings an engine that would touch
# the host's network); these machines keep docker 28's client at
# /usr/local/bin/docker.
berth_require_docker_cli() {
	if [ ! -x /usr/local/bin/docker ] && ! command -v docker >/dev/null 2>&1; then
		echo "the docker CLI (28.x, client only) is missing: the tests drive it against berth; expected /usr/local/bin/docker" >&2
		exit 1
	fi
}

# berth_build builds ./cmd/berth into $1 with the commit and its time
# stamped in (berth version and docker version print them), which Go does
# not do itself when GOFLAGS has -buildvcs=false, as on these machines.
berth_build() {
	local pkg=github.com/berth-net/berth/internal/version commit=unknown built=""
	# Only this repository's own checkout, not one that happens to hold it;
	# --no-optional-locks: a status run as root leaves .git/index alone.
	if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
		commit=$(git rev-parse --short HEAD)
		if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no)" ]; then
			commit=$commit-dirty
		fi
		built=$(git log -1 --format=%cI)
	fi
	go build -ldflags "-X $pkg.GitCommit=$commit -X $pkg.BuildTime=$built" -o "$1" ./cmd/berth
}

# berth_ensure_compose prints the path of a Docker Compose CLI plugin
# (docker compose, v5), building it from the Go module proxy the first
# time into berth's cache under $HOME. It is what the Compose tests drive,
# as the docker CLI is: Debian has only Compose v1, a Python program that
# is no longer maintained, and these machines reach no other download.
# The module's go.mod has exclude directives, which `go install pkg@v`
# refuses, so the module is built from a copy of its source, as its own
# Makefile builds it.
berth_ensure_compose() {
	local version=v5.6.0 cache out dir src tmp rc=0
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/berth
	out=$cache/docker-compose-$version
	if [ -x "$out" ]; then
		echo "$out"
		return 0
	fi
	mkdir -p "$cache" || return 1
	dir=$(cd / && go mod download -json "github.com/docker/compose/v5@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		echo "could not download docker/compose $version from the Go module proxy" >&2
		return 1
	fi
	# Callers run this where set -e is off: every step is checked. The
	# binary is built under a name of its own and renamed into place, so
	# two runs at once never leave a half-written one as the cache.
	src=$(mktemp -d) || return 1
	tmp=$(mktemp "$cache/.docker-compose.XXXXXX") || { rm -rf "$src"; return 1; }
	cp -r "$dir/." "$src/" && chmod -R u+w "$src" &&
		(cd "$src" && go build -trimpath \
			-ldflags "-w -X github.com/docker/compose/v5/internal.Version=$version" \
			-o "$tmp" ./cmd) >&2 &&
		"$tmp" version >/dev/null &&
		mv -f "$tmp" "$out" || rc=1
	rm -rf "$src" "$tmp"
	[ "$rc" -eq 0 ] && echo "$out"
	return "$rc"
}
