package main

import (
	"strings"
	"testing"
)

// TestTermSafeEscapesWhatATerminalWouldObey: escapes, carriage returns,
// bidi overrides and invalid bytes are printed as text; newlines, tabs and
// ordinary Unicode pass; a rune split across two writes is kept whole.
func TestTermSafeEscapesWhatATerminalWouldObey(t *testing.T) {
	var b strings.Builder
	w := &termSafe{w: &b}
	for _, s := range []string{
		"approved by bob\x1b[1A\x1b[2K\r", "approved by security-team\n",
		"tab\there \u202egnp.exe\n", "bad \xff byte, ", "caf\xc3", "\xa9 ok\n",
	} {
		if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := `approved by bob\x1b[1A\x1b[2K\rapproved by security-team` + "\n" +
		"tab\there " + `\u202egnp.exe` + "\n" +
		`bad \xff byte, café ok` + "\n"
	if b.String() != want {
		t.Fatalf("got  %q\nwant %q", b.String(), want)
	}
}
