package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportRefusesOtherFormats(t *testing.T) {
	// The format is checked before anything dials: no server is needed.
	_, _, err := drctl(t, "report", "-o", "yaml", "app-site")
	if err == nil || !strings.Contains(err.Error(), `--output "yaml": a report is md (the default), html or json`) {
		t.Errorf("error = %v, want one naming md, html and json", err)
	}
	if _, _, err := drctl(t, "report"); err == nil {
		t.Error("report with no RUN succeeded")
	}
}

func TestReportHelp(t *testing.T) {
	out, _, err := drctl(t, "report", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"report RUN", "-f, --file FILE", "drctl report app-site -o html -f drill.html"} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not show %q:\n%s", want, out)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drill.html")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("new report")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new report" {
		t.Errorf("file holds %q (%v), want the new report", b, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", st.Mode().Perm(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the report (no temporary file left)", len(ents))
	}
	missing := filepath.Join(dir, "no-such-dir", "r.md")
	if err := writeFileAtomic(missing, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("error = %v, want one naming %s", err, missing)
	}
}
