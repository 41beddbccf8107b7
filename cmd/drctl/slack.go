package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/slackapp"
	drworker "github.com/drctl/drctl/worker"
)

func (a *app) slackCmd() *cobra.Command {
	s := &cobra.Command{Use: "slack", Short: "Approve and follow runs in Slack"}
	s.AddCommand(&cobra.Command{
		Use:   "serve",
		Short: "Receive Slack button clicks (HTTP interactivity endpoint or Socket Mode, per slack.mode) and turn them into decisions",
		Long: "serve receives Approve / Reject clicks and sends them to the run as decisions, which the\n" +
			"workflow checks (allowed approver, two-person rule, step still pending). `drctl worker` does\n" +
			"the same when Slack is configured; run this where a worker should not listen.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			return serveSlack(cmd.Context(), c, op, func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), msg) })
		},
	})
	return s
}

// serveSlack receives clicks until ctx ends.
func serveSlack(ctx context.Context, c config.Config, op *operator.Operator, say func(string)) error {
	app, err := slackapp.New(c.Slack, op, slackapp.Options{})
	if err != nil {
		return err
	}
	if c.Slack.Mode == "socket" {
		say("receiving Slack clicks over Socket Mode")
	} else {
		say(fmt.Sprintf("receiving Slack clicks on http://%s%s (put it behind your TLS ingress; requests are verified with the signing secret)", c.Slack.Listen, slackapp.Path))
	}
	return app.Run(ctx)
}

// slackBeside is what `drctl worker` runs beside the worker when Slack
// clicks are configured: the click receiver, on the worker's connection.
// Nil when they are not.
func slackBeside(c config.Config, log io.Writer) func(context.Context, drworker.Serving) {
	if !c.Slack.Enabled() || (!c.Slack.SigningSecret.IsSet() && !c.Slack.AppToken.IsSet()) {
		return nil
	}
	return func(ctx context.Context, s drworker.Serving) {
		op := &operator.Operator{Client: s.Client, TaskQueue: c.Temporal.TaskQueue, Identity: c.Identity}
		// Slack is a convenience; if it cannot serve, the worker keeps
		// working and the CLI path stays open.
		if err := serveSlack(ctx, c, op, func(msg string) { fmt.Fprintln(log, msg) }); err != nil {
			fmt.Fprintln(log, "slack:", err)
		}
	}
}
