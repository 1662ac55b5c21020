package cni

import (
	"errors"
	"fmt"
	"testing"
)

// TestErrorsCarryTheConfigVersion: every error answer carries the
// configuration's cniVersion, a CNI error's as well as any other's (a
// missing namespace, a kernel call's failure), which went out stamped
// with the latest version this plugin speaks.
func TestErrorsCarryTheConfigVersion(t *testing.T) {
	plain := withVersion(fmt.Errorf("attach: %w", errors.New("no such file or directory")), "1.0.0")
	var e *Error
	if !errors.As(plain, &e) || e.CNIVersion != "1.0.0" || e.Code != CodeInternal || e.Msg != "attach: no such file or directory" {
		t.Errorf("a plain error became %#v", plain)
	}
	coded := withVersion(errorf(CodeInvalidConfig, "bad"), "0.4.0")
	if !errors.As(coded, &e) || e.CNIVersion != "0.4.0" || e.Code != CodeInvalidConfig {
		t.Errorf("a CNI error became %#v", coded)
	}
	if withVersion(nil, "1.0.0") != nil {
		t.Error("no error became one")
	}
}
