package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/internal/pki"
)

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("p2pgrid test CA", pki.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCA(t *testing.T) {
	before := time.Now()
	ca := newCA(t)
	c := ca.Cert.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("CA basic constraints: IsCA %v valid %v MaxPathLen %d zero %v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage %b, want cert sign and CRL sign", c.KeyUsage)
	}
	if c.Subject.CommonName != "p2pgrid test CA" || c.Issuer.CommonName != "p2pgrid test CA" {
		t.Errorf("subject %q issuer %q", c.Subject, c.Issuer)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm %v", c.SignatureAlgorithm)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no subject key id")
	}
	checkValidity(t, c, before, pki.DefaultCAValidity)
}

// checkValidity: valid from Backdate before issue, for validity after it.
func checkValidity(t *testing.T, c *x509.Certificate, before time.Time, validity time.Duration) {
	t.Helper()
	after := time.Now()
	if c.NotBefore.After(before.Add(-pki.Backdate)) || c.NotBefore.Before(before.Add(-pki.Backdate-time.Second)) {
		t.Errorf("%s: not before %v, want %v before issue (%v)", c.Subject.CommonName, c.NotBefore, pki.Backdate, before)
	}
	if c.NotAfter.Before(before.Add(validity-time.Second)) || c.NotAfter.After(after.Add(validity)) {
		t.Errorf("%s: not after %v, want %v after issue (%v)", c.Subject.CommonName, c.NotAfter, validity, before)
	}
}

func TestServerCertificate(t *testing.T) {
	ca := newCA(t)
	before := time.Now()
	srv, err := ca.IssueServer([]string{"broker.lan", "192.168.1.10", "localhost", "127.0.0.1", "::1"}, pki.DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Cert
	checkValidity(t, c, before, pki.DefaultValidity)
	if c.IsCA || !c.BasicConstraintsValid {
		t.Error("a server certificate must say it is not a CA")
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("key usage %b, extended %v: want digital signature, server auth", c.KeyUsage, c.ExtKeyUsage)
	}
	if c.Subject.CommonName != "broker.lan" || strings.Join(c.DNSNames, ",") != "broker.lan,localhost" {
		t.Errorf("common name %q, DNS names %v", c.Subject.CommonName, c.DNSNames)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, ",") != "192.168.1.10,127.0.0.1,::1" {
		t.Errorf("IP addresses %v", ips)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert.Cert)
	for _, host := range []string{"broker.lan", "BROKER.lan", "192.168.1.10", "localhost", "127.0.0.1", "::1"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("host %s: %v", host, err)
		}
	}
	for _, host := range []string{"other.lan", "192.168.1.11", "lan"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err == nil {
			t.Errorf("host %s: verified, but it is not in the certificate", host)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the server certificate verifies as a client certificate")
	}
	other := newCA(t)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Cert.Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: otherRoots, DNSName: "broker.lan"}); err == nil {
		t.Error("verified against another CA")
	}
}

func TestClientCertificate(t *testing.T) {
	ca := newCA(t)
	cl, err := ca.IssueClient("home-17", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := cl.Cert
	if c.Subject.CommonName != "home-17" || len(c.DNSNames)+len(c.IPAddresses) != 0 {
		t.Errorf("common name %q, SANs %v %v", c.Subject.CommonName, c.DNSNames, c.IPAddresses)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("key usage %b, extended %v: want digital signature, client auth", c.KeyUsage, c.ExtKeyUsage)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert.Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Error("the client certificate verifies as a server certificate")
	}
}

func TestSerialNumbersAreRandom(t *testing.T) {
	ca := newCA(t)
	seen := map[string]bool{ca.Cert.Cert.SerialNumber.String(): true}
	for range 20 {
		c, err := ca.IssueClient("gw", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s := c.Cert.SerialNumber
		if s.Sign() <= 0 || s.BitLen() > 129 {
			t.Errorf("serial %v: want positive, at most 20 bytes", s)
		}
		if s.BitLen() < 64 {
			t.Errorf("serial %v: fewer than 64 random bits", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %v issued twice", s)
		}
		seen[s.String()] = true
	}
}

// TestTLSHandshake: Go's TLS client accepts the broker's certificate for
// 127.0.0.1 with only the CA as root, and a broker requiring client
// certificates accepts the client's.
func TestTLSHandshake(t *testing.T) {
	ca := newCA(t)
	srv, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.IssueClient("home1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair := func(c *pki.Cert) tls.Certificate {
		kp, err := c.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		p, err := tls.X509KeyPair(c.CertPEM(), kp)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair(srv)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				peers <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: name, Certificates: []tls.Certificate{pair(cl)}})
		if err != nil {
			t.Fatalf("dialling %s as %s: %v", addr, name, err)
		}
		c.Close()
		if got := <-peers; got != "home1" {
			t.Errorf("the server saw client %q, want home1", got)
		}
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "broker.lan"}); err == nil {
		c.Close()
		t.Error("the client accepted the certificate for a host it does not name")
	}
}

