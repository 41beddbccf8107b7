// Package slackapp receives approval clicks from Slack, over an HTTP
// interactivity endpoint (App is its http.Handler) or over Socket Mode (an
// app-level token, no public endpoint), and sends each as a decision
// Update to the run. Both paths share one handle: map the Slack user to a
// drctl identity and approver groups, send the Update, tell the clicker the
// outcome in an ephemeral message, and on success replace the buttons.
//
// Invariants:
//   - The workflow's validator is the authority. slackapp only establishes
//     who clicked (slack.users) and which approver groups they are in
//     (slack.groups); a refusal is shown to the clicker with the
//     validator's reason, and nothing changes.
//   - An HTTP request is verified with the signing secret before its body
//     is parsed; a timestamp more than five minutes from now, and a
//     request whose signature was already seen, are refused (401, 409).
//     "Already seen" compares the decoded MAC, so re-spelling the hex of a
//     captured signature does not make it new. A payload that is not a
//     drctl click is refused with 400.
//   - A click is acknowledged at once (Slack allows three seconds); the
//     Update runs afterwards under Options.DecideTimeout.
//   - The Update ID is derived from the click (channel, message ts, run,
//     step, Slack user, approve or reject): a double click is one decision.
//   - Group TTL (slack.group_ttl, default 1m): a user group's membership is
//     trusted for at most the TTL, counted from when it was requested, and
//     a failed read never falls back to an older entry. So a user removed
//     from a group can approve as that group for at most the TTL after the
//     removal. A background refresh re-reads groups past half the TTL so
//     clicks rarely wait for Slack's rate-limited usergroups.users.list.
//   - Secrets (bot token, app token, signing secret) are read from their
//     references at New and are never logged or sent to the workflow.
package slackapp
