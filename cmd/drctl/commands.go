package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/activities"
	"github.com/drctl/drctl/internal/operator"
	"github.com/drctl/drctl/internal/telemetry"
	"github.com/drctl/drctl/runbooks"
	drworker "github.com/drctl/drctl/worker"
	"github.com/drctl/drctl/workflows"
)

func (a *app) validateCmd() *cobra.Command {
	mode := workflows.ModeFailover
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check runbooks and report every problem with file:line and a fix",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			bad := 0
			var results []validation
			for _, path := range args {
				rb, _, err := a.loadFor(path, mode, "")
				res := validation{File: path}
				var ps runbooks.Problems
				switch {
				case errors.As(err, &ps):
					bad++
					for _, p := range ps {
						res.Problems = append(res.Problems, problem{Line: p.Line, Col: p.Col, Step: p.Step, Message: p.Message, Hint: p.Hint})
						if !asJSON {
							fmt.Fprintln(out, p.String())
						}
					}
				case err != nil:
					// Every file is checked: one that cannot be read is
					// one problem among the others.
					bad++
					res.Error = err.Error()
					if !asJSON {
						fmt.Fprintf(out, "%s: %v\n", path, err)
					}
				default:
					res.OK, res.Name, res.Lock, res.Steps = true, rb.Name, rb.Lock, len(rb.Steps)
					if !asJSON {
						fmt.Fprintf(out, "%s: ok (%s, %d steps, lock %s)\n", path, rb.Name, len(rb.Steps), rb.Lock)
					}
				}
				results = append(results, res)
			}
			if asJSON {
				if err := operator.JSON(out, map[string]any{"runbooks": results}); err != nil {
					return err
				}
			}
			if bad > 0 {
				return verdict(fmt.Sprintf("%d of %d runbook(s) have problems", bad, len(args)))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", workflows.ModeFailover, "drill: also check that a drill can put back every step (each acting step has a compensation that restores it)")
	return cmd
}

func (a *app) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the runbook JSON Schema (for editors: yaml-language-server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			b, err := runbooks.Schema(drworker.Catalog())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
}

func parseSets(sets []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: write NAME=VALUE", s)
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) planCmd() *cobra.Command {
	var (
		sets       []string
		paramsFile string
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the runbook's stages and what each step would change, without acting",
		Long: "plan validates the runbook, prints its DAG as ordered stages, then asks a worker\n" +
			"(which holds the credentials) to run each action's read-only Observe.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rb, err := a.load(args[0])
			if err != nil {
				return err
			}
			params, err := runParams(rb, paramsFile, sets)
			if err != nil {
				return err
			}
			if _, err := runbooks.ParamValues(rb, params); err != nil {
				return err
			}
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			var res *workflows.PlanResult
			var observeErr error
			op, err := a.operator(cmd.Context())
			switch {
			case err != nil:
				observeErr = err
			default:
				if msg := op.NoWorker(cmd.Context()); msg != "" {
					observeErr = errors.New(msg) // asking would only wait
					break
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				res, observeErr = op.Plan(ctx, rb, params)
				cancel()
			}
			if res == nil {
				res = &workflows.PlanResult{Stages: runbooks.Stages(rb)}
			}
			if asJSON {
				if err := operator.JSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printPlan(cmd.OutOrStdout(), rb, res)
			}
			if observeErr != nil {
				// The stages are printed; what is not known is said, and
				// the exit code says the plan is incomplete.
				return verdict("current state not observed: " + observeErr.Error())
			}
			if unserved := op.Unserved(cmd.Context(), res); len(unserved) > 0 {
				return verdict("no live worker can run all of this plan:\n  " + strings.Join(unserved, "\n  "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "parameter NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&paramsFile, "params", "", paramsFlagDoc)
	cmd.Flags().DurationVar(&timeout, "observe-timeout", 20*time.Second, "how long to wait for workers to observe")
	return cmd
}

func (a *app) runCmd() *cobra.Command {
	var (
		sets       []string
		paramsFile string
		mode       string
		detach     bool
		yes        bool
		reason     string
		chaos      []string
		failback   string
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Start a run and follow it (Ctrl-C detaches; it never aborts)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			rb, params, fbInput, faults, err := a.prepare(args[0], mode, failback, paramsFile, sets, chaos)
			if err != nil {
				return err
			}
			c, _ := a.config()
			// The run's own check, before anything is dialled (the
			// operator makes it again before it starts the run).
			if err := workflows.CheckInput(workflows.RunInput{Runbook: *rb, Params: params, Mode: mode, StartedBy: c.Identity, Reason: reason, Chaos: faults, Failback: fbInput}); err != nil {
				return err
			}
			if !yes {
				if err := confirmRun(cmd.InOrStdin(), cmd.ErrOrStderr(), stdinIsTerminal(cmd), rb, mode, fbInput); err != nil {
					return err
				}
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			so := operator.StartOptions{Params: params, Mode: mode, Reason: reason, Chaos: faults, Failback: fbInput}
			if c.Approvals.AllowedSigners != "" {
				if so.Signers, err = operator.LoadAllowedSigners(c.Approvals.AllowedSigners); err != nil {
					return err
				}
			}
			started, err := op.StartWith(cmd.Context(), rb, so)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				// stdout is the one JSON document: what was started, or
				// (followed) the report; the banner goes to stderr.
				if detach {
					return operator.JSON(out, map[string]string{"workflow_id": started.WorkflowID, "run_id": started.RunID, "lock": rb.Lock, "mode": mode})
				}
				out = cmd.ErrOrStderr()
			}
			fmt.Fprintf(out, "started %s run of %s as %s (lock %s)\n", mode, rb.Name, started.WorkflowID, rb.Lock)
			if msg := op.NoWorker(cmd.Context()); msg != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", msg)
			}
			if detach {
				fmt.Fprintf(out, "follow it with: drctl watch %s\n", rb.Lock)
				return nil
			}
			return a.follow(cmd.Context(), op, started.WorkflowID)
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "parameter NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&paramsFile, "params", "", paramsFlagDoc)
	cmd.Flags().StringVar(&mode, "mode", workflows.ModeFailover, "failover (act and stay) or drill (act, then come back: the runbook's drill.failback or --failback, else every compensation; then compare)")
	cmd.Flags().BoolVar(&detach, "detach", false, "start and return without following")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "start without asking (needed when stdin is not a terminal: scripts, CI)")
	cmd.Flags().StringVar(&failback, "failback", "", "drills: the runbook that brings everything back after the forward path (default: the runbook's drill.failback)")
	cmd.Flags().StringVar(&reason, "reason", "", "why this run was started (recorded in the run)")
	cmd.Flags().StringArrayVar(&chaos, "chaos", nil, "drills: inject a fault, STEP=fail:N (first N attempts fail), STEP=fail:permanent or STEP=latency:DURATION; failback.STEP for a step of the failback runbook; repeatable, combine with a comma")
	return cmd
}

// prepare loads what a run (or a drill schedule) starts with: the
// runbook, its parameters, the drill's failback runbook with its own
// parameters (declared --set values and the params file), and the faults
// (--chaos failback.STEP=... aims at the failback's steps).
func (a *app) prepare(file, mode, failback, paramsFile string, sets, chaos []string) (*runbooks.Runbook, map[string]string, *workflows.Failback, []activities.Fault, error) {
	rb, fb, err := a.loadFor(file, mode, failback)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	params, err := runParams(rb, paramsFile, sets)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	faults, err := parseChaos(chaos)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var forward, back []activities.Fault
	for _, f := range faults {
		if step, ok := strings.CutPrefix(f.Step, failbackFault); ok {
			f.Step = step
			back = append(back, f)
		} else {
			forward = append(forward, f)
		}
	}
	var fbInput *workflows.Failback
	if fb != nil {
		fbParams, err := runParams(fb, paramsFile, declaredSets(fb, sets))
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("failback %s: %w", fb.Name, err)
		}
		fbInput = &workflows.Failback{Runbook: *fb, Params: fbParams, Chaos: back, After: runbooks.OnlyFailbackUndoes(rb, drworker.Catalog())}
	} else if len(back) > 0 {
		return nil, nil, nil, nil, fmt.Errorf("--chaos %s%s: this drill has no failback runbook", failbackFault, back[0].Step)
	}
	return rb, params, fbInput, forward, nil
}

// failbackFault prefixes a --chaos step of the drill's failback runbook.
const failbackFault = "failback."

// parseChaos reads --chaos values: STEP=fail:N, STEP=fail:permanent,
// STEP=latency:DUR, several joined by commas for one step.
func parseChaos(specs []string) ([]activities.Fault, error) {
	byStep := map[string]*activities.Fault{}
	var order []string
	for _, spec := range specs {
		step, faults, ok := strings.Cut(spec, "=")
		if !ok || step == "" || faults == "" {
			return nil, fmt.Errorf("--chaos %q: write STEP=fail:N, STEP=fail:permanent or STEP=latency:30s", spec)
		}
		f := byStep[step]
		if f == nil {
			f = &activities.Fault{Step: step}
			byStep[step] = f
			order = append(order, step)
		}
		for _, one := range strings.Split(faults, ",") {
			kind, val, _ := strings.Cut(one, ":")
			switch {
			case kind == "fail" && val == "permanent":
				f.Permanent = true
			case kind == "fail":
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 {
					return nil, fmt.Errorf("--chaos %s: fail:%s is not a number of attempts (1 or more)", step, val)
				}
				f.Fail = n
			case kind == "latency":
				d, err := runbooks.ParseDuration(val)
				if err != nil {
					return nil, fmt.Errorf("--chaos %s: latency: %w", step, err)
				}
				f.Latency = d
			default:
				return nil, fmt.Errorf("--chaos %s: %q is not fail:N, fail:permanent or latency:DURATION", step, one)
			}
		}
	}
	out := make([]activities.Fault, 0, len(order))
	for _, s := range order {
		out = append(out, *byStep[s])
	}
	return out, nil
}

// follow prints a run's progress until it ends or the user detaches.
func (a *app) follow(ctx context.Context, op *operator.Operator, id string) error {
	out := a.cmd.OutOrStdout()
	asJSON, err := a.jsonOutput()
	if err != nil {
		return err
	}
	f := &follower{out: out}
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := op.Status(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if st.Closed {
			rep, err := op.ReportOf(context.WithoutCancel(ctx), st)
			if err != nil {
				return err
			}
			if asJSON {
				if err := operator.JSON(out, rep); err != nil {
					return err
				}
			} else {
				f.update(rep)
				printReport(out, rep, nil)
			}
			if rep.State != workflows.StateSucceeded {
				return runEnded{rep.State}
			}
			return nil
		}
		if !asJSON {
			if rep, err := op.ReportOf(ctx, st); err == nil {
				f.update(rep)
				f.retries(rep, st.InFlight)
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	if asJSON {
		if err := operator.JSON(out, map[string]any{"workflow_id": id, "detached": true}); err != nil {
			return err
		}
		out = a.cmd.ErrOrStderr()
	}
	fmt.Fprintf(out, "\ndetached; the run continues. Follow it again with: drctl watch %s\n", strings.TrimPrefix(id, workflows.WorkflowIDPrefix))
	return nil
}

type runEnded struct{ state string }

func (e runEnded) Error() string { return "run " + e.state }
func (e runEnded) ExitCode() int { return 2 }

// Printed says the outcome is already on stdout (the report): with -o
// json, no second document follows.
func (runEnded) Printed() bool { return true }

// verdict is a command's failing outcome (exit 1) after it printed its
// result: validate's problems, replay's results, a plan that could not
// observe. With -o json no second document follows.
type verdict string

func (e verdict) Error() string { return string(e) }
func (verdict) ExitCode() int   { return 1 }
func (verdict) Printed() bool   { return true }

// validation is one file's result in validate -o json.
type validation struct {
	File     string    `json:"file"`
	OK       bool      `json:"ok"`
	Name     string    `json:"name,omitempty"`
	Lock     string    `json:"lock,omitempty"`
	Steps    int       `json:"steps,omitempty"`
	Problems []problem `json:"problems,omitempty"`
	Error    string    `json:"error,omitempty"` // the file could not be read
}

type problem struct {
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Step    string `json:"step,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status RUN",
		Short: "Show a run's state and steps (RUN is the lock, the workflow ID or a run ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			st, err := op.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			rep, repErr := op.ReportOf(cmd.Context(), st)
			if repErr == nil {
				if asJSON {
					return operator.JSON(cmd.OutOrStdout(), reportView{rep, st.InFlight})
				}
				printReport(cmd.OutOrStdout(), rep, st.InFlight)
				return nil
			}
			// No worker to answer the query: the memo still has the summary.
			if asJSON {
				return operator.JSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			fmt.Fprintf(cmd.OutOrStdout(), "(summary only: %v)\n", repErr)
			return nil
		},
	}
}

// reportView is status -o json of a run a worker answered for: its
// report, and the attempts in flight of its retrying steps.
type reportView struct {
	*workflows.Report
	InFlight []operator.Attempt `json:"in_flight,omitempty"`
}

func (a *app) watchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch RUN",
		Short: "Follow a run's progress until it ends (Ctrl-C stops watching, not the run)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := op.Status(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.follow(cmd.Context(), op, operator.RunID(args[0]))
		},
	}
}

func (a *app) listCmd() *cobra.Command {
	var (
		f    operator.ListFilter
		mine bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent runs (RUN ID addresses any of them, older runs of a lock too)",
		Example: `  drctl list --waiting            # runs with a gate awaiting a decision
  drctl list --runbook site-failover --state failed
  drctl list --mine -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(a, cmd, func(ctx context.Context, op *operator.Operator) ([]operator.Summary, error) {
				if mine {
					f.StartedBy = op.Identity
				}
				return op.ListWith(ctx, f)
			}, printList)
		},
	}
	cmd.Flags().IntVar(&f.Limit, "limit", 20, "how many runs")
	cmd.Flags().StringVar(&f.State, "state", "", "running, closed, or a final state: succeeded, failed, aborted")
	cmd.Flags().StringVar(&f.Runbook, "runbook", "", "runs of this runbook only")
	cmd.Flags().BoolVar(&f.Waiting, "waiting", false, "only runs with a gate awaiting a decision")
	cmd.Flags().BoolVar(&mine, "mine", false, "only runs you started (--as / DRCTL_IDENTITY)")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"running", "closed", workflows.StateSucceeded, workflows.StateFailed, workflows.StateAborted}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) decideCmd(approve bool) *cobra.Command {
	verb, past := "reject", "rejected"
	if approve {
		verb, past = "approve", "approved"
	}
	var reason, signKey string
	cmd := &cobra.Command{
		Use:   verb + " RUN STEP",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " an approval gate that is awaiting a decision",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !approve && reason == "" {
				return errors.New("a rejection needs --reason so the audit trail says why")
			}
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			if signKey == "" {
				c, _ := a.config()
				signKey = c.Approvals.SignKey
			}
			if signKey != "" {
				if op.Signer, err = operator.LoadSigner(signKey); err != nil {
					return err
				}
			}
			d, res, err := op.DecideResult(cmd.Context(), args[0], args[1], approve, reason)
			if err != nil {
				return fmt.Errorf("%s %s: %w", verb, args[1], err)
			}
			what := fmt.Sprintf("step %s %s by %s", args[1], past, op.Identity)
			if res.Needed > 0 {
				what = fmt.Sprintf("step %s: approval by %s recorded; %d more needed", args[1], op.Identity, res.Needed)
			}
			if op.Signer != nil {
				what += " (signed)"
			}
			report(cmd, d, what)
			return nil
		},
	}
	reasonDoc := "why (recorded in the run)"
	if !approve {
		reasonDoc = "why (recorded in the run; required to reject)"
	}
	cmd.Flags().StringVar(&reason, "reason", "", reasonDoc)
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign the decision with this SSH key: a private key file, or a .pub whose key is in ssh-agent (config approvals.sign_key); runs started with approvals.allowed_signers take signed decisions only")
	return cmd
}

func (a *app) controlCmd(op string) *cobra.Command {
	short := map[string]string{
		workflows.OpPause:  "Pause a run: running steps finish, no new step starts",
		workflows.OpResume: "Resume a paused run",
		workflows.OpAbort:  "Abort a run: running steps are cancelled, completed steps compensated in reverse order",
	}[op]
	var (
		reason string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   op + " RUN",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if op == workflows.OpAbort && reason == "" {
				return errors.New("abort needs --reason so the audit trail says why")
			}
			o, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			if force {
				changed, err := o.Terminate(cmd.Context(), args[0], reason)
				if err != nil {
					return fmt.Errorf("%s --force: %w", op, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s terminated by %s; no compensation ran; the lock is free\n", args[0], o.Identity)
				if len(changed) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "not undone (these steps had changed something): %s\n", strings.Join(changed, ", "))
				}
				return nil
			}
			d, err := o.Control(cmd.Context(), args[0], op, reason)
			if err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			report(cmd, d, fmt.Sprintf("%s of %s accepted (by %s)", op, args[0], o.Identity))
			if d != operator.Queued {
				return nil
			}
			if msg := o.NoWorker(cmd.Context()); msg != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s", msg)
				if op == workflows.OpAbort {
					fmt.Fprintf(cmd.ErrOrStderr(), "; if none will, `drctl abort %s --force --reason ...` ends the run now and frees the lock, without compensations", args[0])
				}
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			return nil
		},
	}
	reasonDoc := "why (recorded in the run)"
	if op == workflows.OpAbort {
		reasonDoc = "why (recorded in the run; required to abort)"
	}
	cmd.Flags().StringVar(&reason, "reason", "", reasonDoc)
	if op == workflows.OpAbort {
		cmd.Flags().BoolVar(&force, "force", false, "end the run at once (terminate it) without running compensations, for a run no worker will pick up; says which changed steps stay done, and frees the lock")
		// The first spelling, kept for scripts.
		cmd.Flags().BoolVar(&force, "terminate", false, "the old name of --force")
		_ = cmd.Flags().MarkDeprecated("terminate", "use --force")
	}
	return cmd
}

func report(cmd *cobra.Command, d operator.Delivery, what string) {
	if d == operator.Queued {
		fmt.Fprintf(cmd.OutOrStdout(), "no worker answered: sent as a signal, which the server keeps; a worker checks it by the same rules when it picks the run up (a decision for a gate not reached yet waits for the gate); `drctl status` shows the outcome (%s)\n", what)
		return
	}
	fmt.Fprintln(cmd.OutOrStdout(), what)
}

func (a *app) historyCmd() *cobra.Command {
	h := &cobra.Command{Use: "history", Short: "Work with run histories"}
	var out string
	export := &cobra.Command{
		Use:   "export RUN",
		Short: "Write a run's event history as JSON (for replay tests)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := a.operator(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return op.ExportHistory(cmd.Context(), args[0], w)
		},
	}
	export.Flags().StringVarP(&out, "file", "f", "-", "write to this file instead of stdout")
	h.AddCommand(export)
	return h
}

func (a *app) replayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "replay FILE.json...",
		Short: "Replay recorded histories against this build; say whether each is still compatible",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.jsonOutput()
			if err != nil {
				return err
			}
			type replayed struct {
				File       string `json:"file"`
				Compatible bool   `json:"compatible"`
				Error      string `json:"error,omitempty"`
			}
			var results []replayed
			bad := 0
			for _, f := range args {
				r := replayed{File: f, Compatible: true}
				if err := drworker.Replay(f); err != nil {
					bad++
					r.Compatible, r.Error = false, err.Error()
				}
				results = append(results, r)
				switch {
				case asJSON:
				case r.Compatible:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: compatible\n", f)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: INCOMPATIBLE: %s\n", f, r.Error)
				}
			}
			if asJSON {
				if err := operator.JSON(cmd.OutOrStdout(), map[string]any{"histories": results}); err != nil {
					return err
				}
			}
			if bad > 0 {
				return verdict(fmt.Sprintf("%d of %d histories do not replay; guard the change with workflow.GetVersion", bad, len(args)))
			}
			return nil
		},
	}
}

