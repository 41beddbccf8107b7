package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyOutput bounds the response body http.call keeps in its outputs
// and error messages, which land in the workflow history. A longer body is
// cut (on a character boundary) and outputs.body_truncated says so.
const MaxBodyOutput = 4 << 10

// maxBodyRead bounds how much of a response http.call reads, whatever the
// endpoint sends: enough past MaxBodyOutput that a credential or a
// credential-shaped line crossing the cut is still seen whole and redacted.
const maxBodyRead = 64 << 10

// Redacted replaces a credential in anything http.call keeps or reports.
const Redacted = "[redacted]"

// redactor removes credentials from text an action keeps (outputs) or
// reports (errors): every value it was given, in the spellings an endpoint
// echoes it in, and anything shaped like a credential.
type redactor struct {
	values []string // longest first, so a value's longer spelling goes whole
}

// newRedactor redacts the given secret values (empty ones are ignored).
func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if s == "" {
			continue
		}
		js, _ := json.Marshal(s)
		r.values = append(r.values, s,
			strings.Trim(string(js), `"`),
			url.QueryEscape(s),
			url.PathEscape(s),
			strings.ToValidUTF8(s, "\uFFFD"))
	}
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
	r.values = slices.Compact(r.values)
	return r
}

// credentialShapes are what a credential looks like in an echoed request
// or a token endpoint's answer, whoever's it is. Each keeps the name and
// replaces the value.
var credentialShapes = []struct {
	re   *regexp.Regexp
	with string
}{
	// JSON: "access_token": "...", "Authorization": ["Bearer ..."].
	{regexp.MustCompile(`(?i)("[^"\\\n]*` + sensitiveStem + `[^"\\\n]*"\s*:\s*)(?:"(?:[^"\\\n]|\\.)*"|\[\s*(?:"(?:[^"\\\n]|\\.)*"\s*,?\s*)*\])`), `${1}"` + Redacted + `"`},
	// Header lines and their look-alikes: Authorization: ..., token: ...,
	// map[Authorization:[...]]; the rest of the line goes.
	{regexp.MustCompile(`(?i)\b([\w-]*` + sensitiveStem + `[\w-]*[ \t]*:[ \t]*)[^\s\r\n][^\r\n]*`), "${1}" + Redacted},
	// Query strings and forms: access_token=...&.
	{regexp.MustCompile(`(?i)\b([\w-]*` + sensitiveStem + `[\w-]*=)[^&\s"'<>]+`), "${1}" + Redacted},
	// An authorization scheme and its credentials anywhere (RFC 9110
	// token68): Bearer eyJ..., Basic dXNlcjpwYXNz.
	{regexp.MustCompile(`\b((?i:bearer)|Basic)([ \t]+)[A-Za-z0-9._~+/-]+=*`), "${1}${2}" + Redacted},
}

// sensitiveStem is part of every name that holds a credential.
const sensitiveStem = `(?:authorization|token|secret|passw(?:or)?d|api[-_]?key|cookie|credential)`

var sensitiveName = regexp.MustCompile(`(?i)` + sensitiveStem)

// String returns s with every secret value and every credential-shaped
// text replaced by Redacted.
func (r redactor) String(s string) string {
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	for _, c := range credentialShapes {
		s = c.re.ReplaceAllString(s, c.with)
	}
	return s
}

// trimPartial drops a tail of b that begins one of the secret values: when
// a read stopped inside a value, that beginning is not recognisable as the
// value, and must not be kept.
func (r redactor) trimPartial(b []byte) []byte {
	for _, v := range r.values {
		for n := min(len(v)-1, len(b)); n > 0; n-- {
			if bytes.HasSuffix(b, []byte(v[:n])) {
				b = b[:len(b)-n]
				break
			}
		}
	}
	return b
}

// readBody reads at most maxBodyRead bytes of body and returns the text
// to keep: valid UTF-8, redacted, trimmed, at most MaxBodyOutput bytes;
// truncated says the endpoint sent more than that.
func (r redactor) readBody(body io.Reader) (text string, truncated bool, err error) {
	b, err := io.ReadAll(io.LimitReader(body, maxBodyRead+1))
	if len(b) > maxBodyRead {
		b, truncated = r.trimPartial(b[:maxBodyRead]), true
	}
	text = strings.TrimSpace(r.String(strings.ToValidUTF8(string(b), "\uFFFD")))
	if len(text) > MaxBodyOutput {
		cut := MaxBodyOutput
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text, truncated = text[:cut], true
	}
	return text, truncated, err
}

// bounded quotes s, cut to at most n bytes: for a value out of an answer
// in a message.
func bounded(s string, n int) string {
	if len(s) <= n {
		return strconv.Quote(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "..."
}
