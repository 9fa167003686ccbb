package pki

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoadCA: the CA files `p2pgrid certs` reads to issue more
// certificates. It must never panic; an error says whether the certificate
// or the key is wrong; an accepted CA is one that issues certificates its
// own certificate verifies.
func FuzzLoadCA(f *testing.F) {
	ca, err := NewCA("fuzz CA", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		f.Fatal(err)
	}
	other, _ := NewCA("other CA", time.Hour)
	otherKey, _ := other.KeyPEM()
	leaf, err := ca.IssueClient("home1", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	leafKey, _ := leaf.KeyPEM()
	f.Add(ca.CertPEM(), caKey)
	f.Add(ca.CertPEM(), otherKey)                                                                 // not its key
	f.Add(leaf.CertPEM(), leafKey)                                                                // not a CA
	f.Add(append(ca.CertPEM(), ca.CertPEM()...), caKey)                                           // two blocks
	f.Add(ca.CertPEM(), bytes.Replace(caKey, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"), 2)) // the wrong block type for PKCS#8
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), caKey)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
		if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := LoadCA(certFile, keyFile)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "CA certificate") && !strings.HasPrefix(msg, "CA key") {
				t.Fatalf("error names neither the certificate nor the key: %v", err)
			}
			return
		}
		if !got.Cert.Cert.IsCA {
			t.Fatal("loaded a certificate that is not a CA")
		}
		c, err := got.IssueClient("home2", time.Hour)
		if err != nil {
			return // a CA whose name or validity cannot issue: refused then, not loaded wrong
		}
		roots := x509.NewCertPool()
		roots.AddCert(got.Cert.Cert)
		if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("a certificate the loaded CA issued does not verify against it: %v", err)
		}
	})
}
