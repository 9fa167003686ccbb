package daemon

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/p2pgrid/p2pgrid/gateway"
	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/meter/profile"
)

// Check checks everything the gateway checks before it starts, without
// starting anything and without touching the network: the configuration
// (cfg.Validate), the roster file (it reads and parses it, a version the
// operator signed when operator_key is set, and the newest roster lists this gateway,
// marks it clearer when it is configured as one, and, when the gateway's
// key exists in data_dir, has that key for it), the data directory and the
// key file in it, profile_dir, every device's profile, and the MQTT CA,
// certificate and key files. Check creates nothing: a gateway without a key
// yet is checked without it.
//
// It returns every problem found, one *config.Error per line, in file order
// (config.Join), with the messages the gateway gives when it refuses to
// start: Run calls Check first. `p2pgrid config check` is Check.
func Check(cfg *config.Config) error {
	_, err := check(cfg, nil)
	return err
}

// check is Check with the roster given (Options.Roster) rather than read;
// it returns the roster versions it checked against (a fixed one for a
// plain roster).
func check(cfg *config.Config, given *protocol.Roster) (*protocol.Rosters, error) {
	errs := []error{cfg.Validate()}
	fail := func(key string, err error) { errs = append(errs, cfg.KeyError(key, err)) }

	key, err := existingKey(cfg.DataDir)
	if err != nil {
		fail("data_dir", err)
	}
	var rosters *protocol.Rosters
	switch {
	case given != nil:
		rosters = protocol.FixedRosters(given)
	case cfg.Roster != "":
		if rosters, err = readRoster(cfg); err != nil {
			fail("roster", err)
		}
	}
	// Against the roster only ids Validate took (else it said what is wrong).
	if rosters != nil && protocol.CheckID(cfg.Gateway) == nil && protocol.CheckID(cfg.Community) == nil {
		roster := rosters.Newest().Roster
		var pub ed25519.PublicKey
		if key != nil {
			pub = key.Public().(ed25519.PublicKey)
		}
		errs = append(errs, cfg.CheckRoster(roster, pub))
	}

	var dirs []string
	if cfg.ProfileDir != "" {
		if err := isDir(cfg.ProfileDir); err != nil {
			fail("profile_dir", err)
		} else {
			dirs = []string{cfg.ProfileDir}
		}
	}
	for i, d := range cfg.Devices {
		// Validate has checked the name; a profile_dir that is not a
		// directory is reported once, above, not once per device.
		if d.Profile == "sunspec" || !profile.ValidName(d.Profile) || (cfg.ProfileDir != "" && dirs == nil) {
			continue
		}
		if _, err := profile.Lookup(d.Profile, dirs...); err != nil {
			fail(fmt.Sprintf("devices[%d].profile", i), err)
		}
	}

	m := cfg.MQTT
	if m.CAFile != "" {
		if err := mqtt.CheckTLSFiles(m.CAFile, "", ""); err != nil {
			fail("mqtt.ca_file", err)
		}
	}
	if m.CertFile != "" && m.KeyFile != "" {
		if err := mqtt.CheckTLSFiles("", m.CertFile, m.KeyFile); err != nil {
			k := "mqtt.cert_file"
			if strings.HasPrefix(err.Error(), "key file") {
				k = "mqtt.key_file"
			}
			fail(k, err)
		}
	}
	return rosters, config.Join(errs...)
}

// existingKey returns the gateway's key if data_dir has one, nil if it has
// none yet (the gateway creates it at its first start), and an error for a
// data_dir that is not a directory or a key file the gateway would refuse.
func existingKey(dataDir string) (ed25519.PrivateKey, error) {
	if dataDir == "" {
		return nil, nil // Validate reports it
	}
	if err := isDir(dataDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // created at the first start
	} else if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(dataDir, protocol.KeyFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	// The file exists: LoadOrCreateKey loads it, and refuses it as the
	// gateway would (mode, contents); it creates nothing here.
	key, _, err := protocol.LoadOrCreateKey(dataDir)
	return key, err
}

func isDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return nil
}

// readRoster reads and checks the roster file (gateway.ReadRosterFile).
func readRoster(cfg *config.Config) (*protocol.Rosters, error) {
	op := cfg.OperatorPublicKey()
	if cfg.OperatorKey != "" && op == nil {
		return nil, nil // Validate reports the key
	}
	h, err := gateway.ReadRosterFile(cfg.Roster, op, cfg.Community)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, err // names the file already
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Roster, trimPrefix(err, "roster: "))
	}
	return h, nil
}

// prefixTrimmed is an error whose message lacks a prefix the context
// already says.
type prefixTrimmed struct {
	msg string
	err error
}

func (e *prefixTrimmed) Error() string { return e.msg }
func (e *prefixTrimmed) Unwrap() error { return e.err }

func trimPrefix(err error, prefix string) error {
	if msg, ok := strings.CutPrefix(err.Error(), prefix); ok {
		return &prefixTrimmed{msg: msg, err: err}
	}
	return err
}
