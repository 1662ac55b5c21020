package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berth-net/berth/internal/errdefs"
)

// errorResponse is Docker's error body; the CLI prints Message after
// "Error response from daemon: ".
type errorResponse struct {
	Message string `json:"message"`
}

// statusOf is the one place where an error's kind becomes an HTTP status.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return errdefs.KindOf(err).HTTPStatus()
}

// writeError answers with err's status and {"message": ...}. The content
// type must be exactly application/json: the docker client compares the
// header verbatim before it decodes the message.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusNotModified {
		// A 304 carries no body (net/http would drop it anyway).
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(errorResponse{Message: err.Error()})
}

// pageNotFound is moby's answer for unknown routes and wrong methods.
func pageNotFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, errdefs.NotFound("page not found"))
}
