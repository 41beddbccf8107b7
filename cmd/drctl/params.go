package main

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/drctl/drctl/runbooks"
)

// runParams merges a --params file with --set values (which win). The file
// is a YAML map of NAME: VALUE and may serve several runbooks: names rb does
// not declare are ignored there, while a --set of an undeclared name is an
// error, as before.
func runParams(rb *runbooks.Runbook, file string, sets []string) (map[string]string, error) {
	params, err := parseSets(sets)
	if err != nil || file == "" {
		return params, err
	}
	b, err := runbooks.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--params: %w", err)
	}
	var fromFile map[string]string
	if err := yaml.Unmarshal(b, &fromFile); err != nil {
		return nil, fmt.Errorf("--params %s: write a YAML map of NAME: VALUE: %w", file, err)
	}
	for k, v := range fromFile {
		if _, declared := rb.Param(k); !declared {
			continue
		}
		if _, set := params[k]; !set {
			params[k] = v
		}
	}
	return params, nil
}

const paramsFlagDoc = "YAML file of parameters NAME: VALUE, e.g. .drctl/lab/params.yaml (names the runbook does not declare are ignored; --set wins)"

// declaredSets keeps the --set values whose name rb declares: a drill's
// failback runbook takes what it needs of the drill's parameters.
func declaredSets(rb *runbooks.Runbook, sets []string) []string {
	var out []string
	for _, kv := range sets {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := rb.Param(name); ok {
			out = append(out, kv)
		}
	}
	return out
}
