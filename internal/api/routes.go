package api

import (
	"net/http"

	"github.com/berth-net/berth/internal/errdefs"
)

// routes registers the API subset (docker-api.md §6). Paths arrive here
// without their /vX.Y prefix; anything unregistered, including a known
// path with the wrong method, is moby's 404 "page not found".
func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	h := s.handle

	m.HandleFunc("/", pageNotFound)
	m.HandleFunc("GET /_ping", s.ping) // GET patterns also match HEAD
	m.HandleFunc("GET /version", h(s.getVersion))
	m.HandleFunc("GET /info", h(s.getInfo))

	m.HandleFunc("GET /networks", h(s.listNetworks))
	m.HandleFunc("GET /networks/{$}", h(s.listNetworks))
	m.HandleFunc("GET /networks/{id}", h(s.inspectNetwork))
	m.HandleFunc("POST /networks/create", h(s.createNetwork))
	m.HandleFunc("DELETE /networks/{id}", h(s.removeNetwork))
	m.HandleFunc("POST /networks/{id}/connect", h(s.connectNetwork))
	m.HandleFunc("POST /networks/{id}/disconnect", h(s.disconnectNetwork))
	m.HandleFunc("POST /networks/prune", h(s.pruneNetworks))

	m.HandleFunc("POST /containers/create", h(s.createContainer))
	m.HandleFunc("GET /containers/json", h(s.listContainers))
	m.HandleFunc("GET /containers/{id}/json", h(s.inspectContainer))
	m.HandleFunc("POST /containers/{id}/start", h(s.startContainer))
	m.HandleFunc("POST /containers/{id}/stop", h(s.stopContainer))
	m.HandleFunc("POST /containers/{id}/restart", h(s.restartContainer))
	m.HandleFunc("POST /containers/{id}/kill", h(s.killContainer))
	m.HandleFunc("DELETE /containers/{id}", h(s.removeContainer))
	m.HandleFunc("POST /containers/prune", h(s.pruneContainers))
	m.HandleFunc("POST /containers/{id}/rename", h(s.renameContainer))
	m.HandleFunc("GET /containers/{id}/top", h(s.topContainer))
	m.HandleFunc("GET /containers/{id}/changes", h(s.containerChanges))
	m.HandleFunc("GET /containers/{id}/archive", h(s.containerArchive)) // and HEAD
	m.HandleFunc("PUT /containers/{id}/archive", h(s.extractToContainer))
	m.HandleFunc("GET /containers/{id}/export", h(s.exportContainer))
	m.HandleFunc("GET /system/df", h(s.systemDF))
	m.HandleFunc("POST /containers/{id}/pause", h(s.pauseContainer))
	m.HandleFunc("POST /containers/{id}/unpause", h(s.unpauseContainer))
	m.HandleFunc("POST /containers/{id}/update", h(s.updateContainer))
	m.HandleFunc("GET /containers/{id}/stats", h(s.containerStats))
	m.HandleFunc("POST /containers/{id}/wait", h(s.waitContainer))
	m.HandleFunc("POST /containers/{id}/attach", h(s.attachContainer))
	m.HandleFunc("POST /containers/{id}/resize", h(s.resizeContainer))
	m.HandleFunc("GET /containers/{id}/logs", h(s.containerLogs))
	m.HandleFunc("POST /containers/{id}/exec", h(s.createExec))

	m.HandleFunc("POST /exec/{id}/start", h(s.startExec))
	m.HandleFunc("POST /exec/{id}/resize", h(s.resizeExec))
	m.HandleFunc("GET /exec/{id}/json", h(s.inspectExec))

	m.HandleFunc("POST /images/create", h(s.createImage))
	m.HandleFunc("POST /images/load", h(s.loadImages))
	m.HandleFunc("GET /images/get", h(s.saveImages))
	m.HandleFunc("GET /images/json", h(s.listImages))
	// Image names hold "/" and ":", so the rest of the path is the name
	// (plus "/json" for inspect).
	m.HandleFunc("GET /images/{name...}", h(s.inspectImage))
	m.HandleFunc("DELETE /images/{name...}", h(s.removeImage))
	m.HandleFunc("POST /images/{name...}", h(s.postImage)) // tag, push
	m.HandleFunc("GET /events", h(s.events))
	m.HandleFunc("GET /volumes/{name}", h(s.inspectVolume))
	m.HandleFunc("DELETE /volumes/{name}", h(s.removeVolume))
	m.HandleFunc("POST /volumes/create", h(s.createVolume))
	m.HandleFunc("POST /images/prune", h(s.pruneImages))
	m.HandleFunc("POST /commit", h(s.commit))
	m.HandleFunc("POST /build", h(s.buildImage))
	m.HandleFunc("POST /build/prune", h(pruneBuildCache))
	m.HandleFunc("GET /volumes", h(s.listVolumes))
	m.HandleFunc("POST /volumes/prune", h(s.pruneVolumes))
	m.HandleFunc("GET /plugins/{name}/json", notFoundPlugin)
	m.HandleFunc("GET /berth/explain", h(s.explain))
	for pattern, command := range unimplemented {
		m.HandleFunc(pattern, h(notImplemented(command)))
	}
	return m
}

// unimplemented are Docker Engine routes berth does not serve, with the
// docker command that calls each: they answer 501 naming the command,
// where an unknown path gets moby's bare 404 "page not found".
var unimplemented = map[string]string{}

// notImplemented answers 501 "<command> is not supported by berth".
func notImplemented(command string) handlerFunc {
	return func(http.ResponseWriter, *http.Request) error {
		return errdefs.NotImplemented("%s is not supported by berth", command)
	}
}
