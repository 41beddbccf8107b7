package operator

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/drctl/drctl/internal/sshsig"
	"github.com/drctl/drctl/runbooks"
	"github.com/drctl/drctl/workflows"
)

// LoadAllowedSigners reads an ssh-keygen allowed-signers file into the
// signers a run is started with, sorted by identity (the order is part of
// the run's input).
func LoadAllowedSigners(path string) ([]workflows.Signer, error) {
	data, err := runbooks.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("approvals.allowed_signers: %w", err)
	}
	byID, err := sshsig.ParseAllowedSigners(data, workflows.SignatureNamespace)
	if err != nil {
		return nil, fmt.Errorf("approvals.allowed_signers %s: %w", path, err)
	}
	var out []workflows.Signer
	for id, keys := range byID {
		if err := workflows.CheckIdentity(id); err != nil {
			return nil, fmt.Errorf("approvals.allowed_signers %s: %w", path, err)
		}
		for _, k := range keys {
			out = append(out, workflows.Signer{Identity: id, Key: sshsig.MarshalKey(k)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("approvals.allowed_signers %s lists no key for namespace %s", path, workflows.SignatureNamespace)
	}
	slices.SortFunc(out, func(a, b workflows.Signer) int {
		if a.Identity != b.Identity {
			return strings.Compare(a.Identity, b.Identity)
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

// LoadSigner returns the signer for decisions: path is an unencrypted
// private key file, or a public key file (.pub) whose private key ssh-agent
// holds (SSH_AUTH_SOCK), the way git's user.signingKey works.
func LoadSigner(path string) (ssh.Signer, error) {
	data, err := runbooks.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
		return agentSigner(pub)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("signing key %s is protected by a passphrase: add it to ssh-agent (ssh-add %s) and give its public key (%s.pub)", path, path, path)
	case err != nil:
		return nil, fmt.Errorf("signing key %s is neither a private nor a public SSH key", path)
	}
	return signer, nil
}

func agentSigner(pub ssh.PublicKey) (ssh.Signer, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, errors.New("a public signing key needs ssh-agent, and SSH_AUTH_SOCK is not set")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	for _, s := range signers {
		if string(s.PublicKey().Marshal()) == string(pub.Marshal()) {
			return s, nil // the connection lives as long as the process
		}
	}
	conn.Close()
	return nil, fmt.Errorf("ssh-agent does not hold %s; add it with ssh-add", ssh.FingerprintSHA256(pub))
}
