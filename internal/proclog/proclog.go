// Package proclog holds the two small writers the component harnesses
// (pglab, dnslab, haproxylab) use for their servers' output: one that prefixes each
// line with the component's name on a shared log, and one that keeps the
// last few kilobytes for error messages.
package proclog

import (
	"io"
	"strings"
	"sync"
)

// PrefixWriter writes whole lines to W with a prefix. Writers sharing one W
// share one Mu, so their lines never interleave.
type PrefixWriter struct {
	Mu     *sync.Mutex
	W      io.Writer
	Prefix string
}

func (p *PrefixWriter) Write(line []byte) (int, error) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if _, err := io.WriteString(p.W, p.Prefix+string(line)); err != nil {
		return 0, err
	}
	return len(line), nil
}

// Tail keeps the last few kilobytes written to it.
type Tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 16 << 10

// Write keeps b, dropping what falls out of the window. It never fails.
func (t *Tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(b), nil
}

// Reset forgets what was kept.
func (t *Tail) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// LastLines returns the last n lines kept.
func (t *Tail) LastLines(n int) string {
	return strings.TrimSpace(LastLines(t.String(), n))
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
