package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/drctl/drctl/activities"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"

	"github.com/drctl/drctl/runbooks"
)

// Slack's limits on block text; longer text is cut with an ellipsis.
const (
	maxHeader  = 150
	maxSection = 3000
	maxChanges = 15
)

func plain(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, s, true, false)
}

func mrkdwn(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.MarkdownType, s, false, false)
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// elapsedText says how far into its RTO objective the run is.
func elapsedText(n activities.Notification) string {
	el := n.Elapsed.D().Round(time.Second)
	if n.Objectives.RTO <= 0 {
		return fmt.Sprintf("elapsed %s (no RTO objective)", el)
	}
	obj := n.Objectives.RTO.D()
	pct := int(100 * el / obj)
	if el > obj {
		return fmt.Sprintf("elapsed %s, past the %s RTO objective (%d%%)", el, obj, pct)
	}
	return fmt.Sprintf("elapsed %s of the %s RTO objective (%d%%)", el, obj, pct)
}

func runContext(n activities.Notification) string {
	parts := []string{fmt.Sprintf("Runbook *%s*", n.Runbook), fmt.Sprintf("run `%s`", n.WorkflowID)}
	if n.Mode != "" {
		parts = append(parts, n.Mode)
	}
	if n.StartedBy != "" {
		parts = append(parts, "started by "+n.StartedBy)
	}
	parts = append(parts, elapsedText(n))
	return strings.Join(parts, " · ")
}

// ApprovalBlocks renders the approval message: what the gate guards, who
// may decide, and Approve / Reject buttons that each ask for confirmation.
func ApprovalBlocks(n activities.Notification) []slackgo.Block {
	value := ButtonValue{Run: n.WorkflowID, RunID: n.RunID, Step: n.Step}.Encode()
	approve := slackgo.NewButtonBlockElement(ActionApprove, value, plain("Approve")).
		WithStyle(slackgo.StylePrimary).
		WithConfirm(slackgo.NewConfirmationBlockObject(
			plain(cut("Approve "+n.Step+"?", 100)),
			mrkdwn(cut(confirmText(n), 300)),
			plain("Approve"), plain("Cancel")).WithStyle(slackgo.StylePrimary))
	reject := slackgo.NewButtonBlockElement(ActionReject, value, plain("Reject")).
		WithStyle(slackgo.StyleDanger).
		WithConfirm(slackgo.NewConfirmationBlockObject(
			plain(cut("Reject "+n.Step+"?", 100)),
			mrkdwn(cut(fmt.Sprintf("Rejecting stops run `%s` of *%s*; steps already done are compensated.", n.WorkflowID, n.Runbook), 300)),
			plain("Reject"), plain("Cancel")).WithStyle(slackgo.StyleDanger))
	return append(approvalBody(n), slackgo.NewActionBlock(ApprovalBlockID, approve, reject))
}

func confirmText(n activities.Notification) string {
	if len(n.Changes) == 0 {
		return fmt.Sprintf("Approving lets run `%s` continue past *%s*.", n.WorkflowID, n.Step)
	}
	return fmt.Sprintf("Approving lets run `%s` continue past *%s* and make %d change(s).", n.WorkflowID, n.Step, len(n.Changes))
}

// approvalBody is the approval message without its buttons.
func approvalBody(n activities.Notification) []slackgo.Block {
	blocks := []slackgo.Block{
		slackgo.NewHeaderBlock(plain(cut(fmt.Sprintf("Approval needed: %s — %s", n.Step, n.Runbook), maxHeader))),
		slackgo.NewContextBlock("drctl_run", mrkdwn(runContext(n))),
	}
	var b strings.Builder
	if n.StepMessage != "" {
		b.WriteString(n.StepMessage)
		b.WriteString("\n\n")
	}
	if len(n.Changes) == 0 {
		b.WriteString("*What it will change:* nothing observed")
	} else {
		b.WriteString("*What it will change:*")
		for i, c := range n.Changes {
			if i == maxChanges {
				fmt.Fprintf(&b, "\n• … and %d more (`drctl plan` shows all)", len(n.Changes)-maxChanges)
				break
			}
			b.WriteString("\n• " + c)
		}
	}
	blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(cut(b.String(), maxSection)), nil, nil))
	who := "anyone"
	if len(n.Approvers) > 0 {
		who = strings.Join(n.Approvers, ", ")
	}
	rule := ""
	if n.StartedBy != "" {
		rule = fmt.Sprintf(" (two-person rule: %s started the run)", n.StartedBy)
	}
	blocks = append(blocks, slackgo.NewContextBlock("drctl_approvers", mrkdwn(cut("*May approve:* "+who+rule, maxSection))))
	return blocks
}

// Outcome is how an approval gate was decided.
type Outcome struct {
	Decision string // approved, rejected, timed_out
	By       string
	Via      string // cli, slack
	Reason   string
	At       time.Time
}

// Text is the outcome as one line of mrkdwn.
func (o Outcome) Text() string {
	at := ""
	if !o.At.IsZero() {
		at = " at " + o.At.UTC().Format("15:04:05Z")
	}
	via := ""
	if o.Via != "" {
		via = " via " + o.Via
	}
	switch o.Decision {
	case activities.DecisionApproved:
		s := fmt.Sprintf(":white_check_mark: *Approved* by %s%s%s", o.By, via, at)
		if o.Reason != "" {
			s += ": " + o.Reason
		}
		return s
	case activities.DecisionRejected:
		reason := o.Reason
		if reason == "" {
			reason = "no reason given"
		}
		return fmt.Sprintf(":x: *Rejected* by %s%s%s: %s", o.By, via, at, reason)
	case activities.DecisionCancelled:
		s := ":no_entry_sign: *No longer needed*: the run stopped before a decision" + at
		if o.Reason != "" {
			s += ": " + o.Reason
		}
		return s
	case activities.DecisionTimedOut:
		s := ":hourglass: *Timed out*" + at
		if o.Reason != "" {
			s += ": " + o.Reason
		}
		return s
	}
	return fmt.Sprintf("*%s* by %s%s%s", o.Decision, o.By, via, at)
}

