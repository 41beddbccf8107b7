package activities_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/runbooks"
)

func TestCredential(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(file, []byte("host=db password=s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DRCTL_TEST_CRED", " from-env ")
	target := func(c *runbooks.CredentialRef) runbooks.Target { return runbooks.Target{Name: "db", Credentials: c} }
	if v, err := activities.Credential(target(&runbooks.CredentialRef{Env: "DRCTL_TEST_CRED"}), "x"); err != nil || v != "from-env" {
		t.Fatalf("env: %q %v", v, err)
	}
	if v, err := activities.Credential(target(&runbooks.CredentialRef{File: file}), "x"); err != nil || v != "host=db password=s3cret" {
		t.Fatalf("file: %q %v", v, err)
	}
	// A secret this worker lacks may be on another worker (NoCredential);
	// a target that names no credentials is the runbook's fault.
	for _, tc := range []struct {
		ref          *runbooks.CredentialRef
		want         string
		noCredential bool
	}{
		{nil, "target db has no credentials", false},
		{&runbooks.CredentialRef{Env: "DRCTL_TEST_ABSENT"}, "environment variable DRCTL_TEST_ABSENT is not set on worker", true},
		{&runbooks.CredentialRef{File: file + ".missing"}, "credentials file " + file + ".missing: no such file or directory", true},
	} {
		_, err := activities.Credential(target(tc.ref), "its admin DSN")
		if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want a permanent error containing %q", tc.ref, err, tc.want)
		}
		if got := activities.IsNoCredential(err); got != tc.noCredential {
			t.Errorf("%+v: IsNoCredential = %t, want %t", tc.ref, got, tc.noCredential)
		}
	}
}
