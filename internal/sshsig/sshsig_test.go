package sshsig_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/drctl/drctl/internal/sshsig"
)

const ns = "drctl-approval"

// needKeygen skips without ssh-keygen, except in CI (DRCTL_CI), where
// `make test` installs it and its absence is a failure.
func needKeygen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("DRCTL_CI") != "" {
			t.Fatal("ssh-keygen (openssh-client) is needed")
		}
		t.Skip("ssh-keygen (openssh-client) is not installed")
	}
}

// keygen makes a key pair with ssh-keygen and returns the private key
// path, its signer and its public key.
func keygen(t *testing.T, dir, name, typ string) (string, ssh.Signer) {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-C", name, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	return path, s
}

// TestInteropWithSSHKeygen: what ssh-keygen -Y sign writes, Verify accepts;
// what Sign writes, ssh-keygen -Y verify accepts; for ed25519, RSA and
// ECDSA keys.
func TestInteropWithSSHKeygen(t *testing.T) {
	needKeygen(t)
	for _, typ := range []string{"ed25519", "rsa", "ecdsa"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			key, signer := keygen(t, dir, "bob", typ)
			msg := []byte("drctl decision\nstep: promote\n")
			msgFile := filepath.Join(dir, "msg")
			if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
				t.Fatal(err)
			}

			if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-f", key, "-n", ns, msgFile).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
			}
			theirs, err := os.ReadFile(msgFile + ".sig")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sshsig.Verify(string(theirs), ns, msg, []ssh.PublicKey{signer.PublicKey()}); err != nil {
				t.Fatalf("Verify(ssh-keygen's signature): %v", err)
			}

			ours, err := sshsig.Sign(signer, ns, msg)
			if err != nil {
				t.Fatal(err)
			}
			allowed := filepath.Join(dir, "allowed_signers")
			if err := os.WriteFile(allowed, []byte("bob "+sshsig.MarshalKey(signer.PublicKey())+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			sigFile := filepath.Join(dir, "ours.sig")
			if err := os.WriteFile(sigFile, []byte(ours), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "bob", "-n", ns, "-s", sigFile)
			cmd.Stdin = bytes.NewReader(msg)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen -Y verify of our signature: %v\n%s", err, out)
			}
		})
	}
}

// TestVerifyRefuses: another key, another namespace, another message, a
// mangled signature and garbage are each refused with what is wrong.
func TestVerifyRefuses(t *testing.T) {
	needKeygen(t)
	dir := t.TempDir()
	_, bob := keygen(t, dir, "bob", "ed25519")
	_, mallory := keygen(t, dir, "mallory", "ed25519")
	msg := []byte("approve promote")
	sig, err := sshsig.Sign(bob, ns, msg)
	if err != nil {
		t.Fatal(err)
	}
	byMallory, err := sshsig.Sign(mallory, ns, msg)
	if err != nil {
		t.Fatal(err)
	}
	otherNS, err := sshsig.Sign(bob, "git", msg)
	if err != nil {
		t.Fatal(err)
	}
	keys := []ssh.PublicKey{bob.PublicKey()}
	lines := strings.Split(strings.TrimSpace(sig), "\n")
	mid := []byte(lines[2])
	mid[10] ^= 1
	lines[2] = string(mid)
	mangled := strings.Join(lines, "\n")
	for _, tc := range []struct {
		name, sig string
		msg       []byte
		want      string
	}{
		{"another key", byMallory, msg, "which is not an allowed key"},
		{"another namespace", otherNS, msg, `signature is for namespace "git", not "drctl-approval"`},
		{"another message", sig, []byte("approve promote!"), "signature does not match the message"},
		{"mangled", mangled, msg, ""},
		{"garbage", "hello", msg, "not an SSH signature"},
	} {
		_, err := sshsig.Verify(tc.sig, ns, tc.msg, keys)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Verify = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := sshsig.Verify(sig, ns, msg, keys); err != nil {
		t.Fatalf("the genuine signature: %v", err)
	}
}

func TestParseAllowedSigners(t *testing.T) {
	needKeygen(t)
	dir := t.TempDir()
	_, bob := keygen(t, dir, "bob", "ed25519")
	_, carol := keygen(t, dir, "carol", "ed25519")
	file := "# on-call\n" +
		"bob,oncall-dba " + sshsig.MarshalKey(bob.PublicKey()) + " bob@laptop\n\n" +
		`carol namespaces="git" ` + sshsig.MarshalKey(carol.PublicKey()) + "\n"
	got, err := sshsig.ParseAllowedSigners([]byte(file), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(got["bob"]) != 1 || len(got["oncall-dba"]) != 1 || len(got["carol"]) != 0 {
		t.Fatalf("signers %v", got)
	}
	if _, err := sshsig.ParseAllowedSigners([]byte(`bob valid-after="20250101" `+sshsig.MarshalKey(bob.PublicKey())), ns); err == nil || !strings.Contains(err.Error(), `option "valid-after" is not supported`) {
		t.Fatalf("valid-after: %v", err)
	}
}
