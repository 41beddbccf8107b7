package runbooks

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// A runbook is reviewed, committed and copied into every run's workflow
// history, and params set with --set are recorded there too; a secret in
// either is published. One rule decides what looks like a secret, wherever
// a name or a value is written: target attributes, params, the keys and
// text of action inputs (headers, JSON bodies, URLs).

// secretStems mark a word of a name as secret-bearing wherever they occur
// in it: "DB_Password", "authToken", "X-Api-Key", "private_key_path".
var secretStems = []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey", "authorization", "cookie", "credential"}

// secretWords mark a name only as a whole word: "db_pass", "pwd", but not
// "bypass" or "passive".
var secretWords = []string{"pass", "pwd"}

var (
	// urlPasswordRE finds a URL carrying a password (scheme://user:pass@).
	urlPasswordRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)
	// pemKeyRE finds a PEM private key block (RSA, EC, OPENSSH, PGP, ...).
	pemKeyRE = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY`)
	// assignmentRE finds NAME=VALUE: URL query parameters
	// (?token=abc) and key=value connection strings (password=abc).
	assignmentRE = regexp.MustCompile(`([A-Za-z0-9_.\-]+)=[^\s&;]`)
)

// looksSecret says whether a name (an attribute, a param, a header, a key
// in an input, a URL query parameter) names a secret.
func looksSecret(name string) bool {
	words := nameWords(name)
	for i, w := range words {
		for _, stem := range secretStems {
			if strings.Contains(w, stem) {
				return true
			}
		}
		for _, sw := range secretWords {
			if w == sw {
				return true
			}
		}
		// "api_key", "access-key", "privateKey": a stem split in two.
		if i+1 < len(words) {
			pair := w + words[i+1]
			for _, stem := range secretStems {
				if strings.Contains(pair, stem) {
					return true
				}
			}
		}
	}
	return false
}

// nameWords splits a name into lower-case words at every character that is
// not a letter or digit and where lower case turns to upper case:
// "X-Api-Key" and "xApiKey" both give x, api, key.
func nameWords(name string) []string {
	var words []string
	var cur []rune
	prevLower := false
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range name {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		cur = append(cur, r)
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	flush()
	return words
}

// secretInText says what in a written value looks like a secret ("a URL
// with a password"), or "" when nothing does. Expressions count as
// written: "token=${{ params.t }}" puts the resolved token in the history.
func secretInText(s string) string {
	switch {
	case pemKeyRE.MatchString(s):
		return "a private key (a -----BEGIN ... PRIVATE KEY----- block)"
	case urlPasswordRE.MatchString(s):
		return "a URL with a password"
	}
	for _, m := range assignmentRE.FindAllStringSubmatch(s, -1) {
		if looksSecret(m[1]) {
			if strings.Contains(s, "://") {
				return fmt.Sprintf("the URL query parameter %q, which looks like a secret", m[1])
			}
			return fmt.Sprintf("%s=..., which looks like a secret", m[1])
		}
	}
	return ""
}

// secretHint is what to write instead of a secret: where the worker reads
// secrets from.
const secretHint = "remove it and have the worker read the secret from a target's credentials.env or credentials.file"
