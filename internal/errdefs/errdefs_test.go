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