// DecidedBlocks is an approval message after its decision: the buttons are
// replaced by the outcome, so nobody clicks a gate that is closed.
func DecidedBlocks(blocks []slackgo.Block, o Outcome) []slackgo.Block {
	out := make([]slackgo.Block, 0, len(blocks)+1)
	for _, b := range blocks {
		if a, ok := b.(*slackgo.ActionBlock); ok && a.BlockID == ApprovalBlockID {
			continue
		}
		if s, ok := b.(*slackgo.SectionBlock); ok && s.BlockID == outcomeBlockID {
			continue
		}
		out = append(out, b)
	}
	outcome := slackgo.NewSectionBlock(mrkdwn(cut(o.Text(), maxSection)), nil, nil, slackgo.SectionBlockOptionBlockID(outcomeBlockID))
	return append(out, outcome)
}

const outcomeBlockID = "drctl_outcome"

func approvalText(n activities.Notification) string {
	return fmt.Sprintf("Approval needed for step %s of %s (run %s)", n.Step, n.Runbook, n.WorkflowID)
}

func decidedOutcome(n activities.Notification) Outcome {
	return Outcome{Decision: n.Decision, By: n.DecidedBy, Via: n.Via, Reason: n.DecisionReason, At: n.DecidedAt}
}

// progressText is the thread line for a notification.
func progressText(n activities.Notification) string {
	switch n.Kind {
	case activities.KindRunStarted:
		s := fmt.Sprintf(":rotating_light: *%s* run of *%s* started by %s (run `%s`", orDefault(n.Mode, "failover"), n.Runbook, orDefault(n.StartedBy, "someone"), n.WorkflowID)
		if n.Objectives.RTO > 0 {
			s += ", RTO objective " + n.Objectives.RTO.String()
		}
		if n.Objectives.HasRPO() {
			s += ", RPO objective " + n.Objectives.RPO.String()
		}
		s += ")"
		if n.Reason != "" {
			s += ": " + n.Reason
		}
		return s + "\nProgress follows in this thread."
	case activities.KindApprovalDecided:
		return fmt.Sprintf("Step *%s*: %s", n.Step, decidedOutcome(n).Text())
	case activities.KindStepFailed:
		next := "no more attempts"
		if n.Retries {
			next = "retrying"
		}
		return fmt.Sprintf(":warning: Step *%s* failed (attempt %d, %s): %s", n.Step, n.Attempt, next, slackutilsx.EscapeMessage(n.Error))
	case activities.KindRunFinished:
		icon := ":x:"
		if n.State == "succeeded" {
			icon = ":white_check_mark:"
		}
		s := fmt.Sprintf("%s Run `%s` of *%s* %s after %s", icon, n.WorkflowID, n.Runbook, orDefault(n.State, "ended"), n.Elapsed.D().Round(time.Second))
		if n.Error != "" {
			s += ": " + n.Error
		}
		return s + "\n" + objectiveLine("RTO", n.RTO, n.Objectives.RTO, n.Objectives.HasRTO()) + " · " + objectiveLine("RPO", n.RPO, n.Objectives.RPO, n.Objectives.HasRPO())
	case activities.KindReadinessChanged:
		// Reasons carry provider errors and bits of HTTP bodies: escaped,
		// so none can mention a channel or make a link.
		rb := slackutilsx.EscapeMessage(n.Runbook)
		if n.State == "ready" {
			return fmt.Sprintf(":white_check_mark: *%s* is ready again (since %s): every readiness check passes.", rb, n.StartedAt.UTC().Format(time.RFC3339))
		}
		s := fmt.Sprintf(":warning: *%s* is NOT ready (since %s): a failover now would likely fail.", rb, n.StartedAt.UTC().Format(time.RFC3339))
		for _, f := range n.Failing {
			s += "\n• " + slackutilsx.EscapeMessage(f)
		}
		return s + "\nSee `drctl readiness " + rb + "`."
	case activities.KindSiteLost, activities.KindSiteBack:
		// The reason and the evidence carry probe errors: escaped.
		icon := ":rotating_light:"
		if n.Kind == activities.KindSiteBack {
			icon = ":large_green_circle:"
		}
		s := fmt.Sprintf("%s %s (site watch `%s`, %s)", icon, slackutilsx.EscapeMessage(n.Reason), n.WorkflowID, n.StartedAt.UTC().Format(time.RFC3339))
		for _, f := range n.Failing {
			s += "\n• " + slackutilsx.EscapeMessage(f)
		}
		return s + "\nSee `drctl sites`."
	}
	return fmt.Sprintf("%s: %s", n.Kind, n.WorkflowID)
}

func objectiveLine(name string, got *runbooks.Duration, objective runbooks.Duration, stated bool) string {
	switch {
	case got == nil && stated:
		return fmt.Sprintf("%s not measured (objective %s)", name, objective)
	case got == nil:
		return name + " not measured"
	case !stated:
		return fmt.Sprintf("%s %s (no objective)", name, got.D().Round(time.Millisecond))
	case *got <= objective:
		return fmt.Sprintf("%s %s, within the %s objective", name, got.D().Round(time.Millisecond), objective)
	}
	return fmt.Sprintf("%s %s, *missed* the %s objective", name, got.D().Round(time.Millisecond), objective)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
