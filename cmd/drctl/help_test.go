package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// everyCommand lists root and all its subcommands.
func everyCommand(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, everyCommand(c)...)
	}
	return out
}

// TestEveryCommandHasAnExample: a newcomer steers a run from --help alone,
// so every command that does something shows how to call it.
func TestEveryCommandHasAnExample(t *testing.T) {
	for _, c := range everyCommand(newRoot()) {
		if c.Runnable() && !c.Hidden && c.Name() != "help" && c.Example == "" {
			t.Errorf("%s has no Example in its help", c.CommandPath())
		}
	}
}

// TestExamplesNameRealCommands: no example is kept for a command that is gone.
func TestExamplesNameRealCommands(t *testing.T) {
	paths := map[string]bool{}
	for _, c := range everyCommand(newRoot()) {
		paths[c.CommandPath()] = true
	}
	for p := range examples {
		if !paths[p] {
			t.Errorf("examples has %q, which is no command", p)
		}
	}
}
