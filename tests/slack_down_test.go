package tests

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/drctl/drctl/internal/testwait"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/workflows"
)

// TestSlackUnreachableTheCLIStillDecides: the worker is configured for
// Slack but Slack cannot be reached. The run still waits at its gate, and
// `drctl approve` completes it.
func TestSlackUnreachableTheCLIStillDecides(t *testing.T) {
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	t.Setenv("DRCTL_TEST_SLACK_TOKEN", "xoxb-test-token")
	c.Slack.BotToken = config.SecretRef{Env: "DRCTL_TEST_SLACK_TOKEN"}
	c.Slack.Channel = "C0DR"
	c.Slack.APIURL = "http://127.0.0.1:1/api/" // nothing listens there
	startWorker(t, srv, c)
	health := healthServer(t)
	file := writeRunbook(t, fmt.Sprintf(gatedRunbook, "slack-down"))
	if out, code := drctl(t, c, "run", "--yes", file, "--set", "url="+health.URL, "--detach", "--as", "alice"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	op := operatorAs(srv, c, "test")
	testwait.For(t, "the gate to await approval", func() bool {
		st, err := op.Status(context.Background(), "slack-down")
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})
	if out, code := drctl(t, c, "approve", "slack-down", "go-ahead", "--as", "bob"); code != 0 || !strings.Contains(out, "approved by bob") {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}
	ctx := testwait.Context(t)
	rep, err := op.Wait(ctx, "slack-down")
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != workflows.StateSucceeded {
		t.Fatalf("state %s: %s", rep.State, rep.Error)
	}
}
