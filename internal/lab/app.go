package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/miekg/dns"
)

// SiteHeader carries the name of the site whose app answered.
const SiteHeader = "X-Site"

// AppConfig configures one site's app.
type AppConfig struct {
	Site   string // its site's name
	Listen string // host:port
	// DBHost is the database's DNS name, resolved through Resolver (the
	// zone's authoritative server, host:port) for every new connection,
	// without caching: when the name moves, new connections follow.
	DBHost   string
	DBPort   int
	User     string
	Password string
	Database string
	Resolver string
	// Sites maps database addresses to site names, for answers that say
	// where a write landed.
	Sites map[string]string
}

// App is one site's application server: POST /write inserts a row and
// answers its id once committed; GET /healthz writes a probe row and
// answers 200 only if that worked, naming the app's site and the site of
// the database that took the write (JSON fields site and db_site); GET
// /count counts the rows.
type App struct {
	cfg  AppConfig
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	pool *connPool
}

// WriteAnswer is POST /write's answer.
type WriteAnswer struct {
	ID     int64  `json:"id"`
	Site   string `json:"site"`
	DBSite string `json:"db_site"`
}

// HealthAnswer is GET /healthz's answer.
type HealthAnswer struct {
	Site   string `json:"site"`
	DBSite string `json:"db_site,omitempty"`
	Error  string `json:"error,omitempty"`
}

func startApp(cfg AppConfig) (*App, error) {
	dbCfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=2",
		cfg.DBHost, cfg.DBPort, cfg.User, cfg.Database))
	if err != nil {
		return nil, fmt.Errorf("lab: app %s: %w", cfg.Site, err)
	}
	dbCfg.Password = cfg.Password
	dbCfg.LookupFunc = lookupVia(cfg.Resolver)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("lab: app %s: listen: %w", cfg.Site, err)
	}
	a := &App{cfg: cfg, ln: ln, done: make(chan struct{}), pool: &connPool{cfg: dbCfg, idle: make(chan *pgx.Conn, 8)}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /write", a.write)
	mux.HandleFunc("GET /healthz", a.health)
	mux.HandleFunc("GET /count", a.count)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(SiteHeader, cfg.Site)
		fmt.Fprintln(w, cfg.Site)
	})
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(ln)
	}()
	return a, nil
}

// Addr is the app's host:port.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Site is the app's site.
func (a *App) Site() string { return a.cfg.Site }

// Close stops serving and closes the app's database connections.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if err != nil {
		err = a.srv.Close()
	}
	<-a.done
	a.pool.close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("lab: close app %s: %w", a.cfg.Site, err)
	}
	return nil
}

func (a *App) write(w http.ResponseWriter, r *http.Request) {
	var ans WriteAnswer
	var addr string
	err := a.pool.do(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `INSERT INTO writes (site) VALUES ($1) RETURNING id, host(inet_server_addr())`, a.cfg.Site).Scan(&ans.ID, &addr)
	})
	if err != nil {
		a.reply(w, http.StatusServiceUnavailable, HealthAnswer{Site: a.cfg.Site, Error: err.Error()})
		return
	}
	ans.Site, ans.DBSite = a.cfg.Site, a.cfg.Sites[addr]
	a.reply(w, http.StatusOK, ans)
}

func (a *App) health(w http.ResponseWriter, r *http.Request) {
	ans := HealthAnswer{Site: a.cfg.Site}
	var addr string
	err := a.pool.do(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `INSERT INTO probe (site, at) VALUES ($1, now())
			ON CONFLICT (site) DO UPDATE SET at = excluded.at RETURNING host(inet_server_addr())`, a.cfg.Site).Scan(&addr)
	})
	if err != nil {
		ans.Error = err.Error()
		a.reply(w, http.StatusServiceUnavailable, ans)
		return
	}
	ans.DBSite = a.cfg.Sites[addr]
	a.reply(w, http.StatusOK, ans)
}

func (a *App) count(w http.ResponseWriter, r *http.Request) {
	var n, maxID int64
	err := a.pool.do(r.Context(), func(c *pgx.Conn) error {
		return c.QueryRow(r.Context(), `SELECT count(*), coalesce(max(id), 0) FROM writes`).Scan(&n, &maxID)
	})
	if err != nil {
		a.reply(w, http.StatusServiceUnavailable, HealthAnswer{Site: a.cfg.Site, Error: err.Error()})
		return
	}
	a.reply(w, http.StatusOK, map[string]any{"site": a.cfg.Site, "rows": n, "max_id": maxID})
}

func (a *App) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set(SiteHeader, a.cfg.Site)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// connPool keeps a few idle connections. A connection that saw any error
// is closed, never reused: after a fence or a failover the next one
// resolves the database's name again.
type connPool struct {
	cfg  *pgx.ConnConfig
	idle chan *pgx.Conn
	mu   sync.Mutex
	shut bool
}

func (p *connPool) do(ctx context.Context, f func(*pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var c *pgx.Conn
	select {
	case c = <-p.idle:
		// An idle connection may have been terminated meanwhile (a fence
		// does that); a failed ping costs nothing, a failed write a row.
		if err := c.Ping(ctx); err != nil {
			c.Close(context.Background())
			c = nil
		}
	default:
	}
	if c == nil {
		var err error
		if c, err = pgx.ConnectConfig(ctx, p.cfg); err != nil {
			return err
		}
	}
	if err := f(c); err != nil {
		c.Close(context.Background())
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		c.Close(context.Background())
		return nil
	}
	select {
	case p.idle <- c:
	default:
		c.Close(context.Background())
	}
	return nil
}

func (p *connPool) close() {
	p.mu.Lock()
	p.shut = true
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			c.Close(context.Background())
		default:
			return
		}
	}
}

// lookupVia resolves A records by asking server (host:port) directly, the
// way a client of the zone's own resolver would, without caching.
func lookupVia(server string) pgconn.LookupFunc {
	return func(ctx context.Context, host string) ([]string, error) {
		if ip := net.ParseIP(host); ip != nil {
			return []string{host}, nil
		}
		return LookupA(ctx, server, host)
	}
}

// LookupA asks server (host:port) for name's A records.
func LookupA(ctx context.Context, server, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("resolve %s via %s: %w", name, server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("resolve %s via %s: %s", name, server, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolve %s via %s: no A record", name, server)
	}
	return out, nil
}
