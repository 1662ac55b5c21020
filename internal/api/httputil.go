package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/filters"

	"github.com/berth-net/berth/internal/errdefs"
)

// maxJSONBody bounds every JSON request body; the largest real one (a
// container create) is a few KiB. Image imports stream and are not bounded.
const maxJSONBody = 1 << 20

// handlerFunc is a route handler; a returned error is written as Docker's
// JSON error unless the response was already started.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		if rw, ok := w.(*responseWriter); ok && (rw.started || rw.hijacked) {
			s.log.Warn("api request failed after the response started", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		// A refusal (4xx, and 501 for what berth does not do) is the
		// client's business, but an operator following a client that fails
		// (berth daemon -D) needs to see which request and why.
		if status := statusOf(err); status >= http.StatusInternalServerError && status != http.StatusNotImplemented {
			s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		} else if isUpload(r) {
			// The client may be writing its body still and see only a
			// broken pipe (docker cp): the daemon's log says why.
			s.log.Info("api upload refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		} else {
			s.log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		}
		writeError(w, err)
	}
}

// isUpload reports whether r sends an archive (docker cp into a
// container, load, import).
func isUpload(r *http.Request) bool {
	return r.Method == http.MethodPut || strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-tar")
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// readJSON decodes a bounded JSON body into v. An absent body leaves v
// as it is, as moby does; the messages are moby's.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	empty := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	if err := checkJSONContentType(r.Header.Get("Content-Type"), empty); err != nil {
		return err
	}
	if empty {
		return nil
	}
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	defer body.Close()
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errdefs.Invalid("unexpected content after JSON")
	}
	return nil
}

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errdefs.Invalid("request body is larger than %d bytes: %w", maxJSONBody, err)
	case errors.Is(err, io.EOF):
		return errdefs.Invalid("invalid JSON: got EOF while reading request body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errdefs.Invalid("invalid JSON: unexpected EOF")
	default:
		return errdefs.Invalid("invalid JSON: %w", err)
	}
}

func checkJSONContentType(ct string, empty bool) error {
	if ct == "" {
		// The docker CLI always sets it for bodies; curl users often do not.
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return errdefs.Invalid("malformed Content-Type header (%s): %w", ct, err)
	}
	if mt != "application/json" && !empty {
		return errdefs.Invalid("unsupported Content-Type header (%s): must be 'application/json'", ct)
	}
	return nil
}

// boolValue is moby's reading of boolean query parameters: absent, "",
// "0", "no", "false" and "none" are false, everything else true.
func boolValue(r *http.Request, key string) bool {
	s := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// uintValue parses an optional unsigned query parameter.
func uintValue(r *http.Request, key string) (uint, bool, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false, errdefs.Invalid("invalid value for %s: %q", key, s)
	}
	return uint(n), true, nil
}

// intValue parses an optional signed query parameter.
func intValue(r *http.Request, key string) (int, bool, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false, errdefs.Invalid("invalid value for %s: %q", key, s)
	}
	return n, true, nil
}

// parseFilters reads filters= in either of the two JSON forms clients send
// ({"name":{"x":true}} and the legacy {"name":["x"]}) and rejects keys
// outside accepted (nil: takes every key).
func parseFilters(r *http.Request, accepted map[string]bool) (filters.Args, error) {
	args, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return args, errdefs.WithKind(errdefs.KindInvalid, err)
	}
	if accepted == nil { // every key taken
		return args, nil
	}
	if err := args.Validate(accepted); err != nil {
		return args, errdefs.WithKind(errdefs.KindInvalid, err)
	}
	return args, nil
}
