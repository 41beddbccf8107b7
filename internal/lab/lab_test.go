package lab

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadStats(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := LoadStats{Acks: []Ack{
		{ID: 1, At: t0, DBSite: East},
		{ID: 2, At: t0.Add(10 * time.Millisecond), DBSite: East},
		{ID: 40, At: t0.Add(200 * time.Millisecond), DBSite: West},
		{ID: 41, At: t0.Add(210 * time.Millisecond), DBSite: West},
	}}
	if got := st.Before(t0.Add(10 * time.Millisecond)); got != 1 {
		t.Errorf("Before = %d, want 1 (an ack at the instant itself is not before it)", got)
	}
	if got := st.Before(t0.Add(time.Second)); got != 4 {
		t.Errorf("Before(later) = %d, want 4", got)
	}
	if got := st.WriteGap(); got != 190*time.Millisecond {
		t.Errorf("WriteGap = %s, want 190ms", got)
	}
	if by := st.BySite(); by[East] != 2 || by[West] != 2 {
		t.Errorf("BySite = %v", by)
	}
	if ids := st.IDs(); len(ids) != 4 || ids[2] != 40 {
		t.Errorf("IDs = %v", ids)
	}
}

func TestShellQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "host=127.0.0.11 password='x y'", `a'b\c`} {
		if got := shellUnquote(shellQuote(s)); got != s {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	}
}

func TestSiteOf(t *testing.T) {
	for addr, want := range map[string]string{EastDBAddr: East, WestAppAddr: West, "127.0.0.1": ""} {
		if got := SiteOf(addr); got != want {
			t.Errorf("SiteOf(%s) = %q, want %q", addr, got, want)
		}
	}
}

// TestStateKnowsItsOwnProcesses: a PID counts as the lab's only on the same
// boot with the same start time, so a PID reused after a reboot or after the
// process exited is never signalled.
func TestStateKnowsItsOwnProcesses(t *testing.T) {
	self := os.Getpid()
	st := State{SupervisorPID: self, BootID: bootID(), SupervisorStart: startTime(self)}
	if !st.SupervisorRunning() {
		t.Fatal("this process, recorded with its start time, is not recognised")
	}
	reused := st
	reused.SupervisorStart++
	if reused.SupervisorRunning() {
		t.Fatal("a process with another start time counts as the supervisor")
	}
	rebooted := st
	rebooted.BootID = "another-boot"
	if rebooted.SupervisorRunning() {
		t.Fatal("a state from another boot counts as running")
	}
}

// TestTemporalVersionMatchesTheMakefile: the lab builds the same Temporal
// CLI as `make temporal`; the version is written in both places.
func TestTemporalVersionMatchesTheMakefile(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TEMPORAL_CLI_VERSION := (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Makefile sets no TEMPORAL_CLI_VERSION")
	}
	if want := "@" + string(m[1]); !strings.HasSuffix(TemporalModule, want) {
		t.Fatalf("lab.TemporalModule %s, Makefile builds %s", TemporalModule, m[1])
	}
}

// TestRequirements: one list serves the lab and the tests; a requirement
// is installed when any of its files (not directories) or commands is
// there.
func TestRequirements(t *testing.T) {
	var lab, all []string
	for _, r := range Requirements {
		all = append(all, r.Package)
		if !r.Tests {
			lab = append(lab, r.Package)
		}
	}
	for _, want := range []string{"postgresql-15", "bind9", "haproxy", "util-linux"} {
		if !slices.Contains(lab, want) {
			t.Errorf("the lab's requirements lack %s: %v", want, lab)
		}
	}
	for _, want := range []string{"bind9-dnsutils", "openssh-client"} {
		if !slices.Contains(all, want) || slices.Contains(lab, want) {
			t.Errorf("%s should be a requirement of the tests only: lab %v, all %v", want, lab, all)
		}
	}
	for _, p := range Missing() {
		if !slices.Contains(MissingForTests(), p) {
			t.Errorf("%s is missing for the lab but not for the tests", p)
		}
	}
	for _, tc := range []struct {
		any  []string
		want bool
	}{
		{[]string{"/nonexistent/drctl", "sh"}, true},
		{[]string{os.Args[0]}, true},
		{[]string{"/nonexistent/drctl", "drctl-no-such-command"}, false},
		{[]string{"/"}, false},
	} {
		if got := (Requirement{Package: "x", Any: tc.any}).Installed(); got != tc.want {
			t.Errorf("Installed(%v) = %t, want %t", tc.any, got, tc.want)
		}
	}
}
