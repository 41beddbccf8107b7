package devserver

import "testing"

func TestUIURL(t *testing.T) {
	for _, tc := range []struct{ frontend, port, want string }{
		{"127.0.0.1:7233", "", "http://127.0.0.1:8233"},
		{"127.0.0.1:7233", "9000", "http://127.0.0.1:9000"},
		{"[::1]:7233", "", "http://[::1]:8233"},
		{"nonsense", "", "(unknown)"},
	} {
		if got := uiURL(tc.frontend, tc.port); got != tc.want {
			t.Errorf("uiURL(%q, %q) = %q, want %q", tc.frontend, tc.port, got, tc.want)
		}
	}
}
