package postgres

import (
	"strings"
	"testing"
)

func TestFencedHBA(t *testing.T) {
	original := strings.Join([]string{
		"# TYPE  DATABASE        USER            ADDRESS                 METHOD",
		"",
		"local   all             postgres                                peer",
		"local   all             all                                     peer # comment",
		"host    all             app             10.0.0.0/8              trust",
		"hostssl all             drctl_admin     0.0.0.0/0               scram-sha-256 clientcert=verify-full",
		"host    all             mallory         127.0.0.1/32            reject",
		"host    replication,appdb all           10.0.0.0/8              md5",
		`host    "replication"   all             127.0.0.1/32            md5`,
		"host    all             +dbas           10.1.0.0/16             md5",
		"host    replication     drctl_replicator 127.0.0.1/32           scram-sha-256",
		"",
	}, "\n")
	got := fencedHBA(original, "drctl_admin", "run r step s")
	want := strings.Join([]string{
		fenceMarker + " only drctl_admin and replication may connect (run r step s). postgres.unfence restores the original from pg_hba.conf.drctl-unfenced.",
		`local all "drctl_admin" peer`,
		`hostssl all "drctl_admin" 0.0.0.0/0 scram-sha-256 clientcert=verify-full`,
		"host replication all 10.0.0.0/8 md5",
		`host appdb "drctl_admin" 10.0.0.0/8 md5`,
		`host "replication" "drctl_admin" 127.0.0.1/32 md5`,
		"host replication drctl_replicator 127.0.0.1/32 scram-sha-256",
		"local all all reject",
		"host all all 0.0.0.0/0 reject",
		"host all all ::/0 reject",
		"",
	}, "\n")
	if got != want {
		t.Fatalf("fenced file:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []string{"trust", "mallory", "+dbas", "postgres"} {
		if strings.Contains(strings.SplitN(got, "\n", 2)[1], bad) {
			t.Errorf("fenced file keeps %q: another user's rule leaked into the admin's", bad)
		}
	}
}

func TestHBAFieldsAndItems(t *testing.T) {
	f := hbaFields(`host "my db","x y" "we""ird" 10.0.0.0/8 md5 # note`)
	if len(f) != 5 || f[1] != `"my db","x y"` || f[2] != `"we""ird"` {
		t.Fatalf("fields %q", f)
	}
	items := hbaItems(f[1])
	if len(items) != 2 || items[0].text != "my db" || !items[0].quoted || items[1].text != "x y" {
		t.Fatalf("items %+v", items)
	}
	if it := hbaItems(f[2]); it[0].text != `we"ird` {
		t.Fatalf("unquote %+v", it)
	}
	if !appliesTo("app,all", "admin") || appliesTo(`"all"`, "admin") || appliesTo("+admins", "admin") || !appliesTo(`"admin"`, "admin") {
		t.Fatal("appliesTo")
	}
}

// TestFencedHBAHeaderStaysAComment: a step ID from a workflow input (any
// Temporal client can start one) with a newline cannot end the header
// comment and add a rule.
func TestFencedHBAHeaderStaysAComment(t *testing.T) {
	got := fencedHBA("host all drctl_admin 127.0.0.1/32 md5\n", "drctl_admin", "run r step s\nhost all all 0.0.0.0/0 trust")
	for _, line := range strings.Split(got, "\n") {
		if strings.Contains(line, "trust") && !strings.HasPrefix(line, "#") {
			t.Fatalf("a rule was injected through the header:\n%s", got)
		}
	}
	if !strings.Contains(strings.SplitN(got, "\n", 2)[0], "step s?host all all 0.0.0.0/0 trust") {
		t.Fatalf("header:\n%s", got)
	}
}
