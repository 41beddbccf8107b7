package statuspage

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/drctl/drctl/internal/operator"
)

//go:embed page.html.tmpl
var templates embed.FS

// page is the status page; html/template escapes every value for the
// context it lands in.
var page = template.Must(template.ParseFS(templates, "page.html.tmpl"))

// Source reads what the page shows. *operator.Operator is one; every
// method only reads Temporal visibility (no worker needed).
type Source interface {
	Readiness(ctx context.Context, runbook string) ([]operator.ReadinessStatus, error)
	SLOs(ctx context.Context, runbook string) ([]operator.SLO, error)
	Drills(ctx context.Context, runbook string, limit int) ([]operator.Drill, error)
	ListWith(ctx context.Context, f operator.ListFilter) ([]operator.Summary, error)
}

var _ Source = (*operator.Operator)(nil)

// Options tune a Handler. The zero value is ready to use.
type Options struct {
	// Timeout bounds the Temporal reads of one request. Default 10s.
	Timeout time.Duration
	// Refresh is how often the browser reloads the page. Default 30s;
	// negative: never.
	Refresh time.Duration
	// Drills is how many recent drills are shown per runbook. Default 5.
	Drills int
	// Runs bounds how many runs in progress are read.
	// Default 500.
	Runs int
	// Now is the clock the page's "ago" columns are measured with.
	// Default time.Now.
	Now func() time.Time
	// AnyHost answers requests whatever their Host header names. Off (the
	// loopback default): only a loopback name or address is answered, so
	// a web page that rebinds its own DNS name to 127.0.0.1 cannot read
	// the page through the operator's browser.
	AnyHost bool
}

// Handler serves the status page on "/".
type Handler struct {
	src Source
	o   Options
}

var _ http.Handler = (*Handler)(nil)

// New returns the status page of src.
func New(src Source, o Options) *Handler {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Refresh == 0 {
		o.Refresh = 30 * time.Second
	}
	if o.Drills <= 0 {
		o.Drills = 5
	}
	if o.Runs <= 0 {
		o.Runs = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{src: src, o: o}
}

// ContentSecurityPolicy is sent with every answer: inline styles only; no
// script, no frame, no fetch, no form, no base URL.
const ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP renders the page from what Source reads now. A read that fails
// leaves its section empty, adds a line to the error banner and makes the
// status 503.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-store")
	if !h.o.AnyHost {
		host := r.Host
		if hh, _, err := net.SplitHostPort(r.Host); err == nil {
			host = hh
		}
		if !IsLoopback(strings.Trim(host, "[]")) {
			http.Error(w, "misdirected request: this status page answers on loopback names only", http.StatusMisdirectedRequest)
			return
		}
	}
	if r.URL.Path != "/" {
		http.Error(w, "not found: the status page is at /", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the status page is read-only (GET, HEAD)", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()
	v := h.read(ctx)
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		http.Error(w, "render the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(b.Len()))
	if len(v.Errors) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b.Bytes())
}

// read gathers everything the page shows; each failed read is one line of
// the banner.
func (h *Handler) read(ctx context.Context) *view {
	var d data
	var errs []string
	fail := func(what string, err error) {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (no answer from Temporal within %s)", err, h.o.Timeout)
		}
		errs = append(errs, what+": "+err.Error())
	}
	var err error
	if d.Readiness, err = h.src.Readiness(ctx, ""); err != nil {
		fail("readiness", err)
	}
	if d.SLOs, err = h.src.SLOs(ctx, ""); err != nil {
		fail("SLOs", err)
	}
	var drillErr error
	var failed []string
	for _, rb := range runbookNames(d.Readiness, d.SLOs) {
		ds, err := h.src.Drills(ctx, rb, h.o.Drills)
		if err != nil {
			// One line for all: a server that is down fails every one.
			drillErr, failed = cmp.Or(drillErr, err), append(failed, rb)
			continue
		}
		d.Drills = append(d.Drills, ds...)
	}
	if drillErr != nil {
		fail("drills of "+strings.Join(failed, ", "), drillErr)
	}
	if d.Runs, err = h.src.ListWith(ctx, operator.ListFilter{Limit: h.o.Runs, State: "running"}); err != nil {
		fail("runs", err)
	}
	return newView(d, errs, h.o.Now(), h.o.Refresh)
}

// CheckListen refuses a listen address that is not on loopback unless
// public is set: the page is read-only, but it shows runbook names, who
// started runs and approved gates, and raw errors from every provider.
func CheckListen(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w (write host:port, e.g. 127.0.0.1:8090)", addr, err)
	}
	if public || IsLoopback(host) {
		return nil
	}
	where := host + " is not a loopback address"
	if host == "" {
		where = "that is every interface, not loopback"
	}
	return fmt.Errorf("--listen %s: %s; the page is read-only but shows runbook names, identities and errors to whoever reaches it. Put it behind an authenticating proxy and pass --public, or listen on 127.0.0.1", addr, where)
}

// IsLoopback says whether host (an IP address or "localhost") is a
// loopback address. Other names are not trusted to resolve to one.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
