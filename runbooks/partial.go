package runbooks

import "strings"

// unreadName stands, in a path, for a name that could not be read (a key
// that is not text): "params.\x00" says some param's name is unknown.
const unreadName = "\x00"

// brokenParts names, by path (as in positions), the parts of a runbook file
// that were not read because of a shape problem. Validate skips what
// depends on them, so that every finding about a half-read runbook is true
// of the file as written (see Load).
type brokenParts map[string]bool

func (b *brokenParts) mark(path string) {
	if *b == nil {
		*b = brokenParts{}
	}
	(*b)[path] = true
}

// unread says whether the part at path, or a part enclosing it, was not
// read: its value in the Runbook is absent or partial.
func (b brokenParts) unread(path string) bool {
	for {
		if b[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// damaged says whether anything at, around or inside path was not read.
func (b brokenParts) damaged(path string) bool {
	if b.unread(path) {
		return true
	}
	// Deterministic: the answer does not depend on the order.
	//workflowcheck:ignore
	for p := range b {
		if path == "" || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// namesUnread says whether some name in the mapping at path may be missing
// from the Runbook: the mapping was not read, or one of its keys was not.
func (b brokenParts) namesUnread(path string) bool {
	return b.unread(path) || b[joinKey(path, unreadName)]
}
