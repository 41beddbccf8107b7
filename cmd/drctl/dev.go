package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/config"
	"github.com/drctl/drctl/internal/devserver"
	drworker "github.com/drctl/drctl/worker"
)

func (a *app) devCmd() *cobra.Command {
	var (
		stateDir string
		port     int
		uiPort   int
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local Temporal dev server (project-local bin/temporal) and a worker until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(stateDir, 0o755); err != nil {
				return err
			}
			hostPort := ""
			if port != 0 {
				hostPort = fmt.Sprintf("127.0.0.1:%d", port)
			}
			ui := ""
			if uiPort != 0 {
				ui = fmt.Sprint(uiPort)
			}
			log, err := os.OpenFile(filepath.Join(stateDir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			defer log.Close()
			srv, err := devserver.Start(cmd.Context(), devserver.Options{
				DBFile: filepath.Join(stateDir, "temporal.db"), HostPort: hostPort, UI: true, UIPort: ui, Log: log,
			})
			if err != nil {
				if _, ferr := devserver.FindBinary(); ferr != nil {
					return err
				}
				return fmt.Errorf("%w (is the port taken? try --port 0 for any free one)", err)
			}
			defer srv.Stop()
			c.Temporal.Address = srv.Address
			if err := a.runWorkerIn(cmd.Context(), c, func() {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Temporal dev server on %s (state in %s), web UI %s\n", srv.Address, stateDir, uiURL(srv.Address, uiPort))
				fmt.Fprintf(out, "a worker is polling task queue %q. In another terminal:\n", c.Temporal.TaskQueue)
				fmt.Fprintf(out, "  export DRCTL_TEMPORAL_ADDRESS=%s\n  drctl run runbooks/demo.yaml --set service_url=http://HOST/healthz\n", srv.Address)
				fmt.Fprintln(out, "Ctrl-C stops the worker and the server; runs resume when you start it again.")
			}); err != nil {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".drctl/dev", "where the dev server keeps its database and log")
	cmd.Flags().IntVar(&port, "port", 7233, "frontend port on 127.0.0.1 (0: any free port)")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "web UI port (0: any free port)")
	return cmd
}

// uiFor is the web UI address the dev server uses when no UI port is given:
// the frontend port plus 1000.
func uiFor(frontend string) string {
	host, port, err := net.SplitHostPort(frontend)
	if err != nil {
		return "(unknown)"
	}
	var p int
	fmt.Sscan(port, &p)
	return fmt.Sprintf("http://%s:%d", host, p+1000)
}

func uiURL(frontend string, uiPort int) string {
	if uiPort == 0 {
		return uiFor(frontend)
	}
	host, _, _ := net.SplitHostPort(frontend)
	return fmt.Sprintf("http://%s:%d", host, uiPort)
}

// runWorkerIn runs an in-process worker against c until ctx ends; ready is
// called once it polls.
func (a *app) runWorkerIn(ctx context.Context, c config.Config, ready func()) error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	cl, err := drworker.Dial(ctx, c, drworker.DialOptions{})
	if err != nil {
		return err
	}
	defer cl.Close()
	w := drworker.New(cl, c, reg)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	ready()
	<-ctx.Done()
	return nil
}
