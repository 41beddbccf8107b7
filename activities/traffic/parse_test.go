package traffic

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/drctl/drctl/activities"
)

// The testdata files are answers captured from HAProxy 2.6 (Debian 12):
// backend app (health checked) with east1 ready and up, west1 "disabled" in
// the configuration then set ready with no site behind it (leaving
// maintenance), north1 set to drain, south1 set to maint (weight 20);
// backend api (not checked) with east1 at weight 50 and west1 disabled;
// backend "empty" has no servers.
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseServersState(t *testing.T) {
	snap, err := ParseServersState(readTestdata(t, "servers-state.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(snap.Backends(), ","); got != "api,app" {
		t.Errorf("backends %q, want api,app (a backend without servers is not listed)", got)
	}
	tests := []struct {
		backend, server string
		mode            string
		up              bool
		weight          int
	}{
		{"app", "east1", ModeReady, true, 1},
		{"app", "west1", ModeMaint, false, 1},   // admin 5: forced + configured maintenance
		{"app", "north1", ModeDrain, true, 1},   // admin 8
		{"app", "south1", ModeMaint, false, 20}, // admin 1, op stopped
		{"api", "east1", ModeReady, true, 50},   // not checked: op state alone
		{"api", "west1", ModeMaint, false, 1},
	}
	for _, tc := range tests {
		sv, ok := snap.Server(tc.backend, tc.server)
		if !ok {
			t.Errorf("%s/%s missing", tc.backend, tc.server)
			continue
		}
		if sv.Mode() != tc.mode || sv.Up() != tc.up || sv.Weight != tc.weight || sv.Sessions != -1 {
			t.Errorf("%s: mode %s up %t weight %d sessions %d, want %s %t %d -1 (%+v)", sv.Ref(), sv.Mode(), sv.Up(), sv.Weight, sv.Sessions, tc.mode, tc.up, tc.weight, sv)
		}
	}
	if got := strings.Join(snap.serverNames("app"), ","); got != "east1,west1,north1,south1" {
		t.Errorf("app servers %q, want HAProxy's order", got)
	}
}

// A checked server leaving maintenance is reported running (op 2) before
// any check has run (check result 0); it is not up until a check passes.
func TestLeavingMaintenanceIsNotUpUntilChecked(t *testing.T) {
	snap, err := ParseServersState(readTestdata(t, "servers-state-leaving-maint.txt"))
	if err != nil {
		t.Fatal(err)
	}
	west, _ := snap.Server("app", "west1")
	if west.Op != OpRunning || west.Mode() != ModeReady {
		t.Fatalf("west1 = %+v, want op running and ready (the captured state)", west)
	}
	if west.Up() {
		t.Error("west1 counts as up before any health check passed")
	}
	if east, _ := snap.Server("app", "east1"); !east.Up() {
		t.Errorf("east1 (check passed) not up: %+v", east)
	}
}

func TestAdminModes(t *testing.T) {
	tests := []struct {
		admin Admin
		mode  string
	}{
		{0, ModeReady},
		{AdminConfigDisabled, ModeReady}, // "disabled" in the config, since set ready
		{AdminForcedMaint, ModeMaint},
		{AdminForcedMaint | AdminConfigDisabled, ModeMaint},
		{AdminInheritedMaint, ModeMaint},
		{AdminResolveMaint, ModeMaint},
		{AdminForcedDrain, ModeDrain},
		{AdminInheritedDrain, ModeDrain},
		{AdminForcedMaint | AdminForcedDrain, ModeMaint},
		{0x40, ModeReady}, // FQDN set over the CLI: not a state
	}
	for _, tc := range tests {
		if got := (Server{Admin: tc.admin}).Mode(); got != tc.mode {
			t.Errorf("admin %#x: mode %s, want %s", int(tc.admin), got, tc.mode)
		}
	}
}

func TestParseServersStateRejects(t *testing.T) {
	header := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n"
	for name, answer := range map[string]string{
		"unknown backend":   "Can't find backend.\n",
		"permission denied": "Permission denied\n",
		"other version":     "2\n# be_id be_name srv_id srv_name\n",
		"missing column":    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state\n",
		"short line":        header + "3 app 1 east1 127.0.0.1 2 0\n",
		"not a number":      header + "3 app 1 east1 127.0.0.1 two 0 1 1\n",
		"empty":             "",
	} {
		if _, err := ParseServersState(answer); err == nil {
			t.Errorf("%s: parsed %q", name, answer)
		}
	}
}

func TestParseStat(t *testing.T) {
	rows, err := ParseStat(readTestdata(t, "stat.csv"))
	if err != nil {
		t.Fatal(err)
	}
	byRef := map[string]StatRow{}
	for _, r := range rows {
		byRef[r.Proxy+"/"+r.Server] = r
	}
	for ref, status := range map[string]string{
		"app/east1": "UP", "app/west1": "MAINT", "app/north1": "DRAIN", "app/south1": "MAINT",
		"api/east1": "no check", "app/BACKEND": "UP", "fe/FRONTEND": "OPEN",
	} {
		r, ok := byRef[ref]
		if !ok {
			t.Errorf("%s missing", ref)
			continue
		}
		if r.Status != status || r.Sessions != 0 || r.Queued != 0 {
			t.Errorf("%s: %+v, want status %q and no sessions", ref, r, status)
		}
	}
	for name, answer := range map[string]string{
		"not csv":        "Unknown command\n",
		"missing column": "# pxname,svname,qcur\napp,east1,0\n",
		"bad number":     "# pxname,svname,qcur,scur,status\napp,east1,0,x,UP\n",
	} {
		if _, err := ParseStat(answer); err == nil {
			t.Errorf("%s: parsed %q", name, answer)
		}
	}
}

type answers map[string]string

func (a answers) Command(_ context.Context, cmd string) (string, error) {
	if out, ok := a[cmd]; ok {
		return out, nil
	}
	return "", errors.New("unexpected command " + cmd)
}

// A set command's only correct answer is an empty one; anything else is a
// permanent error naming the command and the answer.
func TestSetAnswers(t *testing.T) {
	r := &runtime{target: "lb", socket: "/run/haproxy.sock", c: answers{
		"set server app/east1 state maint": "",
		"set server app/nope state ready":  "No such server.\n",
		"set server app/east1 weight 300":  "Absolute weight can only be between 0 and 256 inclusive.\n",
		"set server app/west1 state ready": "Permission denied\n",
	}}
	ctx := context.Background()
	if err := r.set(ctx, "set server app/east1 state maint"); err != nil {
		t.Errorf("empty answer: %v", err)
	}
	for _, cmd := range []string{"set server app/nope state ready", "set server app/east1 weight 300", "set server app/west1 state ready"} {
		err := r.set(ctx, cmd)
		if err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), cmd) || !strings.Contains(err.Error(), "lb (/run/haproxy.sock)") {
			t.Errorf("%s: error %v, want a permanent error naming the command and target", cmd, err)
		}
	}
	if _, err := r.snapshot(ctx, false); err == nil || activities.IsPermanent(err) {
		t.Errorf("a failing transport gave %v, want a retryable error", err)
	}
	r.c = answers{"show servers state": "Permission denied\n"}
	if _, err := r.snapshot(ctx, false); err == nil || !activities.IsPermanent(err) || !strings.Contains(err.Error(), `"show servers state"`) {
		t.Errorf("an answer that does not parse gave %v, want a permanent error naming the command", err)
	}
}
