package main

import (
	"errors"
	"os"
	"regexp"
	"strings"
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

// TestREADMEListsEveryCommand: the README's CLI reference names exactly the
// commands the binary has.
func TestREADMEListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(b), "### CLI reference")
	if !ok {
		t.Fatal("README has no CLI reference")
	}
	ref, _, _ = strings.Cut(ref, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(drctl[a-z -]*)` \\|").FindAllStringSubmatch(ref, -1) {
		documented[m[1]] = true
	}
	for _, c := range everyCommand(newRoot()) {
		if !c.Runnable() || c.Hidden || c.Name() == "help" {
			continue
		}
		if !documented[c.CommandPath()] {
			t.Errorf("README's CLI reference lacks %s", c.CommandPath())
		}
		delete(documented, c.CommandPath())
	}
	for p := range documented {
		t.Errorf("README's CLI reference lists %s, which is no command", p)
	}
}

// TestArgumentCountErrorsSayHow: a missing argument is answered with the
// usage line and an example, not only cobra's count.
func TestArgumentCountErrorsSayHow(t *testing.T) {
	root := newRoot()
	cmd, _, err := root.Find([]string{"approve"})
	if err != nil {
		t.Fatal(err)
	}
	got := withUsage(cmd, cmd.Args(cmd, []string{"app-site"})).Error()
	for _, want := range []string{"accepts 2 arg(s), received 1", "usage: drctl approve RUN STEP", "for example: drctl approve app-site approve-promotion"} {
		if !strings.Contains(got, want) {
			t.Errorf("error %q lacks %q", got, want)
		}
	}
	if other := errors.New("no run \"x\""); withUsage(cmd, other) != other {
		t.Error("an error that is not about arguments was changed")
	}
}
