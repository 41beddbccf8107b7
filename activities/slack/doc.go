// Package slack tells Slack about a run: the run's thread (started, step
// failures, approvals, finished with RTO and RPO against the objectives)
// and, at each approval gate, a Block Kit message with Approve and Reject
// buttons. It is a Temporal activity (activities.NotifyActivity) the
// workflow calls, not a runbook action; the clicks come back through
// internal/slackapp. The notification types are in package activities,
// which has no I/O dependency, so the workflow code links no Slack client.
//
// Invariants:
//   - An activities.Notification is workflow history: it carries no
//     secret. The bot token is read from its reference when the Notifier is built and never
//     appears in an error.
//   - One message per Notification.Key. Every post carries metadata
//     {event_type: "drctl", event_payload: {key}}; a retried attempt first
//     reads the thread (conversations.replies) or the channel since the run
//     started (conversations.history) for that key and returns the earlier
//     message instead of posting again. This needs a channel ID (a #name
//     cannot be read back) and the channels:history / groups:history scope.
//   - A 429 is waited out (Retry-After, within the activity's deadline) up
//     to Options.MaxInlineWait; a longer one ends the attempt with a
//     retryable error whose next retry delay is Retry-After. Errors that no
//     retry fixes (bad token, unknown channel, not in channel) are
//     non-retryable.
//   - Slack off (no bot token) gives a Notifier that does nothing, and
//     Slack down never blocks a run: the workflow treats a failed
//     notification as lost, and the CLI still decides gates.
//
// Scopes the app needs: chat:write, channels:history, groups:history,
// usergroups:read (the last for internal/slackapp).
package slack
