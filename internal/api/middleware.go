package api

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/docker/docker/api/types/versions"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/version"
)

// serverHeader names berth honestly: no client parses it (the docker CLI
// reads only Api-Version, Ostype and the ping headers), so there is no
// reason to pretend to be Docker here.
var serverHeader = fmt.Sprintf("berth/%s (linux)", version.Version)

// versionPrefix is moby's "/v{version:[0-9.]+}" path prefix.
var versionPrefix = regexp.MustCompile(`^/v([0-9.]+)(/.*)$`)

type apiVersionKey struct{}

// apiVersion is the version the client asked for, or the server's own for
// unversioned paths.
func apiVersion(ctx context.Context) string {
	if v, ok := ctx.Value(apiVersionKey{}).(string); ok {
		return v
	}
	return version.APIVersion
}

// versionBefore reports whether the request's API version is below v.
func versionBefore(r *http.Request, v string) bool {
	return lessThan(apiVersion(r.Context()), v)
}

// lessThan compares "major.minor" API versions numerically.
func lessThan(a, b string) bool { return versions.LessThan(a, b) }

// middleware sets the headers every Docker response carries, strips and
// checks the /vX.Y prefix, and turns panics into 500s.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w}
		defer s.recoverPanic(rw, r)
		h := rw.Header()
		h.Set("Server", serverHeader)
		h.Set("Api-Version", version.APIVersion)
		h.Set("Ostype", "linux")

		v := version.APIVersion
		// Match on the escaped path so that an escaped "/" inside a name
		// stays part of the name and is never taken for a separator.
		if m := versionPrefix.FindStringSubmatch(r.URL.EscapedPath()); m != nil {
			var err error
			v = m[1]
			if r, err = withPath(r, m[2]); err != nil {
				pageNotFound(rw, r)
				return
			}
		}
		if hasDotSegment(r.URL.EscapedPath()) {
			// net/http would answer with a redirect to the cleaned path;
			// no client of this API sends one, so it is simply not a route.
			pageNotFound(rw, r)
			return
		}
		if p, ok := slashNamePath(r.Method, r.URL.EscapedPath()); ok {
			r, _ = withPath(r, p) // p only adds escapes to a path that unescaped
		}
		if err := checkVersion(v); err != nil {
			writeError(rw, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, v))
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "version", v)
		next.ServeHTTP(rw, r)
	})
}

// withPath is r with its URL path replaced by escaped (and its decoded form).
func withPath(r *http.Request, escaped string) (*http.Request, error) {
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return r, err
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = path, ""
	if escaped != path {
		u.RawPath = escaped
	}
	r2.URL = &u
	return r2, nil
}

// containerActions are the last segments of moby's
// "/containers/{name:.*}/ACTION" routes.
var containerActions = map[string]bool{
	"json": true, "start": true, "stop": true, "restart": true, "kill": true, "rename": true,
	"wait": true, "attach": true, "resize": true, "logs": true, "exec": true, "pause": true,
	"unpause": true, "top": true, "stats": true, "changes": true, "export": true,
	"archive": true, "update": true,
}

// slashNamePath escapes the "/" in a reference that has one so that the
// route's {id} takes the whole name, as moby's {name:.*} and {id:.*}
// routes do: a legacy link's container name ("web/db") and a network's
// name (Docker takes any, "ci_build-1/abc"), neither of which the docker
// CLI escapes. "/containers/web/db/stop" becomes
// "/containers/web%2Fdb/stop", DELETE "/containers/web/db"
// "/containers/web%2Fdb", POST "/networks/ci/abc/connect"
// "/networks/ci%2Fabc/connect" and GET "/networks/ci/abc"
// "/networks/ci%2Fabc". ok is false for a path that needs nothing.
func slashNamePath(method, escaped string) (string, bool) {
	if rest, ok := strings.CutPrefix(escaped, "/containers/"); ok {
		return joinName("/containers/", rest, containerActions, method == http.MethodDelete)
	}
	if rest, ok := strings.CutPrefix(escaped, "/networks/"); ok {
		switch method {
		case http.MethodPost:
			return joinName("/networks/", rest, networkActions, false)
		case http.MethodGet, http.MethodHead, http.MethodDelete:
			return joinName("/networks/", rest, nil, true)
		}
	}
	return "", false
}

// networkActions are the last segments of moby's
// "/networks/{id:.*}/ACTION" routes.
var networkActions = map[string]bool{"connect": true, "disconnect": true}

// joinName is slashNamePath for one family of routes: rest is the path
// after prefix, actions the last segments that name an action, and bare
// whether the path may be the name alone.
func joinName(prefix, rest string, actions map[string]bool, bare bool) (string, bool) {
	// Most requests name an object without a "/": no split for them.
	if n := strings.Count(rest, "/"); n == 0 || n == 1 && !bare {
		return "", false
	}
	segs := strings.Split(rest, "/")
	switch last := len(segs) - 1; {
	case last >= 2 && actions[segs[last]]:
		return prefix + strings.Join(segs[:last], "%2F") + "/" + segs[last], true
	case bare:
		return prefix + strings.Join(segs, "%2F"), true
	}
	return "", false
}

// hasDotSegment reports "//", "/./" or "/../" in an escaped path; an
// escaped "..%2F" is part of a name, looked up as one and not found.
func hasDotSegment(escaped string) bool {
	for _, seg := range strings.Split(escaped, "/")[1:] {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return strings.Contains(escaped, "//")
}

// checkVersion rejects versions outside [MinAPIVersion, APIVersion] with
// moby's words, which users search for.
func checkVersion(v string) error {
	if versions.LessThan(v, version.MinAPIVersion) {
		return errdefs.Invalid("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, version.MinAPIVersion)
	}
	if versions.GreaterThan(v, version.APIVersion) {
		return errdefs.Invalid("client version %s is too new. Maximum supported API version is %s", v, version.APIVersion)
	}
	return nil
}

func (s *Server) recoverPanic(w *responseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
	if !w.started && !w.hijacked {
		writeError(w, fmt.Errorf("internal error in %s %s: %v", r.Method, r.URL.Path, p))
	}
}

// responseWriter remembers whether the response was started or hijacked so
// that a late error is logged instead of written into a body or stream.
type responseWriter struct {
	http.ResponseWriter
	started  bool
	hijacked bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.started = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Flush() {
	w.started = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
