package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/drctl/drctl/internal/chromium"
)

// TestHTMLInChromium opens the page in headless Chromium and reads back the
// DOM it built: the verdict, every step and one timeline bar per step and
// compensation must be there, as elements the browser parsed, not as text
// in a file.
func TestHTMLInChromium(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := HTML(&b, drill()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := chromium.DumpDOM(t, dir, "file://"+page)

	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	// --dump-dom gives the document the browser built: the SVG must be
	// there as elements, with its bars and labels.
	svgs := chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "svg" })
	rects := chromium.FindAll(doc, func(n *html.Node) bool { return n.Data == "rect" })
	if len(svgs) == 0 || len(rects) == 0 {
		t.Fatalf("Chromium's DOM has %d svg and %d rect elements; want the timelines (%d bytes of DOM):\n%.2000s", len(svgs), len(rects), len(dom), dom)
	}
	checkPage(t, doc, drill(), "FAILED")
	text := chromium.Text(doc)
	for _, want := range []string{"drctl run report: site-failover", "Before and after the drill", "DIFFERENT", "Failback run: failback", "bob, carol"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page Chromium shows does not say %q", want)
		}
	}
}
