// Package operator is the community operator's side of running a p2pgrid
// community on a real LAN, and the home's side of joining it: the
// community directory that `p2pgrid community` keeps (the CA and the
// broker's certificate, the Mosquitto configuration, password file and
// ACL made from the shipped configs/mosquitto files, the operator key
// that signs rosters, the operator's clearer gateway, the signed roster),
// the Mosquitto password hashes, and the join bundle a home's
// `p2pgrid join` turns into its gateway's configuration.
//
// A community directory:
//
//	community.json           {"community":ID,"broker":URL,"clearer":"operator"}
//	operator.key             the community operator key (Ed25519, PEM PKCS#8, 0600): signs rosters only
//	roster.json              the newest signed roster (protocol.EncodeRoster)
//	certs/                   ca.crt, ca.key (keep offline), server.crt, server.key
//	mosquitto/               mosquitto.conf, passwd, acl, conf.d/, data/
//	operator/                the clearer: gateway.yaml, mqtt.password, data/gateway.key
//	bundles/ID.json          a home's join bundle (holds its password)
//	apps/NAME.password       an app's read-only login
//
// It runs nothing and connects to nothing; cmd/p2pgrid prints what it
// returns. It is not internal/neighbourhood/community, which lays out a
// simulated community in memory.
package operator

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/atomicfile"
	"github.com/p2pgrid/p2pgrid/internal/neighbourhood/community"
	"github.com/p2pgrid/p2pgrid/internal/pki"
	"github.com/p2pgrid/p2pgrid/market"
)

// The files and folders of a community directory.
const (
	MetaFile        = "community.json"
	OperatorKeyFile = "operator.key"
	RosterFile      = "roster.json"
	CertsDir        = "certs"
	MosquittoDir    = "mosquitto"
	ClearerDir      = "operator"
	BundlesDir      = "bundles"
	AppsDir         = "apps"

	// Clearer is the gateway id and MQTT login of the operator's clearer,
	// the shipped ACL's clearer.
	Clearer = community.Operator
	// DefaultTLSPort is the broker's TLS port when --broker gives none.
	DefaultTLSPort = 8883
	// DefaultBundleValidity is how long a join bundle is valid.
	DefaultBundleValidity = 72 * time.Hour
)

// BadInput is an error the caller's input caused (a flag, a directory
// that is not a community's, an expired bundle): the command line exits 2.
type BadInput struct{ Err error }

func (e *BadInput) Error() string { return e.Err.Error() }
func (e *BadInput) Unwrap() error { return e.Err }

func bad(format string, args ...any) error { return &BadInput{fmt.Errorf(format, args...)} }

// meta is community.json.
type meta struct {
	Community string `json:"community"`
	Broker    string `json:"broker"`
	Clearer   string `json:"clearer"`
}

// Community is an open community directory.
type Community struct {
	Dir       string // absolute
	ID        string
	Broker    string // mqtts://host:port, as every gateway reaches the broker
	ClearerID string

	operator ed25519.PrivateKey
	roster   *protocol.RosterMsg
	rosterB  []byte
	calendar market.Calendar
}

func (c *Community) path(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}

// Roster returns the newest signed roster and its bytes.
func (c *Community) Roster() (*protocol.RosterMsg, []byte) { return c.roster, c.rosterB }

// OperatorPublicKey is the key every gateway verifies rosters with.
func (c *Community) OperatorPublicKey() ed25519.PublicKey {
	return c.operator.Public().(ed25519.PublicKey)
}

// CACert returns the community CA's certificate (PEM).
func (c *Community) CACert() ([]byte, error) { return os.ReadFile(c.CAFile()) }

// CAFile is the path of the community CA's certificate.
func (c *Community) CAFile() string { return c.path(CertsDir, "ca.crt") }

// ClearerConfig is the path of the operator's clearer's configuration.
func (c *Community) ClearerConfig() string { return c.path(ClearerDir, "gateway.yaml") }

