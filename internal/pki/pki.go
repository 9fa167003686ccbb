// Package pki makes the certificates of a community's MQTT broker with
// Go's crypto/x509, so that setting up a community needs no openssl: a
// community CA, the broker's server certificate (for every DNS name and IP
// address the gateways use to reach it) and, optionally, client
// certificates for gateways, all ECDSA P-256 (which Mosquitto 2.0 with
// OpenSSL 3 accepts), written as PEM files, keys with mode 0600.
//
//	ca, _ := pki.NewCA("p2pgrid lindenweg CA", pki.DefaultCAValidity)
//	srv, _ := ca.IssueServer([]string{"broker.lan", "192.168.1.10"}, pki.DefaultValidity)
//	_ = ca.WriteFiles("ca.crt", "ca.key")
//	_ = srv.WriteFiles("server.crt", "server.key")
//
// It knows nothing of MQTT, Mosquitto or gateways beyond the names it is
// given; `p2pgrid certs` is its command line.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/p2pgrid/p2pgrid/internal/atomicfile"
)

// DefaultCAValidity is how long a community CA is valid: ten years.
const DefaultCAValidity = 10 * 365 * 24 * time.Hour

// DefaultValidity is how long a server or client certificate is valid:
// 825 days, a little over two years.
const DefaultValidity = 825 * 24 * time.Hour

// sameRunSlack is how far past its CA's end a certificate may be asked
// to run and still be issued, ending with the CA: the time between making
// a CA and its certificates in one run.
const sameRunSlack = time.Minute

// Backdate is how long before its issue a certificate becomes valid. A
// Raspberry Pi has no battery-backed clock: it boots with the time it last
// saved and runs slightly in the past until NTP corrects it, and a
// certificate that is not valid yet would keep it off the broker.
const Backdate = 24 * time.Hour

// maxFileSize bounds what LoadCA reads: a P-256 certificate or key in PEM
// is well under 2 KiB.
const maxFileSize = 64 << 10

// Cert is a certificate and its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CA is a community certificate authority: it signs the broker's and the
// gateways' certificates.
type CA struct {
	Cert
}

// NewCA makes a self-signed CA named name (its subject's common name),
// valid for validity from now (minus Backdate). It may sign end-entity
// certificates only (path length 0).
func NewCA(name string, validity time.Duration) (*CA, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("CA name %q: %w", name, err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("CA %q: validity %v: want a positive duration", name, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA %q: generating its key: %w", name, err)
	}
	tmpl, err := template(name, validity)
	if err != nil {
		return nil, fmt.Errorf("CA %q: %w", name, err)
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA %q: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA %q: %w", name, err)
	}
	return &CA{Cert{Cert: cert, Key: key}}, nil
}

// IssueServer makes the broker's certificate, for TLS server
// authentication, valid for validity from now (minus Backdate) and for
// every host: DNS names ("broker.lan", "localhost") and IP addresses
// ("192.168.1.10", "127.0.0.1"), all of them in the subject alternative
// names (clients check only those); the first is also the common name. A
// gateway reaches the broker only by a name or address listed here.
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (*Cert, error) {
	if len(hosts) == 0 {
		return nil, errors.New("server certificate: no host given (want the DNS names and IP addresses gateways use to reach the broker)")
	}
	tmpl, err := template(hosts[0], validity)
	if err != nil {
		return nil, fmt.Errorf("server certificate for %s: %w", strings.Join(hosts, ", "), err)
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[strings.ToLower(h)] {
			return nil, fmt.Errorf("server certificate: host %q given twice", h)
		}
		seen[strings.ToLower(h)] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if err := checkDNSName(h); err != nil {
			return nil, fmt.Errorf("server certificate: host %q: %w", h, err)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return ca.issue(tmpl, "server certificate for "+strings.Join(hosts, ", "))
}

// IssueClient makes a certificate for TLS client authentication whose
// common name is id (a gateway's id), valid for validity from now (minus
// Backdate). The broker checks it when its listener has
// require_certificate true.
func (ca *CA) IssueClient(id string, validity time.Duration) (*Cert, error) {
	if err := checkName(id); err != nil {
		return nil, fmt.Errorf("client certificate %q: %w", id, err)
	}
	tmpl, err := template(id, validity)
	if err != nil {
		return nil, fmt.Errorf("client certificate %q: %w", id, err)
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(tmpl, fmt.Sprintf("client certificate %q", id))
}

// issue signs an end-entity certificate with a new key.
func (ca *CA) issue(tmpl *x509.Certificate, what string) (*Cert, error) {
	// A certificate asked for the CA's own validity, moments after the CA
	// was made (p2pgrid certs --days equal to --ca-days), would outlive it
	// by the seconds in between: it ends with the CA instead.
	if over := tmpl.NotAfter.Sub(ca.Cert.Cert.NotAfter); over > 0 && over <= sameRunSlack {
		tmpl.NotAfter = ca.Cert.Cert.NotAfter
	}
	if tmpl.NotAfter.After(ca.Cert.Cert.NotAfter) {
		return nil, fmt.Errorf("%s: it would be valid until %s, after its CA expires (%s)", what,
			tmpl.NotAfter.Format(time.DateOnly), ca.Cert.Cert.NotAfter.Format(time.DateOnly))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: generating its key: %w", what, err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature // ECDSA: no key encipherment
	tmpl.BasicConstraintsValid = true             // and IsCA false: not a CA
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &Cert{Cert: cert, Key: key}, nil
}

// template is what every certificate has: a random 128-bit serial number,
// the subject's common name, and its validity period.
func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("validity %v: want a positive duration", validity)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now := time.Now().Truncate(time.Second)
	return &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)), // positive, as RFC 5280 wants
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-Backdate),
		NotAfter:     now.Add(validity),
	}, nil
}

