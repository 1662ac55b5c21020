// Package api serves the subset of the Docker Engine API that the docker CLI
// (28.x) and berth's own CLI use, over a unix socket. It owns Docker's wire
// types (github.com/docker/docker/api/types v28): they are decoded and
// encoded here and translated to and from berth's core types (Backend), so
// nothing of Docker's leaks below this package. It decides nothing about
// containers or networks; it validates what it can parse at the edge, with
// moby's words where moby has them, and leaves the rest to the Backend.
//
// Protocol rules it keeps (docker-api.md):
//   - Paths with or without /vX.Y; 1.24 to 1.51 are accepted, others get
//     moby's "client version ... is too old/new" 400. Every response carries
//     Api-Version, Ostype and Server (berth/<version> (linux): no client
//     parses it, so berth does not pretend to be Docker).
//   - Errors are {"message": ...} with the status of their errdefs kind
//     (statusOf) and Content-Type exactly application/json, which the
//     client checks before reading the message. Unknown routes and wrong
//     methods are moby's 404 "page not found".
//   - POST /containers/{id}/wait sends its headers at once and the result
//     later; exec start and attach hijack the connection (101 UPGRADED,
//     multiplexed frames without a tty) and close it only after the Backend
//     returned, so an exec's exit code is final when the client sees EOF.
//   - Inspect serves the legacy top-level NetworkSettings fields, filled
//     from the network named "bridge" only, to clients below API 1.52.
//   - Connections start on berth's own HTTP/1.1 loop (conn.go), which
//     answers the short routes (directRoutes) on the connection's
//     goroutine and hands the connection to net/http at the first
//     stream, hijack, long poll or unknown route; net/http answers it
//     with "Connection: close", so the client's next request starts on
//     the loop again. Both run the same handler; the loop only spares
//     each short request net/http's per-request goroutine, whose wake-up
//     of an idle CPU was a fifth of what a connect added to the kernel's
//     work on the bench's VM.
//
// What berth does not do is refused with an error that says so rather
// than ignored: the run options it does not apply (--userns, per-device
// block I/O limits, --gpus, …:
// unappliedHostConfig), sctp ports, pulls (404, "import a root
// filesystem"), imports from URLs, push (501), BuildKit builds, and
// swarm and configuration-only networks.
package api