func TestBadInput(t *testing.T) {
	ca := newCA(t)
	for _, c := range []struct {
		hosts []string
		want  string
	}{
		{nil, "no host"},
		{[]string{"broker.lan", "Broker.LAN"}, `host "Broker.LAN" given twice`},
		{[]string{"broker lan"}, `host "broker lan"`},
		{[]string{"*.lan"}, `host "*.lan"`},
		{[]string{"-x.lan"}, `label "-x"`},
		{[]string{"a..lan"}, `host "a..lan"`},
		{[]string{""}, `host ""`},
	} {
		if _, err := ca.IssueServer(c.hosts, time.Hour); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("IssueServer(%q): %v, want an error with %q", c.hosts, err, c.want)
		}
	}
	if _, err := ca.IssueServer([]string{"broker.lan"}, 0); err == nil || !strings.Contains(err.Error(), "validity") {
		t.Errorf("zero validity: %v", err)
	}
	if _, err := ca.IssueServer([]string{"broker.lan"}, pki.DefaultCAValidity+time.Hour); err == nil || !strings.Contains(err.Error(), "after its CA expires") {
		t.Errorf("a certificate outliving its CA: %v", err)
	}
	// Seconds past the CA's end (a certificate for the CA's own validity,
	// made a moment later) end with the CA rather than fail.
	if c, err := ca.IssueClient("home1", pki.DefaultCAValidity+30*time.Second); err != nil {
		t.Errorf("a certificate asked to outlive its CA by seconds: %v", err)
	} else if !c.Cert.NotAfter.Equal(ca.Cert.Cert.NotAfter) {
		t.Errorf("it ends %v, want with its CA (%v)", c.Cert.NotAfter, ca.Cert.Cert.NotAfter)
	}
	if _, err := ca.IssueClient("", time.Hour); err == nil || !strings.Contains(err.Error(), `client certificate ""`) {
		t.Errorf("empty client id: %v", err)
	}
	if _, err := pki.NewCA("bad\nname", time.Hour); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("CA name with a newline: %v", err)
	}
	if _, err := pki.NewCA("ca", -time.Hour); err == nil || !strings.Contains(err.Error(), "validity") {
		t.Errorf("negative CA validity: %v", err)
	}
}

func TestWriteAndLoad(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	ca := newCA(t)
	if err := ca.WriteFiles(p("ca.crt"), p("ca.key")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"ca.crt": 0o644, "ca.key": 0o600} {
		fi, err := os.Stat(p(name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", name, fi.Mode().Perm(), want)
		}
	}
	key, _ := os.ReadFile(p("ca.key"))
	if !strings.HasPrefix(string(key), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("key file is not PKCS#8 PEM: %.40q", key)
	}

	// Never over an existing file; nothing written.
	other := newCA(t)
	err := other.WriteFiles(p("new.crt"), p("ca.key"))
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "ca.key") {
		t.Errorf("writing over ca.key: %v, want fs.ErrExist naming the file", err)
	}
	if _, err := os.Stat(p("new.crt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("new.crt was written although ca.key exists: %v", err)
	}
	if again, _ := os.ReadFile(p("ca.key")); string(again) != string(key) {
		t.Error("ca.key was replaced")
	}

	loaded, err := pki.LoadCA(p("ca.crt"), p("ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Cert.Equal(ca.Cert.Cert) || !loaded.Key.Equal(ca.Key) {
		t.Error("LoadCA read another CA than was written")
	}
	srv, err := loaded.IssueServer([]string{"broker.lan"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Cert.CheckSignatureFrom(ca.Cert.Cert); err != nil {
		t.Errorf("a certificate issued by the loaded CA: %v", err)
	}
	if err := srv.WriteFiles(p("server.crt"), p("server.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(p("server.crt"), p("server.key")); err != nil {
		t.Errorf("the written server files are not a TLS key pair: %v", err)
	}

	// What LoadCA refuses, each naming the file.
	if err := other.WriteFiles(p("other.crt"), p("other.key")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("loose.key"), key, 0o644)
	os.Chmod(p("loose.key"), 0o644)
	crtAsKey, _ := os.ReadFile(p("ca.crt"))
	os.WriteFile(p("crt-as.key"), crtAsKey, 0o600)
	for _, c := range []struct{ cert, key, want string }{
		{"ca.crt", "other.key", "is not the key of CA certificate"},
		{"ca.crt", "loose.key", "chmod 600"},
		{"server.crt", "server.key", "not a CA certificate"},
		{"ca.key", "ca.key", `want exactly one PEM "CERTIFICATE" block`},
		{"ca.crt", "crt-as.key", `want "PRIVATE KEY"`},
		{"missing.crt", "ca.key", "missing.crt"},
	} {
		_, err := pki.LoadCA(p(c.cert), p(c.key))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadCA(%s, %s): %v, want an error with %q", c.cert, c.key, err, c.want)
		}
	}
}

// An IP literal with a zone or a port is not a host.
func TestHostIsNotAnAddress(t *testing.T) {
	ca := newCA(t)
	for _, h := range []string{"127.0.0.1:8883", "fe80::1%eth0", "mqtts://broker.lan"} {
		if _, err := ca.IssueServer([]string{h}, time.Hour); err == nil {
			t.Errorf("IssueServer accepted %q", h)
		}
	}
}
