package worker_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/worker"
)

// TestShippedRunbooksValidate loads every runbook in runbooks/ against the
// actions this build registers: a shipped runbook that does not validate is
// a broken promise.
func TestShippedRunbooksValidate(t *testing.T) {
	reg, err := worker.Actions(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../runbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped runbooks found (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rb, err := runbooks.Load(f, reg)
			if err != nil {
				t.Fatal(err)
			}
			if rb.Description == "" {
				t.Errorf("%s has no description", f)
			}
			if b, _ := os.ReadFile(f); !bytes.HasPrefix(b, []byte("# yaml-language-server: $schema=runbook.schema.json\n")) {
				t.Errorf("%s does not start with the yaml-language-server $schema line", f)
			}
		})
	}
}

func TestRegistryHasEveryProvider(t *testing.T) {
	reg, err := worker.Actions(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"http.check", "http.call", "note", "wait", "postgres.status", "postgres.fence", "postgres.unfence", "postgres.wait_caught_up", "postgres.promote", "postgres.rejoin", "traffic.shift", "traffic.drain", "traffic.status", "dns.set", "dns.check", "dns.set_ttl"} {
		if _, ok := reg.Lookup(name); !ok {
			t.Errorf("action %s is not registered", name)
		}
	}
}
