package chromium

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDumpDOMLeavesNothingRunning: the DOM Chromium built from a page is
// returned, and once the test that ran it has ended no process naming its
// directory is left.
func TestDumpDOMLeavesNothingRunning(t *testing.T) {
	Find(t)
	var dir string
	t.Run("dump", func(t *testing.T) {
		dir = t.TempDir()
		page := filepath.Join(dir, "page.html")
		if err := os.WriteFile(page, []byte(`<!doctype html><title>t</title><p id="x">hello</p><script>document.getElementById("x").textContent += " from the browser"</script>`), 0o644); err != nil {
			t.Fatal(err)
		}
		if dom := DumpDOM(t, dir, "file://"+page); !strings.Contains(dom, "hello from the browser") {
			t.Errorf("the DOM Chromium built does not say %q:\n%.2000s", "hello from the browser", dom)
		}
	})
	if pids := ours(-1, dir); len(pids) > 0 {
		t.Errorf("processes %v naming %s are still running after its test ended", pids, dir)
	}
}
