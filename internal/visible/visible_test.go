package visible

import "testing"

// TestString: what a terminal or a reader would obey is written as its Go
// escape; newlines, tabs, ordinary Unicode and plain text pass unchanged.
func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                     "plain text",
		"":                               "",
		"café, 日本":                       "café, 日本",
		"line\nnext\tcol":                "line\nnext\tcol",
		"bob\x1b[1A\x1b[2K\r":            `bob\x1b[1A\x1b[2K\r`,
		"ring\a":                         `ring\a`,
		"bell\x07 \x00":                  `bell\a \x00`,
		"\u202egnp.exe":                  `\u202egnp.exe`,
		"bad \xff byte":                  `bad \xff byte`,
		"cut \xc3":                       `cut \xc3`,
		"\ufffd is a rune, not an error": "\ufffd is a rune, not an error",
		"del\x7f c1\u0085":               `del\x7f c1\u0085`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestHiddenAndEscape(t *testing.T) {
	for r, want := range map[rune]string{'\x1b': `\x1b`, '\a': `\a`, '\r': `\r`, '\u202e': `\u202e`, '\u2066': `\u2066`} {
		if !Hidden(r) {
			t.Errorf("Hidden(%q) = false", r)
		}
		if got := Escape(r); got != want {
			t.Errorf("Escape(%q) = %q; want %q", r, got, want)
		}
	}
	for _, r := range []rune{'\n', '\t', 'a', ' ', 'é', '\ufffd'} {
		if Hidden(r) {
			t.Errorf("Hidden(%q) = true", r)
		}
	}
}
