package operator

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/mqtt/mqtttest"
	"github.com/p2pgrid/p2pgrid/internal/testtool"
)

// A hash has mosquitto_passwd's form: $7$, 101 iterations, a 12-byte salt
// and a 64-byte PBKDF2-SHA512, standard base64; a new salt every time.
func TestHashPasswordForm(t *testing.T) {
	form := regexp.MustCompile(`^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$`)
	a, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := HashPassword("secret")
	if !form.MatchString(a) || a == b {
		t.Errorf("hashes %q and %q: want the $7$ form, salted differently", a, b)
	}
	if ok, err := CheckPassword(a, "secret"); !ok || err != nil {
		t.Errorf("CheckPassword(own hash, right password) = %v, %v", ok, err)
	}
	if ok, _ := CheckPassword(a, "Secret"); ok {
		t.Error("CheckPassword took a wrong password")
	}
}

// The hash mosquitto_passwd writes checks with CheckPassword: the same
// format, read the other way round.
func TestCheckPasswordReadsMosquittoPasswd(t *testing.T) {
	testtool.Integration(t)
	bin := testtool.Require(t, "mosquitto_passwd", "apt-get install mosquitto")
	f := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(bin, "-c", "-b", f, "home-1", "pa55:word").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	data, _ := os.ReadFile(f)
	p, err := ParsePasswordFile(data)
	if err != nil || !p.Has("home-1") {
		t.Fatalf("%q: %v", data, err)
	}
	if ok, err := CheckPassword(p.Hash("home-1"), "pa55:word"); !ok || err != nil {
		t.Errorf("mosquitto_passwd's hash, right password: %v, %v", ok, err)
	}
	if ok, _ := CheckPassword(p.Hash("home-1"), "pa55:wort"); ok {
		t.Error("mosquitto_passwd's hash took a wrong password")
	}
}

// The real Mosquitto takes a login whose hash HashPassword made, and
// refuses a wrong password and a login whose line was removed.
func TestMosquittoAcceptsOurHashes(t *testing.T) {
	testtool.Integration(t)
	pub := testtool.Require(t, "mosquitto_pub", "apt-get install mosquitto-clients")
	m := mqtttest.Start(t, mqtttest.Config{Users: map[string]string{"placeholder": "x"}})
	p := &PasswordFile{}
	for _, u := range []string{"home-1", "home-2"} {
		if err := p.Add(u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	p.Remove("home-2")
	if err := os.WriteFile(m.PasswordFile, p.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Reload()
	login := func(user, password string) error {
		return exec.Command(pub, "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-u", user, "-P", password,
			"-t", "p2pgrid/v1/c1/status/"+user, "-m", "x").Run()
	}
	deadline := time.Now().Add(10 * time.Second)
	for login("home-1", "pw-home-1") != nil { // the reload comes a moment later
		if time.Now().After(deadline) {
			t.Fatalf("Mosquitto refused home-1 with the password we hashed:\n%s", m.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if login("home-1", "pw-home-2") == nil {
		t.Error("Mosquitto took home-1 with a wrong password")
	}
	if login("home-2", "pw-home-2") == nil {
		t.Error("Mosquitto took home-2, whose login was removed")
	}
	if login("placeholder", "x") == nil {
		t.Error("the placeholder's login survived the new file")
	}
}

// A password file reads back as written; a malformed line or a user
// twice is an error naming the line.
func TestPasswordFileRoundTrip(t *testing.T) {
	p, err := ParsePasswordFile([]byte("# comment\n\na:$7$1$x$y\nb:$7$2$x$y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Encode()); got != "a:$7$1$x$y\nb:$7$2$x$y\n" || strings.Join(p.Users(), ",") != "a,b" {
		t.Errorf("Encode %q, users %v", got, p.Users())
	}
	if err := p.Add("a", "x"); err == nil {
		t.Error("Add took a user twice")
	}
	if err := p.Add("c:d", "x"); err == nil {
		t.Error("Add took a username with ':'")
	}
	for in, want := range map[string]string{"a:x\nnocolon\n": "line 2", "a:x\na:y\n": `line 2: user "a" listed twice`} {
		if _, err := ParsePasswordFile([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	pw, _ := NewPassword()
	if len(pw) != 32 || strings.ContainsAny(pw, "+/=:") {
		t.Errorf("NewPassword %q: want 32 base64url characters", pw)
	}
}