// MosquittoConf is the path of the broker's configuration.
func (c *Community) MosquittoConf() string { return c.path(MosquittoDir, "mosquitto.conf") }

// ParseBroker reads --broker, HOST or HOST:PORT, into the host and port.
func ParseBroker(s string) (host string, port int, err error) {
	host, port = s, DefaultTLSPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, bad("--broker %q: port %q is not 1 to 65535", s, p)
		}
		host, port = h, n
	} else if strings.Count(s, ":") == 1 {
		return "", 0, bad("--broker %q: %v", s, err)
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", 0, bad("--broker %q: want HOST or HOST:PORT (a DNS name or IP address the gateways reach the broker by)", s)
	}
	return strings.Trim(host, "[]"), port, nil
}

// InitResult says what Init made.
type InitResult struct {
	Community *Community
	Files     []string // paths made, in order
}

// Init makes a community directory in dir, which must not exist or be
// empty: everything of the package doc, ready to run, with the operator's
// clearer as the roster's only member (version 1, valid from the current
// interval of the default market calendar).
func Init(dir, id, broker string, now time.Time) (*InitResult, error) {
	if err := protocol.CheckID(id); err != nil {
		return nil, bad("--name %q: %w", id, err)
	}
	host, port, err := ParseBroker(broker)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, bad("no community directory given")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, bad("%s is not empty: a community directory is made in a new or empty one", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, bad("%s: %w", dir, err)
	}

	// Make everything in memory first: bad input writes nothing.
	ca, err := pki.NewCA("p2pgrid "+id+" CA", pki.DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	srv, err := ca.IssueServer([]string{host}, pki.DefaultValidity)
	if err != nil {
		return nil, bad("--broker %q: %w", broker, err)
	}
	_, opKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Community{Dir: dir, ID: id, Broker: "mqtts://" + net.JoinHostPort(host, strconv.Itoa(port)),
		ClearerID: Clearer, operator: opKey, calendar: config.Default().Market.Calendar()}
	bp := brokerPaths{
		CA: c.CAFile(), Cert: c.path(CertsDir, "server.crt"), Key: c.path(CertsDir, "server.key"),
		Passwords: c.path(MosquittoDir, "passwd"), ACL: c.path(MosquittoDir, "acl"),
		Persistence: c.path(MosquittoDir, "data"), PID: c.path(MosquittoDir, "mosquitto.pid"),
		IncludeDir: c.path(MosquittoDir, "conf.d"), Conf: c.MosquittoConf(),
		TLSPort: port, Community: id, Clearer: Clearer,
	}
	conf, err := mosquittoConf(bp)
	if err != nil {
		return nil, err
	}
	acl, err := communityACL(id, Clearer)
	if err != nil {
		return nil, err
	}
	password, err := NewPassword()
	if err != nil {
		return nil, err
	}
	pw := &PasswordFile{}
	if err := pw.Add(Clearer, password); err != nil {
		return nil, err
	}
	metaJSON, err := json.MarshalIndent(meta{Community: id, Broker: c.Broker, Clearer: Clearer}, "", "  ")
	if err != nil {
		return nil, err
	}
	opPEM, err := keyPEM(opKey)
	if err != nil {
		return nil, err
	}

	res := &InitResult{Community: c}
	write := func(path string, data []byte, perm fs.FileMode) error {
		if err := atomicfile.WriteNew(path, data, perm); err != nil {
			return err
		}
		res.Files = append(res.Files, path)
		return nil
	}
	for _, d := range []string{dir, c.path(CertsDir), c.path(MosquittoDir), c.path(MosquittoDir, "conf.d"),
		c.path(MosquittoDir, "data"), c.path(ClearerDir), c.path(BundlesDir), c.path(AppsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := ca.WriteFiles(bp.CA, c.path(CertsDir, "ca.key")); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, bp.CA, c.path(CertsDir, "ca.key"))
	if err := srv.WriteFiles(bp.Cert, bp.Key); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, bp.Cert, bp.Key)
	for _, f := range []struct {
		path string
		data []byte
		perm fs.FileMode
	}{
		{c.path(MetaFile), append(metaJSON, '\n'), 0o644},
		{c.path(OperatorKeyFile), opPEM, 0o600},
		{bp.Conf, []byte(conf), 0o644},
		{bp.ACL, []byte(acl), 0o644},
		{bp.Passwords, pw.Encode(), 0o600},
		{c.path(ClearerDir, "mqtt.password"), []byte(password + "\n"), 0o600},
	} {
		if err := write(f.path, f.data, f.perm); err != nil {
			return nil, err
		}
	}
	gwKey, _, err := protocol.LoadOrCreateKey(c.path(ClearerDir, "data"))
	if err != nil {
		return nil, err
	}
	res.Files = append(res.Files, c.path(ClearerDir, "data", protocol.KeyFile))
	roster, err := protocol.NewRoster(id, []protocol.Member{{ID: Clearer, PublicKey: gwKey.Public().(ed25519.PublicKey), Clearer: true}})
	if err != nil {
		return nil, err
	}
	if err := c.signRoster(roster, 1, c.calendar.Start(now)); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, c.path(RosterFile))
	gw := gatewayFile{Gateway: Clearer, Community: id, Clearer: config.ClearerPrimary,
		DataDir: c.path(ClearerDir, "data"), Roster: c.path(RosterFile),
		Broker: c.Broker, Username: Clearer, PasswordFile: c.path(ClearerDir, "mqtt.password"),
		CAFile: bp.CA, OperatorKey: c.OperatorPublicKey(), Made: "the operator's clearer, made by `p2pgrid community init`"}
	if err := write(c.ClearerConfig(), gw.yaml(), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// signRoster signs version seq of r, valid from validFrom, and writes it
// as roster.json, the operator's clearer's roster file: the clearer takes
// it up without a restart and publishes it to every gateway.
func (c *Community) signRoster(r *protocol.Roster, seq uint64, validFrom time.Time) error {
	data, err := protocol.EncodeRoster(c.operator, r, seq, validFrom)
	if err != nil {
		return err
	}
	msg, err := protocol.DecodeRoster(data)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.path(RosterFile), append(data, '\n'), 0o644); err != nil {
		return err
	}
	c.roster, c.rosterB = msg, data
	return nil
}

func keyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Open reads a community directory that Init made. env holds the
// environment's KEY=VALUE pairs (os.Environ): the market calendar that
// new roster versions are timed by is the clearer's configuration with
// its P2PGRID_ overrides, as the clearer itself reads it at start
// (config.Load), so that an operator's market override reaches the
// roster's valid_from as it reaches the clearer.
func Open(dir string, env []string) (*Community, error) {
	if dir == "" {
		return nil, bad("no community directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(abs, MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, bad("%s is not a community directory (no %s; make one with p2pgrid community init)", dir, MetaFile)
	} else if err != nil {
		return nil, bad("%w", err)
	}
	var m meta
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, bad("%s: %w", filepath.Join(dir, MetaFile), err)
	}
	if protocol.CheckID(m.Community) != nil || protocol.CheckID(m.Clearer) != nil || m.Broker == "" {
		return nil, bad("%s: community %q, clearer %q, broker %q: not what community init writes", filepath.Join(dir, MetaFile), m.Community, m.Clearer, m.Broker)
	}
	c := &Community{Dir: abs, ID: m.Community, Broker: m.Broker, ClearerID: m.Clearer}
	if c.operator, err = protocol.LoadKey(c.path(OperatorKeyFile)); err != nil {
		return nil, bad("%w", err)
	}
	data, err := os.ReadFile(c.path(RosterFile))
	if err != nil {
		return nil, bad("%w", err)
	}
	data = []byte(strings.TrimSpace(string(data)))
	if c.roster, err = protocol.DecodeRoster(data); err != nil {
		return nil, bad("%s: %w", c.path(RosterFile), err)
	}
	if err := c.roster.Verify(c.OperatorPublicKey(), c.ID); err != nil {
		return nil, bad("%s: %w", c.path(RosterFile), err)
	}
	c.rosterB = data
	cfg, err := config.Load(c.ClearerConfig(), env)
	if err != nil {
		return nil, bad("the clearer's configuration (with the environment's P2PGRID_ settings): %w", err)
	}
	c.calendar = cfg.Market.Calendar()
	return c, nil
}

func (c *Community) passwords() (*PasswordFile, error) {
	data, err := os.ReadFile(c.path(MosquittoDir, "passwd"))
	if err != nil {
		return nil, err
	}
	return ParsePasswordFile(data)
}

func (c *Community) writePasswords(p *PasswordFile) error {
	return replaceKeeping(c.path(MosquittoDir, "passwd"), p.Encode())
}

// replaceKeeping replaces the file at path with data, keeping its mode
// and group: the broker's files, which the operator may have given to
// Mosquitto's group (docs/community.md), stay readable to it.
func replaceKeeping(path string, data []byte) error {
	old, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, old.Mode().Perm()); err != nil {
		return err
	}
	return keepGroup(path, old)
}

