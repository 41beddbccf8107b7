package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/statuspage"
)

// serveCmd serves the read-only status page until the command's context
// ends (SIGINT, SIGTERM).
func (a *app) serveCmd() *cobra.Command {
	var (
		listen string
		public bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a read-only status page: readiness, SLOs, recent drills, runs in progress and gates waiting",
		Long: `Serve one read-only HTML page, read from Temporal on every request: each
runbook's readiness (ready or not, since when, the failing checks and
why), its SLOs, its last drills, the runs in progress and the approval
gates waiting, each with the drctl approve command that decides it. The
page runs no script and fetches nothing; it reloads itself every 30s.

It listens on loopback unless --public is given: it cannot change
anything, but it shows runbook names, who started and approved runs, and
raw errors from every provider, so put it behind a proxy that
authenticates before exposing it.`,
		Example: `  drctl serve
  drctl serve --listen 127.0.0.1:9000
  drctl serve --listen 0.0.0.0:8090 --public   # behind an authenticating proxy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := statuspage.CheckListen(listen, public); err != nil {
				return err
			}
			ctx := cmd.Context()
			op, err := a.operator(ctx)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("status page: %w", err)
			}
			// "localhost" is taken on trust above; what was bound is checked.
			if tcp, ok := ln.Addr().(*net.TCPAddr); !public && (!ok || !tcp.IP.IsLoopback()) {
				_ = ln.Close()
				return fmt.Errorf("--listen %s bound %s, which is not loopback; pass --public to allow it", listen, ln.Addr())
			}
			srv := &http.Server{
				Handler:           statuspage.New(op, statuspage.Options{AnyHost: public}),
				ReadHeaderTimeout: 5 * time.Second,
				ReadTimeout:       10 * time.Second,
				WriteTimeout:      30 * time.Second,
				IdleTimeout:       time.Minute,
			}
			c, _ := a.config()
			fmt.Fprintf(cmd.OutOrStdout(), "status page: http://%s/ (read-only, from Temporal at %s; Ctrl-C stops it)\n", ln.Addr(), c.Temporal.Address)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("status page on %s: %w", ln.Addr(), err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close() // a read still waiting on Temporal: cut it
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "host:port to serve the page on (loopback unless --public)")
	f.BoolVar(&public, "public", false, "allow a non-loopback --listen address (the page shows runbook names, identities and errors)")
	return cmd
}
