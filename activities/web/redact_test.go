package web

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedactorString(t *testing.T) {
	r := newRedactor("s3cr<et+to/ken=", "")
	for _, tc := range []struct{ name, in, want string }{
		{"the value", "got s3cr<et+to/ken= ok", "got [redacted] ok"},
		{"its JSON spelling", `{"echo":"s3cr\u003cet+to/ken="}`, `{"echo":"[redacted]"}`},
		{"its query spelling", "echo=s3cr%3Cet%2Bto%2Fken%3D&x=1", "echo=[redacted]&x=1"},
		{"its path spelling", "/echo/s3cr%3Cet+to%2Fken=", "/echo/[redacted]"},
		{"an Authorization line", "Authorization: Basic dXNlcjpwYXNz\r\nAccept: */*", "Authorization: [redacted]\r\nAccept: */*"},
		{"a Cookie line", "set-cookie: sid=abc; HttpOnly\n", "set-cookie: [redacted]\n"},
		{"a JSON token", `{"access_token": "eyJhbGciOi.x.y", "expires_in": 3600}`, `{"access_token": "[redacted]", "expires_in": 3600}`},
		{"a JSON password with a quote", `{"password":"p\"w","user":"u"}`, `{"password":"[redacted]","user":"u"}`},
		{"a JSON header list", `{"X-Api-Key":["k1","k2"],"Accept":["*/*"]}`, `{"X-Api-Key":"[redacted]","Accept":["*/*"]}`},
		{"a query token", "https://x.example/cb?state=1&access_token=abc.def&x=2", "https://x.example/cb?state=1&access_token=[redacted]&x=2"},
		{"a bearer token in prose", "used bearer abc-123_x~y.z/w+v== then", "used bearer [redacted] then"},
		{"a Go header map", "map[Accept:[*/*] Authorization:[Bearer zzz]]", "map[Accept:[*/*] Authorization:[redacted]"},
		{"plain JSON", `{"status":"ok","id":"evt-1","keys":3}`, `{"status":"ok","id":"evt-1","keys":3}`},
		{"an idempotency key", "Idempotency-Key: drctl-x/r1/announce", "Idempotency-Key: drctl-x/r1/announce"},
		{"the word basic", "a basic check failed", "a basic check failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	const token = "hook-t0ken-7f3a9c"
	r := newRedactor(token)
	t.Run("a value crossing the cut", func(t *testing.T) {
		text, truncated, err := r.readBody(strings.NewReader(strings.Repeat("x", MaxBodyOutput-5) + token + strings.Repeat("y", 100)))
		if err != nil || !truncated || len(text) > MaxBodyOutput || strings.Contains(text, token[:5]) {
			t.Fatalf("%v %v %d bytes, tail %q", err, truncated, len(text), text[len(text)-20:])
		}
	})
	t.Run("a value longer than the read", func(t *testing.T) {
		huge := strings.Repeat("k", maxBodyRead+10)
		r := newRedactor(huge)
		text, truncated, err := r.readBody(strings.NewReader("head " + huge))
		if err != nil || !truncated || text != "head" {
			t.Fatalf("%v %v %.40q", err, truncated, text)
		}
	})
	t.Run("cut on a character", func(t *testing.T) {
		text, truncated, err := r.readBody(strings.NewReader("a" + strings.Repeat("é", MaxBodyOutput)))
		if err != nil || !truncated || len(text) > MaxBodyOutput || !utf8.ValidString(text) {
			t.Fatalf("%v %v %d bytes, valid %v", err, truncated, len(text), utf8.ValidString(text))
		}
	})
	t.Run("bad bytes", func(t *testing.T) {
		text, truncated, err := r.readBody(strings.NewReader("ok \xff\xfe done"))
		if err != nil || truncated || text != "ok \uFFFD done" {
			t.Fatalf("%v %v %q", err, truncated, text)
		}
	})
	t.Run("exactly the bound", func(t *testing.T) {
		text, truncated, err := r.readBody(strings.NewReader(strings.Repeat("z", MaxBodyOutput)))
		if err != nil || truncated || len(text) != MaxBodyOutput {
			t.Fatalf("%v %v %d", err, truncated, len(text))
		}
	})
}

func TestBounded(t *testing.T) {
	if got := bounded("east", 200); got != `"east"` {
		t.Errorf("bounded = %s", got)
	}
	if got := bounded(strings.Repeat("é", 200), 7); got != `"ééé"...` {
		t.Errorf("bounded = %s", got)
	}
}
