package chromium

import (
	"strings"

	"golang.org/x/net/html"
)

// What a page shows, read from its DOM (the one DumpDOM returns, or a
// page's own HTML parsed with html.Parse).

// FindAll returns the elements below n that match, in document order.
func FindAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
		out = append(out, FindAll(c, match)...)
	}
	return out
}

// Attr is an element's attribute, "" when it has none.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Text is the text below n, as it is in the DOM.
func Text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(Text(c))
	}
	return b.String()
}
