package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// addCompletions gives shell completion (drctl completion bash|zsh|fish)
// what only the server knows: the locks of runs, the gates waiting for a
// decision, and the fixed values of --mode and -o. A completion that
// cannot reach the server completes nothing rather than hang.
func (a *app) addCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "md", "html"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{colourAuto, colourAlways, colourNever}, cobra.ShellCompDirectiveNoFileComp))
	for _, c := range root.Commands() {
		switch c.Name() {
		case "approve", "reject":
			c.ValidArgsFunction = a.completeGates
		case "status", "watch", "report":
			c.ValidArgsFunction = a.completeRuns(false)
		case "pause", "resume", "abort":
			c.ValidArgsFunction = a.completeRuns(true)
		case "run":
			_ = c.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{workflows.ModeFailover, workflows.ModeDrill}, cobra.ShellCompDirectiveNoFileComp))
		case "history":
			for _, sub := range c.Commands() {
				if sub.Name() == "export" {
					sub.ValidArgsFunction = a.completeRuns(false)
				}
			}
		}
	}
}

// completionOperator dials with a short bound: completion must answer at
// once or not at all.
func (a *app) completionOperator(cmd *cobra.Command) (context.Context, context.CancelFunc, *operator.Operator, bool) {
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	op, err := a.operator(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, false
	}
	return ctx, cancel, op, true
}

// completeRuns completes a RUN argument with the locks of recent runs
// (running ones only when running is set), each with its runbook and
// state as the description.
func (a *app) completeRuns(running bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel, op, ok := a.completionOperator(cmd)
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cancel()
		f := operator.ListFilter{Limit: 50}
		if running {
			f.State = "running"
		}
		runs, err := op.ListWith(ctx, f)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		seen := map[string]bool{}
		var out []cobra.Completion
		for _, r := range runs {
			lock := r.Status.Lock
			if runbooks.CheckName(lock) != nil || seen[lock] || !strings.HasPrefix(lock, toComplete) {
				continue // memos come from any client: offer only what a lock can be
			}
			seen[lock] = true
			out = append(out, cobra.CompletionWithDesc(lock, oneLine(r.Status.Runbook+" "+r.Status.Mode+" "+r.Status.State)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeGates completes approve/reject: first the locks of runs with a
// gate waiting, then that run's waiting gates.
func (a *app) completeGates(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel, op, ok := a.completionOperator(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cancel()
	var out []cobra.Completion
	if len(args) == 1 {
		st, err := op.Status(ctx, args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		for _, g := range st.Waiting {
			if runbooks.CheckName(strings.ToLower(g)) == nil && !strings.ContainsAny(g, " \t\n") && strings.HasPrefix(g, toComplete) {
				out = append(out, cobra.CompletionWithDesc(g, oneLine("awaiting a decision in "+st.Runbook)))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	runs, err := op.ListWith(ctx, operator.ListFilter{Limit: 50, Waiting: true})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	for _, r := range runs {
		if l := r.Status.Lock; runbooks.CheckName(l) == nil && strings.HasPrefix(l, toComplete) {
			out = append(out, cobra.CompletionWithDesc(l, oneLine(r.Status.Runbook+": waiting at "+strings.Join(r.Status.Waiting, ", "))))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// oneLine keeps a completion's description to one line of plain text: a
// tab or newline would start another completion.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
