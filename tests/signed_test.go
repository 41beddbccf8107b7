package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drctl/drctl/internal/devserver"
	"github.com/drctl/drctl/internal/testwait"
	"github.com/drctl/drctl/workflows"
)

const twoSignedApprovals = `apiVersion: drctl/v1
name: signed
lock: %s
steps:
  - id: announce
    action: note
    with: {message: "started"}
  - id: go-ahead
    needs: [announce]
    approval:
      approvers: [alice, bob, carol]
      min_approvals: 2
  - id: done
    needs: [go-ahead]
    action: note
    with: {message: "done"}
`

// sshKey makes an ed25519 key pair with ssh-keygen and returns the private
// key path and the public key line.
func sshKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(pub))
}

// TestSignedApprovalsThroughTheCLI: a run started with an allowed-signers
// file takes CLI approvals only when signed by the approver's own key: an
// unsigned approval, one signed with another person's key and one by the
// starter are refused and change nothing; bob signs with a key file, carol
// through a real ssh-agent, and the gate (min_approvals: 2) opens.
func TestSignedApprovalsThroughTheCLI(t *testing.T) {
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		if os.Getenv("DRCTL_CI") != "" {
			t.Fatal("ssh-keygen and ssh-agent (openssh-client) are needed")
		}
		t.Skip("openssh-client is not installed")
	}
	srv := startServer(t, devserver.Options{})
	c := testConfig(t, srv)
	startWorker(t, srv, c)
	dir := t.TempDir()
	bobKey, bobPub := sshKey(t, dir, "bob")
	carolKey, carolPub := sshKey(t, dir, "carol")
	_, alicePub := sshKey(t, dir, "alice")
	signers := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(signers, []byte(fmt.Sprintf("alice %s\nbob %s\ncarol %s\n", alicePub, bobPub, carolPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "drctl.yaml")
	if err := os.WriteFile(cfg, []byte("approvals: {allowed_signers: "+signers+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// carol's key lives only in an ssh-agent of the test's own.
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	testwait.For(t, "ssh-agent's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	add := exec.Command("ssh-add", carolKey)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	if err := os.Remove(carolKey); err != nil { // only the agent can sign as carol now
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)

	lock := "signed-cli"
	file := writeRunbook(t, fmt.Sprintf(twoSignedApprovals, lock))
	cli := func(args ...string) (string, int) {
		return drctl(t, c, append([]string{"--config", cfg}, args...)...)
	}
	if out, code := cli("run", "--yes", file, "--detach", "--as", "alice"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	op := operatorAs(srv, c, "test")
	testwait.For(t, "the gate", func() bool {
		st, err := op.Status(context.Background(), lock)
		return err == nil && slices.Contains(st.Waiting, "go-ahead")
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unsigned", []string{"approve", lock, "go-ahead", "--as", "bob"}, "this run takes signed decisions only"},
		{"bob's key as carol", []string{"approve", lock, "go-ahead", "--as", "carol", "--sign-key", bobKey}, "carol's decision is not validly signed: signed by SHA256:"},
		{"the starter", []string{"approve", lock, "go-ahead", "--as", "alice", "--sign-key", bobKey}, "two-person rule: alice started this run"},
	} {
		if out, code := cli(tc.args...); code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want refused with %q\n%s", tc.name, code, tc.want, out)
		}
	}
	if out, code := cli("approve", lock, "go-ahead", "--as", "bob", "--sign-key", bobKey); code != 0 || !strings.Contains(out, "approval by bob recorded; 1 more needed (signed)") {
		t.Fatalf("bob, signed: exit %d\n%s", code, out)
	}
	if out, code := cli("approve", lock, "go-ahead", "--as", "carol", "--sign-key", carolKey+".pub"); code != 0 || !strings.Contains(out, "step go-ahead approved by carol (signed)") {
		t.Fatalf("carol, signed through ssh-agent: exit %d\n%s", code, out)
	}
	rep, err := op.Wait(context.Background(), lock)
	if err != nil {
		t.Fatal(err)
	}
	gate, _ := rep.Step("go-ahead")
	if rep.State != workflows.StateSucceeded || !slices.Equal(gate.Approval.ApprovedBy, []string{"bob", "carol"}) || !gate.Approval.Signed {
		t.Fatalf("state %s, gate %+v", rep.State, gate.Approval)
	}
	refused := 0
	for _, e := range rep.Events {
		if e.Kind == "approved" && e.By != "bob" && e.By != "carol" {
			t.Errorf("an approval by %s was recorded: %+v", e.By, e)
		}
		if e.Kind == "refused" {
			refused++
		}
	}
	t.Logf("gate opened by %v; %d refusals in the audit trail", gate.Approval.ApprovedBy, refused)
}