// NextValidFrom is when a new roster version made at now takes effect:
// the interval after the open one, so that every gateway has it before
// that interval's gate closes (and never before the newest version).
func (c *Community) NextValidFrom(now time.Time) time.Time {
	next := c.calendar.Open(now).Add(c.calendar.Interval)
	if start := c.roster.Start(); next.Before(start) {
		return start
	}
	return next
}

// reserved says why name cannot be a new login, or "".
func (c *Community) reserved(name string, pw *PasswordFile) string {
	switch {
	case name == c.ClearerID:
		return "the operator's clearer"
	case name == "bridge":
		return "the login of a second broker's bridge"
	}
	if _, ok := c.roster.Roster.Key(name); ok {
		return "in the roster already"
	}
	if pw.Has(name) {
		return "a login already"
	}
	return ""
}

// AddResult is what AddHome made.
type AddResult struct {
	Bundle     *Bundle
	BundleFile string
	Roster     *protocol.RosterMsg
}

// AddHome admits gateway id with its public key: a random MQTT password
// (its hash into the password file), the next roster version with the
// home, valid from NextValidFrom(now), and the home's join bundle,
// bundles/ID.json, valid for validity.
func (c *Community) AddHome(id string, pub ed25519.PublicKey, now time.Time, validity time.Duration) (*AddResult, error) {
	if err := protocol.CheckID(id); err != nil {
		return nil, bad("--home %q: %w", id, err)
	}
	pw, err := c.passwords()
	if err != nil {
		return nil, err
	}
	if why := c.reserved(id, pw); why != "" {
		return nil, bad("--home %q: %s", id, why)
	}
	members := append(slices.Clone(c.roster.Roster.Gateways), protocol.Member{ID: id, PublicKey: pub})
	r, err := protocol.NewRoster(c.ID, members)
	if err != nil {
		return nil, bad("--home %q: %w", id, err)
	}
	password, err := NewPassword()
	if err != nil {
		return nil, err
	}
	if err := pw.Add(id, password); err != nil {
		return nil, err
	}
	ca, err := c.CACert()
	if err != nil {
		return nil, err
	}
	bundleFile := c.path(BundlesDir, id+".json")
	if _, err := os.Lstat(bundleFile); err == nil {
		return nil, bad("--home %q: %s exists; remove it first", id, bundleFile)
	}
	if err := c.signRoster(r, c.roster.Seq+1, c.NextValidFrom(now)); err != nil {
		return nil, err
	}
	if err := c.writePasswords(pw); err != nil {
		return nil, err
	}
	b := &Bundle{Version: 1, Community: c.ID, Gateway: id, Broker: c.Broker, CA: string(ca),
		Username: id, Password: password, OperatorKey: protocol.PublicKeyString(c.OperatorPublicKey()),
		Roster: c.rosterB, Expires: now.Add(validity).UTC().Truncate(time.Second)}
	data, err := b.Encode()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(bundleFile, data, 0o600); err != nil {
		return nil, err
	}
	return &AddResult{Bundle: b, BundleFile: bundleFile, Roster: c.roster}, nil
}

