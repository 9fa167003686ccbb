package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig builds the TLS configuration from PEM files; every error names
// the file it is about. An empty caFile trusts the system roots.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "":
		return nil, fmt.Errorf("key file %s given without a CertFile", keyFile)
	case keyFile == "":
		return nil, fmt.Errorf("cert file %s given without a KeyFile", certFile)
	default:
		for _, f := range []struct{ what, name string }{{"cert file", certFile}, {"key file", keyFile}} {
			if _, err := os.Stat(f.name); err != nil {
				return nil, fmt.Errorf("%s: %w", f.what, err)
			}
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert file %s with key file %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// CheckTLSFiles reads the CA file and the client certificate and key as
// Connect does, and returns the error Connect would: a missing or unreadable
// file, a CA file without a PEM certificate, a certificate without its key
// or one that does not match it. Empty names are not checked.
func CheckTLSFiles(caFile, certFile, keyFile string) error {
	_, err := tlsConfig(caFile, certFile, keyFile)
	return err
}
