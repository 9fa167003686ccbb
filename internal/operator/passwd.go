package operator

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Mosquitto 2.0's password hash, as mosquitto_passwd writes it:
//
//	username:$7$101$<base64 salt, 12 bytes>$<base64 PBKDF2-SHA512, 64 bytes>
//
// "$7$" is PBKDF2 with HMAC-SHA512, 101 iterations (mosquitto_passwd's
// default), standard base64 with padding.
const (
	hashPrefix     = "$7$"
	hashIterations = 101
	saltSize       = 12
	hashSize       = sha512.Size
)

// HashPassword returns the Mosquitto "$7$" hash of password with a new
// random salt, the part of a password file line after "username:".
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	return hashWith(password, salt, hashIterations)
}

func hashWith(password string, salt []byte, iterations int) (string, error) {
	sum, err := pbkdf2.Key(sha512.New, password, salt, iterations, hashSize)
	if err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	return fmt.Sprintf("%s%d$%s$%s", hashPrefix, iterations,
		base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(sum)), nil
}

// CheckPassword reports whether password matches a "$7$" hash, as
// Mosquitto checks a login.
func CheckPassword(hash, password string) (bool, error) {
	rest, ok := strings.CutPrefix(hash, hashPrefix)
	parts := strings.Split(rest, "$")
	if !ok || len(parts) != 3 {
		return false, fmt.Errorf("password hash %.12q...: not a Mosquitto $7$ hash", hash)
	}
	iter, err := strconv.Atoi(parts[0])
	if err != nil || iter < 1 {
		return false, fmt.Errorf("password hash: iterations %q", parts[0])
	}
	salt, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		return false, fmt.Errorf("password hash: salt: %w", err)
	}
	want, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(want) != hashSize {
		return false, errors.New("password hash: not a 64-byte base64 hash")
	}
	got, err := hashWith(password, salt, iter)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1, nil
}

// NewPassword returns a random MQTT password: 24 bytes of crypto/rand,
// base64url without padding (32 characters, no character a shell or a
// YAML file treats specially).
func NewPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// PasswordFile is a Mosquitto password file: one "username:hash" line per
// login, in the order they were added.
type PasswordFile struct {
	users  []string
	hashes map[string]string
}

// ParsePasswordFile reads a password file. Blank lines and lines starting
// with '#' are dropped, as Mosquitto ignores them; a line without ':' or a
// username given twice is an error naming the line.
func ParsePasswordFile(data []byte) (*PasswordFile, error) {
	p := &PasswordFile{hashes: map[string]string{}}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("password file: line %d: want username:hash", i+1)
		}
		if _, dup := p.hashes[user]; dup {
			return nil, fmt.Errorf("password file: line %d: user %q listed twice", i+1, user)
		}
		p.users = append(p.users, user)
		p.hashes[user] = hash
	}
	return p, nil
}

// Users returns the usernames, in file order.
func (p *PasswordFile) Users() []string { return slices.Clone(p.users) }

// Has reports whether user has a login.
func (p *PasswordFile) Has(user string) bool { _, ok := p.hashes[user]; return ok }

// Hash returns user's hash.
func (p *PasswordFile) Hash(user string) string { return p.hashes[user] }

// Add hashes password and adds a login for user, who must not have one.
// A username with ':' or a line break cannot be written.
func (p *PasswordFile) Add(user, password string) error {
	if user == "" || strings.ContainsAny(user, ":\r\n") {
		return fmt.Errorf("password file: username %q: empty, or holds ':' or a line break", user)
	}
	if p.Has(user) {
		return fmt.Errorf("password file: user %q has a login already", user)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	if p.hashes == nil {
		p.hashes = map[string]string{}
	}
	p.users = append(p.users, user)
	p.hashes[user] = hash
	return nil
}

// Remove deletes user's login; it reports whether there was one.
func (p *PasswordFile) Remove(user string) bool {
	if !p.Has(user) {
		return false
	}
	delete(p.hashes, user)
	p.users = slices.DeleteFunc(p.users, func(u string) bool { return u == user })
	return true
}

// Encode writes the file as mosquitto_passwd does: one line per login.
func (p *PasswordFile) Encode() []byte {
	var b bytes.Buffer
	for _, u := range p.users {
		fmt.Fprintf(&b, "%s:%s\n", u, p.hashes[u])
	}
	return b.Bytes()
}