// RemoveHome takes gateway id out: the next roster version without it,
// valid from NextValidFrom(now), its login and its bundle removed.
func (c *Community) RemoveHome(id string, now time.Time) (*protocol.RosterMsg, error) {
	if id == c.ClearerID {
		return nil, bad("--home %q: the operator's clearer cannot be removed", id)
	}
	if _, ok := c.roster.Roster.Key(id); !ok {
		return nil, bad("--home %q: not in the roster of %q (p2pgrid community list shows the members)", id, c.ID)
	}
	pw, err := c.passwords()
	if err != nil {
		return nil, err
	}
	members := slices.DeleteFunc(slices.Clone(c.roster.Roster.Gateways), func(m protocol.Member) bool { return m.ID == id })
	r, err := protocol.NewRoster(c.ID, members)
	if err != nil {
		return nil, bad("--home %q: %w", id, err)
	}
	if err := c.signRoster(r, c.roster.Seq+1, c.NextValidFrom(now)); err != nil {
		return nil, err
	}
	pw.Remove(id)
	if err := c.writePasswords(pw); err != nil {
		return nil, err
	}
	if err := os.Remove(c.path(BundlesDir, id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return c.roster, nil
}

// Apps returns the read-only logins AddApp made, by name.
func (c *Community) Apps() ([]string, error) {
	entries, err := os.ReadDir(c.path(AppsDir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".password"); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// AddApp makes the read-only login name (default HOME-app) for an app of
// home (its phone's MQTT app, its Home Assistant): a random password, its
// hash in the password file, a user block in the acl that reads the home's
// own topics and publishes nothing (the market comes from the patterns
// every login has; the neighbours' telemetry and status it cannot read),
// and apps/NAME.password (0600). It returns the password and the file.
func (c *Community) AddApp(home, name string) (password, file string, err error) {
	if _, ok := c.roster.Roster.Key(home); !ok || home == c.ClearerID {
		return "", "", bad("--home %q: not a home of the roster (an app reads its own home's topics)", home)
	}
	if name == "" {
		name = home + "-app"
	}
	return c.addReader(name, appACLBlock(c.ID, home, name))
}

// AddDashboard makes the MQTT login name (default "dashboard") for the
// operator's dashboard (p2pgrid operator --mqtt): it reads every gateway's
// status and the market and publishes nothing. It returns the password and
// the file it is in.
func (c *Community) AddDashboard(name string) (password, file string, err error) {
	if name == "" {
		name = "dashboard"
	}
	return c.addReader(name, dashboardACLBlock(c.ID, name))
}

// addReader makes the read-only login name, its password in apps/, and
// appends its acl block.
func (c *Community) addReader(name, block string) (password, file string, err error) {
	if err := protocol.CheckID(name); err != nil {
		return "", "", bad("--name %q: %w", name, err)
	}
	pw, err := c.passwords()
	if err != nil {
		return "", "", err
	}
	if why := c.reserved(name, pw); why != "" {
		return "", "", bad("--name %q: %s", name, why)
	}
	if password, err = NewPassword(); err != nil {
		return "", "", err
	}
	if err := pw.Add(name, password); err != nil {
		return "", "", err
	}
	file = c.path(AppsDir, name+".password")
	if err := atomicfile.WriteNew(file, []byte(password+"\n"), 0o600); err != nil {
		return "", "", bad("--name %q: %w", name, err)
	}
	acl, err := os.ReadFile(c.path(MosquittoDir, "acl"))
	if err != nil {
		return "", "", err
	}
	if err := replaceKeeping(c.path(MosquittoDir, "acl"), append(acl, block...)); err != nil {
		return "", "", err
	}
	if err := c.writePasswords(pw); err != nil {
		return "", "", err
	}
	return password, file, nil
}