// CertPEM is the certificate as a PEM "CERTIFICATE" block.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM is the private key as a PEM "PRIVATE KEY" block (PKCS#8), which
// both Go and OpenSSL read.
func (c *Cert) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("private key of %q: %w", c.Cert.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes the certificate to certFile (mode 0644) and the key to
// keyFile (mode 0600). It never replaces a file: if either exists, it
// writes nothing and the error wraps fs.ErrExist. Each file appears whole
// or not at all.
func (c *Cert) WriteFiles(certFile, keyFile string) error {
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%s: %w; remove it first to replace it", f, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	keyPEM, err := c.KeyPEM()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteNew(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("key file %s: %w", keyFile, err)
	}
	if err := atomicfile.WriteNew(certFile, c.CertPEM(), 0o644); err != nil {
		os.Remove(keyFile) // written a moment ago, by us
		return fmt.Errorf("certificate file %s: %w", certFile, err)
	}
	return nil
}

// LoadCA reads a CA written by WriteFiles, to issue more certificates
// with it. The key file must not be accessible to group or others, must
// hold the key of the certificate, and the certificate must be a CA.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := readSmall(certFile, false)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("CA certificate %s: want exactly one PEM \"CERTIFICATE\" block", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("CA certificate %s: %q is not a CA certificate", certFile, cert.Subject.CommonName)
	}
	keyPEM, err := readSmall(keyFile, true)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	block, rest = pem.Decode(keyPEM)
	if block == nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("CA key %s: want exactly one PEM block", keyFile)
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("CA key %s: a PEM %q block, want \"PRIVATE KEY\"", keyFile, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyFile, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key %s: a %T, want an ECDSA key", keyFile, parsed)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("CA key %s is not the key of CA certificate %s", keyFile, certFile)
	}
	return &CA{Cert{Cert: cert, Key: key}}, nil
}

// readSmall reads a PEM file; private files must not be accessible to
// group or others.
func readSmall(path string, private bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); private && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %#o: group or others can access the private key; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a PEM certificate or key", path, maxFileSize)
	}
	return data, nil
}

// checkName checks a common name: 1-64 bytes (the X.509 upper bound), no
// control characters.
func checkName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("want 1 to 64 bytes, got %d", len(s))
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.New("holds a control character or invalid UTF-8")
		}
	}
	return nil
}

// checkDNSName checks a host name: dot-separated labels of 1-63 letters,
// digits and hyphens, not starting or ending with a hyphen; at most 253
// bytes. Wildcards are not accepted: name every host.
func checkDNSName(s string) error {
	if len(s) > 253 {
		return errors.New("longer than 253 bytes")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("want an IP address or a DNS name: labels of 1 to 63 characters between dots")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("character %q: want an IP address or a DNS name (letters, digits, '-' and '.')", r)
			}
		}
	}
	return nil
}
