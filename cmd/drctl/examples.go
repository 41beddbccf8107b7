package main

import "github.com/spf13/cobra"

// examples are the Examples of commands that do not set their own: one
// place to read how every command is called (TestEveryCommandHasAnExample
// holds each command to having one).
var examples = map[string]string{
	"drctl validate": `  drctl validate runbooks/*.yaml
  drctl validate --mode drill runbooks/site-failover.yaml -o json`,
	"drctl schema":  `  drctl schema > runbook.schema.json`,
	"drctl version": `  drctl version -o json`,
	"drctl plan": `  drctl plan runbooks/site-failover.yaml --params prod.yaml
  drctl plan runbooks/demo.yaml --set service_url=http://127.0.0.1:8080/healthz -o json`,
	"drctl run": `  drctl run runbooks/site-failover.yaml --params prod.yaml --reason "east lost power"
  drctl run runbooks/site-failover.yaml --params prod.yaml --mode drill --reason "monthly drill"
  drctl run runbooks/demo.yaml --set service_url=http://127.0.0.1:8080/healthz --yes --detach -o json`,
	"drctl status": `  drctl status app-site
  drctl status 0195c2a4-7c1e-7b39-9d1a-4e2f6b8c0a11 -o json   # an older run, by its run ID`,
	"drctl watch": `  drctl watch app-site`,
	"drctl approve": `  drctl approve app-site approve-promotion --reason "west is ready"
  drctl approve app-site approve-promotion --reason ok --sign-key ~/.ssh/id_ed25519.pub`,
	"drctl reject": `  drctl reject app-site approve-promotion --reason "east is coming back"`,
	"drctl pause":  `  drctl pause app-site --reason "checking replication"`,
	"drctl resume": `  drctl resume app-site`,
	"drctl abort": `  drctl abort app-site --reason "primary is back"
  drctl abort app-site --force --reason "no worker will come"   # no compensation; frees the lock`,
	"drctl history export": `  drctl history export app-site -f run.json`,
	"drctl replay":         `  drctl replay tests/histories/*.json`,
	"drctl worker": `  drctl worker --config /etc/drctl/drctl.yaml
  drctl worker --site east          # also runs what needs east's local reach (pg_rewind, haproxy's socket)`,
	"drctl dev":              `  drctl dev &                      # dev server on 127.0.0.1:7233 and a worker`,
	"drctl demo":             `  drctl demo                       # the lab, a site failover and its failback`,
	"drctl lab up":           `  drctl lab up && drctl lab status`,
	"drctl lab down":         `  drctl lab down`,
	"drctl lab status":       `  drctl lab status -o json`,
	"drctl lab deps":         `  drctl lab deps --tests`,
	"drctl slack serve":      `  drctl slack serve --config /etc/drctl/drctl.yaml`,
	"drctl drill list":       `  drctl drill list -o json`,
	"drctl drill pause":      `  drctl drill pause site-failover --reason "change freeze"`,
	"drctl drill resume":     `  drctl drill resume site-failover`,
	"drctl drill trigger":    `  drctl drill trigger site-failover`,
	"drctl drill delete":     `  drctl drill delete site-failover`,
	"drctl readiness check":  `  drctl readiness check site-failover && drctl readiness site-failover`,
	"drctl readiness pause":  `  drctl readiness pause site-failover`,
	"drctl readiness resume": `  drctl readiness resume site-failover`,
	"drctl readiness remove": `  drctl readiness remove site-failover`,
}

// addExamples sets each command's Example from examples unless it has one.
func addExamples(c *cobra.Command) {
	if ex, ok := examples[c.CommandPath()]; ok && c.Example == "" {
		c.Example = ex
	}
	for _, sub := range c.Commands() {
		addExamples(sub)
	}
}
