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
