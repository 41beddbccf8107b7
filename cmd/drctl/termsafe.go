package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/drctl/drctl/internal/visible"
)

// termSafe is the one filter between drctl and the operator's terminal:
// every byte drctl prints, whatever its source (runbook text, a provider's
// error, an identity or reason recorded by another client), passes through
// it. It applies internal/visible's rule to a stream: control characters
// other than newline and tab, bidirectional overrides and invalid UTF-8 are
// written as Go escapes (\x1b, \u202e), so nothing printed can move the
// cursor, erase a line or reorder text: an audit trail on screen shows what
// was recorded. JSON output passes unchanged in meaning (its escapes are
// valid JSON; invalid UTF-8 never reaches it).
type termSafe struct {
	w       io.Writer
	pending []byte // an incomplete UTF-8 sequence at the end of the last write
	// colour: Paint colours (stdout is a terminal that wants colour, or
	// --color always; see colourOn).
	colour bool
}

// Paint writes text, filtered as every write is, in colour c when colour
// is on. The colour's escape sequence is written here and nowhere else,
// so no text drctl prints can carry one.
func (t *termSafe) Paint(text string, c colour) {
	if !t.colour || c == none {
		_, _ = io.WriteString(t, text)
		return
	}
	t.flush()
	_, _ = io.WriteString(t.w, string(c))
	_, _ = io.WriteString(t, text)
	t.flush()
	_, _ = io.WriteString(t.w, reset)
}

// flush writes an incomplete UTF-8 sequence held from the last write as
// the invalid bytes it is, before a colour's sequence goes out.
func (t *termSafe) flush() {
	for _, b := range t.pending {
		fmt.Fprintf(t.w, `\x%02x`, b)
	}
	t.pending = nil
}

func (t *termSafe) Write(p []byte) (int, error) {
	buf := append(t.pending, p...)
	t.pending = nil
	var out strings.Builder
	for len(buf) > 0 {
		r, size := utf8.DecodeRune(buf)
		switch {
		case r == utf8.RuneError && size <= 1 && !utf8.FullRune(buf):
			t.pending = append([]byte(nil), buf...) // completed by the next write
			buf = nil
			continue
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&out, `\x%02x`, buf[0])
		case visible.Hidden(r):
			out.WriteString(visible.Escape(r))
		default:
			out.Write(buf[:size])
		}
		buf = buf[size:]
	}
	if _, err := io.WriteString(t.w, out.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
