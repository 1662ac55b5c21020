package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindSurvivesWrapping(t *testing.T) {
	base := NotFound("network %q not found", "web")
	wrapped := fmt.Errorf("connect: %w", base)
	if got := KindOf(wrapped); got != KindNotFound {
		t.Fatalf("KindOf(wrapped) = %v, want KindNotFound", got)
	}
	if !Is(wrapped, KindNotFound) || Is(wrapped, KindConflict) {
		t.Fatalf("Is gives wrong answers for %v", wrapped)
	}
	if KindOf(errors.New("plain")) != KindUnknown {
		t.Fatal("a plain error must be KindUnknown")
	}
	if wrapped.Error() != `connect: network "web" not found` {
		t.Fatalf("message changed: %q", wrapped.Error())
	}
	if WithKind(KindConflict, nil) != nil {
		t.Fatal("WithKind(nil) must be nil")
	}
}

func TestHTTPStatusRoundTrip(t *testing.T) {
	for _, k := range []Kind{KindNotFound, KindConflict, KindInvalid, KindForbidden, KindNotModified, KindUnavailable, KindNotImplemented} {
		if got := KindOfHTTPStatus(k.HTTPStatus()); got != k {
			t.Errorf("kind %v → %d → %v", k, k.HTTPStatus(), got)
		}
	}
	if KindUnknown.HTTPStatus() != 500 || KindOfHTTPStatus(500) != KindUnknown || KindOfHTTPStatus(418) != KindUnknown {
		t.Fatal("unknown kinds and statuses must map to 500 / KindUnknown")
	}
}

func TestAll(t *testing.T) {
	conflict, other := Conflict("name taken"), errors.New("no such device")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"one", conflict, true},
		{"wrapped", fmt.Errorf("mend: %w", conflict), true},
		{"plain", other, false},
		{"joined, all", errors.Join(conflict, fmt.Errorf("x: %w", conflict)), true},
		{"joined, one not", errors.Join(conflict, other), false},
		{"joined, first not", errors.Join(other, conflict), false},
		{"a kind over a join decides", WithKind(KindConflict, errors.Join(other)), true},
	} {
		if got := All(tc.err, KindConflict); got != tc.want {
			t.Errorf("%s: All = %v, want %v", tc.name, got, tc.want)
		}
	}
}
