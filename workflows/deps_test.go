package workflows_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWorkflowCodeLinksNoIOClient: workflow code must be deterministic and
// replayable anywhere, so the workflows package links no client of the
// outside world. It fails if ./workflows ever depends, directly or not, on
// a Slack, PostgreSQL, DNS or configuration library again.
func TestWorkflowCodeLinksNoIOClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/slack-go/slack", "github.com/jackc/pgx", "github.com/miekg/dns",
		"github.com/libdns/libdns", "github.com/spf13/viper", "github.com/spf13/cobra",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "go.temporal.io/sdk/workflow") {
		t.Fatalf("go list -deps gave an unexpected answer:\n%s", out)
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("workflows depends on %s", d)
			}
		}
	}
}
