package slack

import (
	"strings"
	"testing"

	"github.com/drctl/drctl/activities"
)

// TestReadinessTextIsEscaped: failing reasons carry provider errors and
// bits of HTTP bodies; none may mention a channel or make a link.
func TestReadinessTextIsEscaped(t *testing.T) {
	n := activities.Notification{Kind: activities.KindReadinessChanged, Runbook: "site-failover", State: "not_ready",
		Failing: []string{"observe:verify: GET http://x: 503, body <!channel> <https://evil.example|approve here> & more"}}
	text := progressText(n)
	for _, bad := range []string{"<!channel>", "<https://evil"} {
		if strings.Contains(text, bad) {
			t.Errorf("text holds %q:\n%s", bad, text)
		}
	}
	if !strings.Contains(text, "&lt;!channel&gt;") || !strings.Contains(text, "*site-failover* is NOT ready") {
		t.Errorf("text:\n%s", text)
	}
}

// TestSiteTextIsEscaped: a site watch's evidence carries probe errors
// (bits of HTTP answers); none may mention a channel or make a link.
func TestSiteTextIsEscaped(t *testing.T) {
	for _, kind := range []string{activities.KindSiteLost, activities.KindSiteBack} {
		n := activities.Notification{Kind: kind, WorkflowID: "drctl-site-east", State: "lost",
			Reason:  "site east lost: proposed site-failover <!here>",
			Failing: []string{"west: http://10.1.0.2/health: 503 <https://evil.example|approve here>"}}
		text := progressText(n)
		for _, bad := range []string{"<!here>", "<https://evil"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s text holds %q:\n%s", kind, bad, text)
			}
		}
		if !strings.Contains(text, "site east lost: proposed site-failover &lt;!here&gt;") || !strings.Contains(text, "`drctl-site-east`") {
			t.Errorf("%s text:\n%s", kind, text)
		}
	}
}
