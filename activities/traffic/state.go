package traffic

import (
	"encoding/csv"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Admin is a server's srv_admin_state: a bit field of what an operator or
// the configuration asked for (HAProxy's enum srv_admin).
type Admin int

// Admin state bits.
const (
	AdminForcedMaint    Admin = 0x01 // `set server ... state maint`, or "disabled" in the configuration
	AdminInheritedMaint Admin = 0x02 // tracks a server in maintenance
	AdminConfigDisabled Admin = 0x04 // the configuration says "disabled"; a record only, not itself maintenance
	AdminForcedDrain    Admin = 0x08 // `set server ... state drain`
	AdminInheritedDrain Admin = 0x10 // tracks a draining server
	AdminResolveMaint   Admin = 0x20 // its address did not resolve

	adminMaint = AdminForcedMaint | AdminInheritedMaint | AdminResolveMaint
	adminDrain = AdminForcedDrain | AdminInheritedDrain
)

// Op is a server's srv_op_state: what HAProxy does with it.
type Op int

// Operational states.
const (
	OpStopped  Op = 0
	OpStarting Op = 1 // slow start: takes traffic at a growing weight
	OpRunning  Op = 2
	OpStopping Op = 3
)

func (o Op) String() string {
	switch o {
	case OpStopped:
		return "down"
	case OpStarting:
		return "starting"
	case OpRunning:
		return "up"
	case OpStopping:
		return "stopping"
	}
	return fmt.Sprintf("op-state-%d", int(o))
}

// Modes a server is in, as runbooks name them.
const (
	ModeReady = "ready"
	ModeDrain = "drain"
	ModeMaint = "maint"
)

// Server is one server of one backend.
type Server struct {
	Backend string `json:"backend"`
	Name    string `json:"name"`
	Admin   Admin  `json:"admin_state"`
	Op      Op     `json:"op_state"`
	// Weight is srv_uweight, the weight `set server ... weight` sets.
	Weight int `json:"weight"`
	// CheckState and CheckResult are srv_check_state (bits: 0x04 health
	// checks enabled, 0x08 paused for maintenance) and srv_check_result of
	// the last health check (0 none since the last state change, 2 failed,
	// 3 passed, 4 passed conditionally).
	CheckState  int `json:"check_state"`
	CheckResult int `json:"check_result"`
	// Sessions and Queued are scur and qcur from `show stat`; -1 when
	// stats were not read.
	Sessions int `json:"sessions"`
	Queued   int `json:"queued"`
	// Status is show stat's status column (UP, DOWN, MAINT, DRAIN, no check, ...).
	Status string `json:"status,omitempty"`
}

// Mode is ModeMaint when any maintenance bit is set, else ModeDrain when
// any drain bit is set, else ModeReady.
func (s Server) Mode() string {
	switch {
	case s.Admin&adminMaint != 0:
		return ModeMaint
	case s.Admin&adminDrain != 0:
		return ModeDrain
	}
	return ModeReady
}

// Health check states and results used by Up.
const (
	checkEnabled        = 0x04
	checkPaused         = 0x08
	checkPassed         = 3
	checkPassedCondPass = 4
)

// Up reports whether the server serves when it is ready: its operational
// state is running or starting and, when it is health checked, a check has
// passed since its last state change. HAProxy marks a server running the
// moment it leaves maintenance, before any check has run; only the check
// result tells whether the site behind it answers.
func (s Server) Up() bool {
	if s.Op != OpRunning && s.Op != OpStarting {
		return false
	}
	if s.CheckState&checkEnabled == 0 || s.CheckState&checkPaused != 0 {
		return true
	}
	return s.CheckResult == checkPassed || s.CheckResult == checkPassedCondPass
}

// Ref is "backend/server", as the runtime API names a server.
func (s Server) Ref() string { return s.Backend + "/" + s.Name }

// State is the short form used in summaries and outputs: "ready up w1",
// with the session count when known.
func (s Server) State() string {
	st := fmt.Sprintf("%s %s w%d", s.Mode(), s.Op, s.Weight)
	if s.Sessions >= 0 {
		st += fmt.Sprintf(" %d sess", s.Sessions)
	}
	return st
}

// Snapshot is every backend's servers, in HAProxy's order.
type Snapshot map[string][]Server

// Backends lists the backend names, sorted.
func (s Snapshot) Backends() []string {
	names := make([]string, 0, len(s))
	for b := range s {
		names = append(names, b)
	}
	sort.Strings(names)
	return names
}

// Server returns the named server of a backend.
func (s Snapshot) Server(backend, name string) (Server, bool) {
	for _, sv := range s[backend] {
		if sv.Name == name {
			return sv, true
		}
	}
	return Server{}, false
}

// serverNames lists a backend's server names in HAProxy's order.
func (s Snapshot) serverNames(backend string) []string {
	names := make([]string, 0, len(s[backend]))
	for _, sv := range s[backend] {
		names = append(names, sv.Name)
	}
	return names
}

func (s Snapshot) addStats(rows []StatRow) {
	idx := map[[2]string]StatRow{}
	for _, r := range rows {
		idx[[2]string{r.Proxy, r.Server}] = r
	}
	for b, servers := range s {
		for i, sv := range servers {
			if r, ok := idx[[2]string{b, sv.Name}]; ok {
				servers[i].Sessions, servers[i].Queued, servers[i].Status = r.Sessions, r.Queued, r.Status
			}
		}
	}
}

// ParseServersState parses the answer to `show servers state` (format
// version 1). Columns are found by the header's names, so added columns do
// not break it; backends without servers do not appear.
func ParseServersState(answer string) (Snapshot, error) {
	lines := strings.Split(strings.TrimSpace(answer), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "1" || !strings.HasPrefix(lines[1], "# ") {
		return nil, fmt.Errorf("not a version 1 servers state: %q", firstLine(answer))
	}
	header := strings.Fields(strings.TrimPrefix(lines[1], "# "))
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, need := range []string{"be_name", "srv_name", "srv_op_state", "srv_admin_state", "srv_uweight"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("servers state has no %s column", need)
		}
	}
	snap := Snapshot{}
	for n, line := range lines[2:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < len(header) {
			return nil, fmt.Errorf("servers state line %d has %d fields, the header %d: %q", n+3, len(f), len(header), line)
		}
		sv := Server{Backend: f[col["be_name"]], Name: f[col["srv_name"]], Sessions: -1, Queued: -1}
		var err error
		var op, admin int
		if op, err = strconv.Atoi(f[col["srv_op_state"]]); err == nil {
			if admin, err = strconv.Atoi(f[col["srv_admin_state"]]); err == nil {
				sv.Weight, err = strconv.Atoi(f[col["srv_uweight"]])
			}
		}
		// The check columns are optional: without them Up trusts the
		// operational state alone.
		for _, c := range []struct {
			name string
			dst  *int
		}{{"srv_check_state", &sv.CheckState}, {"srv_check_result", &sv.CheckResult}} {
			if i, ok := col[c.name]; ok && err == nil {
				*c.dst, err = strconv.Atoi(f[i])
			}
		}
		if err != nil {
			return nil, fmt.Errorf("servers state line %d: %v: %q", n+3, err, line)
		}
		sv.Op, sv.Admin = Op(op), Admin(admin)
		snap[sv.Backend] = append(snap[sv.Backend], sv)
	}
	return snap, nil
}

// StatRow is the part of a `show stat` line drctl uses.
type StatRow struct {
	Proxy, Server string // pxname, svname (FRONTEND and BACKEND for the aggregate lines)
	Sessions      int    // scur
	Queued        int    // qcur (empty on frontends: 0)
	Status        string
}

// ParseStat parses the CSV answer to `show stat`, finding columns by the
// header's names.
func ParseStat(answer string) ([]StatRow, error) {
	answer = strings.TrimSpace(answer)
	if !strings.HasPrefix(answer, "# pxname,svname,") {
		return nil, fmt.Errorf("not show stat CSV: %q", firstLine(answer))
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(answer, "# ")))
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("show stat CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	for _, need := range []string{"scur", "qcur", "status"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("show stat has no %s column", need)
		}
	}
	rows := make([]StatRow, 0, len(records)-1)
	for n, rec := range records[1:] {
		if len(rec) < len(records[0])-1 {
			return nil, fmt.Errorf("show stat line %d has %d fields, the header %d", n+2, len(rec), len(records[0]))
		}
		row := StatRow{Proxy: rec[0], Server: rec[1], Status: rec[col["status"]]}
		if row.Sessions, err = statInt(rec[col["scur"]]); err == nil {
			row.Queued, err = statInt(rec[col["qcur"]])
		}
		if err != nil {
			return nil, fmt.Errorf("show stat line %d (%s/%s): %v", n+2, row.Proxy, row.Server, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// statInt parses a counter; HAProxy leaves counters that do not apply to a
// line empty.
func statInt(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}
