// Package sshsig signs and verifies messages in OpenSSH's SSHSIG format,
// the one `ssh-keygen -Y sign` writes and git uses for SSH-signed commits,
// so an approver signs with the SSH key (or ssh-agent) they already have
// and `ssh-keygen -Y verify` can check what drctl signed.
//
// Verify is pure computation (no I/O, no clock, no randomness), so the
// workflow can call it in an Update validator and get the same answer on
// every replay. Sign takes any ssh.Signer: a key file or an agent's key.
package sshsig

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

const (
	magic    = "SSHSIG"
	version  = 1
	hashAlg  = "sha512"
	pemType  = "SSH SIGNATURE"
	maxArmor = 16 << 10 // far above any real signature (RSA 8192: ~1.5 KiB)
)

// Sign signs message under namespace (which keeps a signature made for one
// purpose from being accepted for another) and returns the armored
// signature ("-----BEGIN SSH SIGNATURE-----" ...).
func Sign(signer ssh.Signer, namespace string, message []byte) (string, error) {
	data := signedData(namespace, message)
	var (
		sig *ssh.Signature
		err error
	)
	if signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		// ssh-rsa signatures use SHA-1, which SSHSIG refuses.
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return "", errors.New("sshsig: this RSA key cannot sign with rsa-sha2-512")
		}
		sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(rand.Reader, data)
	}
	if err != nil {
		return "", fmt.Errorf("sshsig: sign: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(magic)
	b.Write(binary.BigEndian.AppendUint32(nil, version))
	writeString(&b, signer.PublicKey().Marshal())
	writeString(&b, []byte(namespace))
	writeString(&b, nil) // reserved
	writeString(&b, []byte(hashAlg))
	writeString(&b, ssh.Marshal(sig))
	return string(pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: b.Bytes()})), nil
}

// Verify checks that armored is a valid SSHSIG signature of message under
// namespace, made by one of keys. It returns the key that signed.
func Verify(armored, namespace string, message []byte, keys []ssh.PublicKey) (ssh.PublicKey, error) {
	if len(armored) > maxArmor {
		return nil, errors.New("signature is too long")
	}
	block, _ := pem.Decode([]byte(armored))
	if block == nil || block.Type != pemType {
		return nil, errors.New("not an SSH signature (want -----BEGIN SSH SIGNATURE-----)")
	}
	blob := block.Bytes
	if !bytes.HasPrefix(blob, []byte(magic)) {
		return nil, errors.New("not an SSHSIG blob")
	}
	blob = blob[len(magic):]
	if len(blob) < 4 || binary.BigEndian.Uint32(blob) != version {
		return nil, errors.New("unsupported SSHSIG version")
	}
	blob = blob[4:]
	var fields [5][]byte
	for i := range fields {
		var ok bool
		if fields[i], blob, ok = readString(blob); !ok {
			return nil, errors.New("truncated SSHSIG blob")
		}
	}
	if len(blob) != 0 {
		return nil, errors.New("trailing bytes after the SSHSIG blob")
	}
	pubBytes, ns, alg, sigBytes := fields[0], string(fields[1]), string(fields[3]), fields[4]
	if ns != namespace {
		return nil, fmt.Errorf("signature is for namespace %q, not %q", ns, namespace)
	}
	if alg != hashAlg && alg != "sha256" {
		return nil, fmt.Errorf("signature hash %q is not sha512 or sha256", alg)
	}
	pub, err := ssh.ParsePublicKey(pubBytes)
	if err != nil {
		return nil, fmt.Errorf("signature's public key: %w", err)
	}
	var signer ssh.PublicKey
	for _, k := range keys {
		if bytes.Equal(k.Marshal(), pub.Marshal()) {
			signer = k
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("signed by %s, which is not an allowed key", ssh.FingerprintSHA256(pub))
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(sigBytes, &sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if sig.Format == ssh.KeyAlgoRSA {
		return nil, errors.New("ssh-rsa (SHA-1) signatures are refused; sign with rsa-sha2-512 or an ed25519 key")
	}
	if err := signer.Verify(signedDataWith(namespace, alg, message), &sig); err != nil {
		return nil, fmt.Errorf("signature does not match the message (%s)", ssh.FingerprintSHA256(pub))
	}
	return signer, nil
}

func signedData(namespace string, message []byte) []byte {
	return signedDataWith(namespace, hashAlg, message)
}

func signedDataWith(namespace, alg string, message []byte) []byte {
	var h []byte
	if alg == "sha256" {
		sum := sha256.Sum256(message)
		h = sum[:]
	} else {
		sum := sha512.Sum512(message)
		h = sum[:]
	}
	var b bytes.Buffer
	b.WriteString(magic)
	writeString(&b, []byte(namespace))
	writeString(&b, nil)
	writeString(&b, []byte(alg))
	writeString(&b, h)
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s []byte) {
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
	b.Write(s)
}

func readString(in []byte) (s, rest []byte, ok bool) {
	if len(in) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(in)
	if uint64(n) > uint64(len(in)-4) {
		return nil, nil, false
	}
	return in[4 : 4+n], in[4+n:], true
}

// ParseAllowedSigners reads an allowed-signers file in ssh-keygen's format
// (see ssh-keygen(1), ALLOWED SIGNERS): one key per line as
// "PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]", principals separated by
// commas, # comments and blank lines ignored. It returns the keys of each
// principal. Options other than namespaces= are refused (drctl honours no
// validity windows or certificate authorities); a namespaces= option that
// does not list namespace drops the line's key, as ssh-keygen would.
func ParseAllowedSigners(data []byte, namespace string) (map[string][]ssh.PublicKey, error) {
	out := map[string][]ssh.PublicKey{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		principals, rest, _ := bytes.Cut(line, []byte(" "))
		rest = bytes.TrimSpace(rest)
		pub, _, options, _, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("allowed signers line %d: %w", i+1, err)
		}
		keep := true
		for _, o := range options {
			name, val, _ := bytes.Cut([]byte(o), []byte("="))
			if string(name) != "namespaces" {
				return nil, fmt.Errorf("allowed signers line %d: option %q is not supported (only namespaces=)", i+1, name)
			}
			keep = false
			for _, ns := range bytes.Split(bytes.Trim(val, `"`), []byte(",")) {
				if string(ns) == namespace {
					keep = true
				}
			}
		}
		if !keep {
			continue
		}
		for _, p := range bytes.Split(principals, []byte(",")) {
			if len(p) == 0 {
				return nil, fmt.Errorf("allowed signers line %d: an empty principal", i+1)
			}
			out[string(p)] = append(out[string(p)], pub)
		}
	}
	return out, nil
}

// MarshalKey writes pub as one authorized_keys line without a newline.
func MarshalKey(pub ssh.PublicKey) string {
	return string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub)))
}

// ParseKey reads one authorized_keys line written by MarshalKey.
func ParseKey(line string) (ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	return pub, err
}
