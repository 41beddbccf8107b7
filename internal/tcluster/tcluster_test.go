//go:build linux

package tcluster

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"gopkg.in/yaml.v3"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

// TestConfigRenders: the generated configuration is YAML once the
// server's own template (the password from the environment) is rendered,
// and gives every service its ports.
func TestConfigRenders(t *testing.T) {
	sc := serverConfig{
		LogLevel: "info", Shards: 4, PGAddress: "127.0.0.1:5432", PGUser: "u",
		Certs:   certFiles{CA: "/d/ca.pem", ServerCert: "/d/s.pem", ServerKey: "/d/s-key.pem", ClientCert: "/d/c.pem", ClientKey: "/d/c-key.pem"},
		Dynamic: "/d/dynamicconfig.yaml",
		Ports:   map[string]servicePorts{},
	}
	for i, s := range Services {
		sc.Ports[string(s)] = servicePorts{GRPC: 1000 + i, Membership: 2000 + i}
	}
	text, err := sc.render()
	if err != nil {
		t.Fatal(err)
	}
	rendered := strings.ReplaceAll(string(text), `{{ env "`+passwordEnv+`" | quote }}`, `"secret"`)
	if strings.Contains(rendered, "{{") {
		t.Fatalf("unrendered template left:\n%s", rendered)
	}
	var doc struct {
		Persistence struct {
			NumHistoryShards int `yaml:"numHistoryShards"`
		} `yaml:"persistence"`
		Services map[string]struct {
			RPC struct {
				GRPCPort       int `yaml:"grpcPort"`
				MembershipPort int `yaml:"membershipPort"`
			} `yaml:"rpc"`
		} `yaml:"services"`
		Global struct {
			TLS struct {
				Frontend struct {
					Server struct {
						RequireClientAuth bool     `yaml:"requireClientAuth"`
						ClientCAFiles     []string `yaml:"clientCaFiles"`
					} `yaml:"server"`
				} `yaml:"frontend"`
			} `yaml:"tls"`
		} `yaml:"global"`
		ClusterMetadata struct {
			ClusterInformation map[string]struct {
				RPCAddress string `yaml:"rpcAddress"`
			} `yaml:"clusterInformation"`
		} `yaml:"clusterMetadata"`
	}
	if err := yaml.Unmarshal([]byte(rendered), &doc); err != nil {
		t.Fatalf("%v\n%s", err, rendered)
	}
	if doc.Persistence.NumHistoryShards != 4 || len(doc.Services) != 4 {
		t.Fatalf("shards %d, services %d", doc.Persistence.NumHistoryShards, len(doc.Services))
	}
	for i, s := range Services {
		if got := doc.Services[string(s)].RPC; got.GRPCPort != 1000+i || got.MembershipPort != 2000+i {
			t.Errorf("%s: ports %+v", s, got)
		}
	}
	if fe := doc.Global.TLS.Frontend.Server; !fe.RequireClientAuth || !slices.Equal(fe.ClientCAFiles, []string{"/d/ca.pem"}) {
		t.Errorf("frontend TLS: %+v", fe)
	}
	if a := doc.ClusterMetadata.ClusterInformation["active"].RPCAddress; a != "127.0.0.1:"+strconv.Itoa(1000+slices.Index(Services, Frontend)) {
		t.Errorf("rpcAddress %q", a)
	}
}

// TestDynamicConfigFollowsTheDevServer: the cluster is tuned with the
// dev server's values, and without them when Untuned.
func TestDynamicConfigFollowsTheDevServer(t *testing.T) {
	tuned, err := dynamicConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	untuned, err := dynamicConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	var tv, uv map[string][]struct {
		Value any `yaml:"value"`
	}
	if err := yaml.Unmarshal(tuned, &tv); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(untuned, &uv); err != nil {
		t.Fatal(err)
	}
	if v := tv["history.transferProcessorMaxPollRPS"]; len(v) != 1 || v[0].Value != 1000 {
		t.Errorf("transferProcessorMaxPollRPS = %+v", v)
	}
	if v := tv["history.timerProcessorMaxTimeShift"]; len(v) != 1 || v[0].Value != "100ms" {
		t.Errorf("timerProcessorMaxTimeShift = %+v", v)
	}
	if len(tv) != len(devServerDefaults)+len(devserver.TunedArgs)/2 {
		t.Errorf("tuned has %d keys", len(tv))
	}
	if _, ok := uv["matching.numTaskqueueReadPartitions"]; ok || len(uv) != len(devServerDefaults) {
		t.Errorf("untuned: %v", uv)
	}
}

// TestStartKillRestartStop starts a cluster, checks what Start promises,
// kills and restarts one service, and checks that Stop leaves no process.
func TestStartKillRestartStop(t *testing.T) {
	ctx := testwait.Context(t)
	began := time.Now()
	c, err := Start(ctx, Options{})
	if errors.Is(err, ErrNotInstalled) && os.Getenv("DRCTL_CI") == "" {
		t.Skip("the Temporal server and PostgreSQL 15 are needed (`make cluster`, apt-get install postgresql-15); CI sets DRCTL_CI=1 and fails instead: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster started in %s at %s", time.Since(began).Round(time.Millisecond), c.Address)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	pids := map[Service]int{}
	for _, s := range Services {
		if pids[s] = c.PID(s); pids[s] == 0 {
			t.Fatalf("%s is not running", s)
		}
	}
	if len(map[int]bool{pids[History]: true, pids[Matching]: true, pids[Frontend]: true, pids[Worker]: true}) != 4 {
		t.Fatalf("the services do not run as four processes: %v", pids)
	}
	sa, err := c.Client().OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: c.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range workflows.SearchAttributes {
		if _, ok := sa.CustomAttributes[a.Name]; !ok {
			t.Errorf("search attribute %s is not registered: %v", a.Name, sa.CustomAttributes)
		}
	}

	if err := c.Kill(Matching); err != nil {
		t.Fatal(err)
	}
	if c.PID(Matching) != 0 || alive(pids[Matching]) {
		t.Fatalf("matching (pid %d) still runs after Kill", pids[Matching])
	}
	if err := c.Restart(ctx, Matching); err != nil {
		t.Fatal(err)
	}
	if c.PID(Matching) == 0 || c.PID(Matching) == pids[Matching] {
		t.Fatalf("matching pid %d after Restart (was %d)", c.PID(Matching), pids[Matching])
	}
	pids[Matching] = c.PID(Matching)
	testwait.For(t, "the frontend to answer after matching's restart", func() bool {
		_, err := c.Client().CheckHealth(context.Background(), nil)
		return err == nil
	})

	stopBegan := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("cluster stopped in %s", time.Since(stopBegan).Round(time.Millisecond))
	for s, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after Stop", s, pid)
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s left behind: %v", c.Dir, err)
	}
}

// alive reports whether a process with pid exists (the harness reaped its
// children, so a dead one is gone from the process table).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
