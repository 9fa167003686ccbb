package dashboard

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Auth is who may see the dashboard: a bearer token, users with
// passwords (HTTP basic auth), or both. The zero Auth lets everyone in,
// which Run allows only on a loopback address.
type Auth struct {
	Token string
	Users map[string]string // user -> password
}

// Enabled reports whether a login is required.
func (a Auth) Enabled() bool { return a.Token != "" || len(a.Users) > 0 }

// tokenCookie holds the token given once as ?token=.
const tokenCookie = "p2pgrid_dashboard"

// equal compares two secrets in constant time (their SHA-256, so that
// their lengths are not told either).
func equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// allowed reports whether r carries a valid login.
func (a Auth) allowed(r *http.Request) bool {
	if !a.Enabled() {
		return true
	}
	if a.Token != "" {
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(h, a.Token) {
			return true
		}
		if c, err := r.Cookie(tokenCookie); err == nil && equal(c.Value, a.Token) {
			return true
		}
	}
	if user, pass, ok := r.BasicAuth(); ok && len(a.Users) > 0 {
		ok := false
		for u, p := range a.Users {
			// Every user is compared, so the time does not tell which.
			if equal(u, user) && equal(p, pass) {
				ok = true
			}
		}
		return ok
	}
	return false
}

// wrap requires a login for every request but one that carries the token
// as ?token=: that sets the cookie and redirects to the same URL without
// it.
func (a Auth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Token != "" && r.URL.Query().Has("token") {
			if !equal(r.URL.Query().Get("token"), a.Token) {
				http.Error(w, "the token given as ?token= is not this dashboard's", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: a.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q := r.URL.Query()
			q.Del("token")
			u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		if !a.allowed(r) {
			if len(a.Users) > 0 {
				w.Header().Set("WWW-Authenticate", `Basic realm="p2pgrid dashboard", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="p2pgrid dashboard"`)
			}
			http.Error(w, "login required: a bearer token (Authorization: Bearer T, or ?token=T once) or a user and password", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopback reports whether the listen address addr (host:port) is on
// loopback only: 127.0.0.0/8, ::1 or localhost. An empty host (all
// interfaces) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadUsers reads a basic-auth file: one user:password per line; blank
// lines and lines starting with # are skipped. A line without a user or
// password, or a user twice, is an error naming the line.
func ReadUsers(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("basic-auth file: %w", err)
	}
	defer f.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "" || pass == "":
			return nil, fmt.Errorf("basic-auth file %s: line %d: want user:password", path, n)
		case users[user] != "":
			return nil, fmt.Errorf("basic-auth file %s: line %d: user %q twice", path, n, user)
		}
		users[user] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("basic-auth file %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, errors.New("basic-auth file " + path + ": no user:password line")
	}
	return users, nil
}
