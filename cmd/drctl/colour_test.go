package main

import (
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"
)

func TestColourOn(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name     string
		mode     string
		json     bool
		terminal bool
		env      func(string) string
		want     bool
	}{
		{"auto on a terminal", colourAuto, false, true, env("TERM", "xterm-256color"), true},
		{"auto into a pipe", colourAuto, false, false, env("TERM", "xterm"), false},
		{"auto with NO_COLOR", colourAuto, false, true, env("NO_COLOR", "1"), false},
		{"auto with NO_COLOR empty", colourAuto, false, true, env("NO_COLOR", ""), true},
		{"auto on a dumb terminal", colourAuto, false, true, env("TERM", "dumb"), false},
		{"auto with JSON", colourAuto, true, true, env(), false},
		{"default is auto", "", false, true, env(), true},
		{"always into a pipe", colourAlways, false, false, env(), true},
		{"always beats NO_COLOR", colourAlways, false, false, env("NO_COLOR", "1", "TERM", "dumb"), true},
		{"always with JSON", colourAlways, true, true, env(), false},
		{"never", colourNever, false, true, env("TERM", "xterm"), false},
	} {
		got, err := colourOn(tc.mode, tc.json, tc.terminal, tc.env)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := colourOn("yes", false, true, env()); err == nil || !strings.Contains(err.Error(), "auto, always or never") {
		t.Errorf("--color yes: %v", err)
	}
}

func TestColourOf(t *testing.T) {
	for word, want := range map[string]colour{
		"succeeded": green, "failed": red, "rejected": red, "aborted": red, "terminated": red,
		"waiting": yellow, "awaiting approval": yellow, "paused": yellow, "retrying": yellow,
		"running": cyan, "pending": none, "cancelled": none, "": none,
	} {
		if got := colourOf(word); got != want {
			t.Errorf("colourOf(%q) = %q, want %q", word, got, want)
		}
	}
}

var sgrRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestTablesAlignInColour: a table painted for a terminal shows, once its
// colour is taken away, exactly what it shows without colour, which is
// what text/tabwriter laid out before colour came; a runbook's text
// cannot bring its own colour.
func TestTablesAlignInColour(t *testing.T) {
	rows := [][]cell{
		{plainCell("  STEP"), plainCell("STATE"), plainCell("ATTEMPTS"), plainCell("RESULT")},
		{plainCell("  fence-east"), stateCell("succeeded"), plainCell("1"), plainCell("fenced")},
		{plainCell("  promote"), stateCell("running"), plainCell("3"), plainCell("retrying: \x1b[32mfake green\x1b[0m")},
		{plainCell("  go-ahead"), stateCell("waiting"), plainCell(""), plainCell("")},
		{plainCell("  dns"), stateCell("pending"), plainCell(""), plainCell("")},
	}
	var plain, coloured, tab strings.Builder
	printTable(&termSafe{w: &plain}, rows)
	printTable(&termSafe{w: &coloured, colour: true}, rows)
	tw := tabwriter.NewWriter(&termSafe{w: &tab}, 2, 4, 2, ' ', 0)
	for _, r := range rows {
		var texts []string
		for _, c := range r {
			texts = append(texts, c.text)
		}
		tw.Write([]byte(strings.Join(texts, "\t") + "\n"))
	}
	tw.Flush()

	if plain.String() != tab.String() {
		t.Errorf("without colour the table differs from tabwriter's:\n%s\nwant:\n%s", plain.String(), tab.String())
	}
	if got := sgrRE.ReplaceAllString(coloured.String(), ""); got != plain.String() {
		t.Errorf("colour moved the columns:\n%s\nwant:\n%s", got, plain.String())
	}
	for _, want := range []string{"\x1b[32msucceeded\x1b[0m  ", "\x1b[36mrunning\x1b[0m    ", "\x1b[33mwaiting\x1b[0m    ", "  pending    "} {
		if !strings.Contains(coloured.String(), want) {
			t.Errorf("coloured table lacks %q:\n%q", want, coloured.String())
		}
	}
	if !strings.Contains(coloured.String(), `retrying: \x1b[32mfake green\x1b[0m`) {
		t.Errorf("a cell's own escape sequence was not escaped:\n%q", coloured.String())
	}
}

// TestPaintOnlyWhereColourIsOn: a writer that is not a coloured terminal
// gets the word alone.
func TestPaintOnlyWhereColourIsOn(t *testing.T) {
	var buf, off, on strings.Builder
	paint(&buf, "failed")
	paint(&termSafe{w: &off}, "failed")
	paint(&termSafe{w: &on, colour: true}, "failed")
	if buf.String() != "failed" || off.String() != "failed" || on.String() != "\x1b[31mfailed\x1b[0m" {
		t.Errorf("paint: %q, %q, %q", buf.String(), off.String(), on.String())
	}
}
