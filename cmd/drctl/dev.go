package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/lab"
	drworker "github.com/drctl/drctl/worker"
)

func (a *app) devCmd() *cobra.Command {
	var (
		stateDir string
		port     int
		uiPort   int
		sites    []string
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
			switch {
			case len(sites) > 0:
				c.Worker.Sites = sites
			case len(c.Worker.Sites) == 0:
				c.Worker.Sites = lab.Sites // one machine standing for every site of the lab
			}
			if err := c.Validate(); err != nil {
				return err
			}
			return drworker.Serve(cmd.Context(), c, drworker.Options{Ready: func(drworker.Serving) {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Temporal dev server on %s (state in %s), web UI %s\n", srv.Address, stateDir, srv.UIURL)
				fmt.Fprintf(out, "a worker of sites %s is polling task queue %q. In another terminal:\n", strings.Join(c.Worker.Sites, ", "), c.Temporal.TaskQueue)
				fmt.Fprintf(out, "  export DRCTL_TEMPORAL_ADDRESS=%s\n  drctl run runbooks/demo.yaml --set service_url=http://HOST/healthz\n", srv.Address)
				fmt.Fprintln(out, "Ctrl-C stops the worker and the server; runs resume when you start it again.")
			}})
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".drctl/dev", "where the dev server keeps its database and log")
	cmd.Flags().IntVar(&port, "port", 7233, "frontend port on 127.0.0.1 (0: any free port)")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "web UI port (0: any free port)")
	cmd.Flags().StringSliceVar(&sites, "site", nil, "sites the worker runs in (default: worker.sites, else the lab's: east, west)")
	return cmd
}