func (a *app) workerCmd() *cobra.Command {
	var sites []string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: executes runbook workflows and actions (stops gracefully on SIGTERM)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			if len(sites) > 0 {
				c.Worker.Sites = sites
				if err := c.Validate(); err != nil {
					return err
				}
			}
			tel, err := telemetry.Setup(cmd.Context(), c.Telemetry)
			if err != nil {
				return err
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = tel.Shutdown(ctx)
			}()
			return drworker.Serve(cmd.Context(), c, drworker.Options{
				Dial: drworker.DialOptions{Telemetry: tel},
				Ready: func(s drworker.Serving) {
					where := "no site: actions that need a site's local reach go to that site's workers"
					if len(c.Worker.Sites) > 0 {
						var qs []string
						for _, s := range c.Worker.Sites {
							qs = append(qs, strconv.Quote(workflows.SiteQueue(c.Temporal.TaskQueue, s)))
						}
						where = fmt.Sprintf("site %s (also polling %s)", strings.Join(c.Worker.Sites, ", "), strings.Join(qs, ", "))
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "worker %s polling task queue %q on %s (namespace %s); %s; actions: %s\n",
						c.Identity, c.Temporal.TaskQueue, c.Temporal.Address, c.Temporal.Namespace, where, strings.Join(s.Registry.Names(), ", "))
				},
				Beside: slackBeside(c, cmd.ErrOrStderr()),
			})
		},
	}
	cmd.Flags().StringSliceVar(&sites, "site", nil, "a site this worker runs in (worker.sites; repeat or comma-separate for a host in several): it also runs the actions that need that site's local reach")
	return cmd
}
