package slackapp_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drctl/drctl/activities"

	drslack "github.com/drctl/drctl/activities/slack"
	"github.com/drctl/drctl/activities/slack/slacklab"
	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/slackapp"
)

// loadConfig writes yaml to a config file and loads it the way the CLI
// does, with no DRCTL_* variable of the caller's environment in the way.
func loadConfig(t *testing.T, yaml string) config.Config {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DRCTL_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	path := filepath.Join(t.TempDir(), "drctl.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// Slack IDs written in a config file reach the App as written: a signed
// click by U_BOB is decided as bob, and UDAVE counts as a member of the
// SDBA user group mapped to dba.
func TestFileMappingDecidesClicks(t *testing.T) {
	ws := slacklab.Start(t)
	ws.SetGroup("SDBA", "UDAVE")
	c := loadConfig(t, fmt.Sprintf(`
slack:
  channel: %s
  bot_token: {env: DRCTL_TEST_SLACK_BOT}
  signing_secret: {env: DRCTL_TEST_SLACK_SIGNING}
  api_url: %s
  users:
    U_BOB: bob
    UDAVE: dave
  groups:
    SDBA: dba
`, slackChannel, ws.APIURL()))
	t.Setenv("DRCTL_TEST_SLACK_BOT", slacklab.Token)
	t.Setenv("DRCTL_TEST_SLACK_SIGNING", signingSecret)

	msg := ws.Post(slackChannel, "approval", drslack.ApprovalBlocks(activities.Notification{WorkflowID: "drctl-payments", Runbook: "payments", Step: "go-ahead"})...)
	dec := &fakeDecider{}
	app, err := slackapp.New(c.Slack, dec, slackapp.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	endpoint := httptest.NewServer(app)
	t.Cleanup(endpoint.Close)
	value := drslack.ButtonValue{Run: "drctl-payments", Step: "go-ahead"}.Encode()

	for i, user := range []string{"U_BOB", "UDAVE"} {
		body := clickBody(t, ws, msg, user, drslack.ActionApprove, value, user)
		if got := sign(signingSecret, time.Now().Add(-time.Duration(i)*time.Second), body).post(t, endpoint.URL); got != http.StatusOK {
			t.Fatalf("click by %s answered %d, want 200", user, got)
		}
		app.Wait()
	}

	ds, _ := dec.decisions()
	if len(ds) != 2 || ds[0].By != "bob" || len(ds[0].Groups) != 0 || ds[1].By != "dave" || len(ds[1].Groups) != 1 || ds[1].Groups[0] != "dba" {
		t.Fatalf("decisions %+v, want bob with no groups, then dave in dba", ds)
	}
	if got := replies(ws, "U_BOB"); len(got) != 1 || !strings.Contains(got[0], "Recorded: bob approved step go-ahead") {
		t.Fatalf("replies to U_BOB %q", got)
	}
}
