// Package errdefs gives berth's errors a kind (not found, conflict, invalid, …)
// so that one place — internal/api — can map them to HTTP status codes.
// It owns no other logic and imports nothing of berth's.
package errdefs

import (
	"errors"
	"fmt"
)

// Kind is the class of an error as a client sees it.
type Kind int

// The kinds, each with the HTTP status the API answers with.
const (
	KindUnknown        Kind = iota // 500
	KindNotFound                   // 404
	KindConflict                   // 409
	KindInvalid                    // 400
	KindForbidden                  // 403
	KindNotModified                // 304
	KindUnavailable                // 503
	KindNotImplemented             // 501
)

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// KindOf returns the kind of the outermost error in err's chain that has one.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return KindUnknown
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// All reports whether err is of kind k all through: each error a join
// holds (errors.Join) must be, and along a chain of wraps the outermost
// kind decides. Is looks at the first kind found anywhere, which for a
// join is its first error's.
func All(err error, k Kind) bool {
	for err != nil {
		switch e := err.(type) {
		case *kindError:
			return e.kind == k
		case interface{ Unwrap() []error }:
			list := e.Unwrap()
			for _, one := range list {
				if !All(one, k) {
					return false
				}
			}
			return len(list) > 0
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		default:
			return false
		}
	}
	return false
}

func wrap(k Kind, format string, args ...any) error {
	return &kindError{kind: k, err: fmt.Errorf(format, args...)}
}

// NotFound returns an error of KindNotFound; format and args are as for fmt.Errorf.
func NotFound(format string, args ...any) error { return wrap(KindNotFound, format, args...) }

// Conflict returns an error of KindConflict.
func Conflict(format string, args ...any) error { return wrap(KindConflict, format, args...) }

// Invalid returns an error of KindInvalid (a bad request).
func Invalid(format string, args ...any) error { return wrap(KindInvalid, format, args...) }

// Forbidden returns an error of KindForbidden.
func Forbidden(format string, args ...any) error { return wrap(KindForbidden, format, args...) }

// NotModified returns an error of KindNotModified.
func NotModified(format string, args ...any) error { return wrap(KindNotModified, format, args...) }

// Unavailable returns an error of KindUnavailable.
func Unavailable(format string, args ...any) error { return wrap(KindUnavailable, format, args...) }

// NotImplemented returns an error of KindNotImplemented.
func NotImplemented(format string, args ...any) error {
	return wrap(KindNotImplemented, format, args...)
}

// WithKind gives err the kind k, keeping its message and chain.
func WithKind(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

// httpStatus is the one table between kinds and HTTP statuses: the API
// server answers with it and the client maps statuses back through it.
var httpStatus = map[Kind]int{
	KindNotFound:       404,
	KindConflict:       409,
	KindInvalid:        400,
	KindForbidden:      403,
	KindNotModified:    304,
	KindUnavailable:    503,
	KindNotImplemented: 501,
}

// HTTPStatus is the status the API answers an error of kind k with (500 for KindUnknown).
func (k Kind) HTTPStatus() int {
	if s, ok := httpStatus[k]; ok {
		return s
	}
	return 500
}

// KindOfHTTPStatus is the inverse of HTTPStatus; unknown statuses give KindUnknown.
func KindOfHTTPStatus(status int) Kind {
	for k, s := range httpStatus {
		if s == status {
			return k
		}
	}
	return KindUnknown
}
