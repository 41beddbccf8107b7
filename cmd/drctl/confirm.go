package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// errNotConfirmed ends a run nobody confirmed; nothing was started.
var errNotConfirmed = errors.New("not started: the run was not confirmed")

// stdinIsTerminal reports whether the command reads from a terminal.
func stdinIsTerminal(cmd *cobra.Command) bool {
	f, ok := cmd.InOrStdin().(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) // /dev/null is a character device, not a terminal
}

// confirmRun shows what the run will do and asks before anything acts, as
// terraform apply and patronictl do. Without a terminal to ask on it
// refuses: a script must say --yes.
func confirmRun(in io.Reader, out io.Writer, tty bool, rb *runbooks.Runbook, mode string, fb *workflows.Failback) error {
	if !tty {
		return fmt.Errorf("drctl run acts on real systems and asks first, but stdin is not a terminal; pass --yes to start without asking (scripts, CI), or look first with drctl plan")
	}
	fmt.Fprintf(out, "%s run of %s (lock %s) will:\n", mode, rb.Name, rb.Lock)
	for _, s := range rb.Preflight {
		fmt.Fprintf(out, "  check    %s (%s)\n", s.ID, s.Action)
	}
	for _, s := range rb.Steps {
		switch {
		case s.Approval != nil:
			fmt.Fprintf(out, "  approve  %s (by %s)\n", s.ID, strings.Join(s.Approval.Approvers, ", "))
		default:
			fmt.Fprintf(out, "  act      %s (%s)\n", s.ID, s.Action)
		}
	}
	switch {
	case mode == workflows.ModeDrill && fb != nil:
		fmt.Fprintf(out, "then come back with %s and compare every target with how it was.\n", fb.Runbook.Name)
	case mode == workflows.ModeDrill:
		fmt.Fprintln(out, "then undo every step (compensations) and compare every target with how it was.")
	default:
		fmt.Fprintln(out, "and stay failed over.")
	}
	fmt.Fprint(out, "Proceed? [y/N] ")
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}
