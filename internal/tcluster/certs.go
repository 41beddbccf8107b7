package tcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ServerName is the DNS name in the frontend's certificate; clients verify
// the frontend against it (temporal.tls.server_name).
const ServerName = "temporal-frontend"

// certFiles are the PEM files of one cluster's private CA: the frontend's
// server certificate, and the client certificate drctl and the system
// worker present (the frontend requires one: mutual TLS).
type certFiles struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// writeCerts creates a CA and the certificates signed by it in dir. The
// keys are readable by the owner only.
func writeCerts(dir string) (certFiles, error) {
	f := certFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "frontend.pem"), ServerKey: filepath.Join(dir, "frontend-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "drctl test cluster CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	if err := writePEM(f.CA, "CERTIFICATE", caDER, 0o644); err != nil {
		return f, err
	}
	leaves := []struct {
		cert, key string
		tmpl      *x509.Certificate
	}{
		{f.ServerCert, f.ServerKey, &x509.Certificate{
			Subject:     pkix.Name{CommonName: ServerName},
			DNSNames:    []string{ServerName, "localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{f.ClientCert, f.ClientKey, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "drctl"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, l := range leaves {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return f, err
		}
		l.tmpl.NotBefore, l.tmpl.NotAfter = caTmpl.NotBefore, caTmpl.NotAfter
		l.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := sign(l.tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return f, fmt.Errorf("certificate %s: %w", l.tmpl.Subject.CommonName, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return f, err
		}
		if err := writePEM(l.cert, "CERTIFICATE", der, 0o644); err != nil {
			return f, err
		}
		if err := writePEM(l.key, "PRIVATE KEY", keyDER, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

// sign issues tmpl, with a random serial number, signed by parent's key.
func sign(tmpl, parent *x509.Certificate, pub, signer any) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
