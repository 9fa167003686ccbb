package operator

import (
	"fmt"
	"strings"

	"github.com/p2pgrid/p2pgrid/configs"
)

// shippedFile reads one of the shipped Mosquitto files, embedded at build
// time from configs/mosquitto/.
func shippedFile(name string) (string, error) {
	b, err := configs.Mosquitto.ReadFile("mosquitto/" + name)
	if err != nil {
		return "", fmt.Errorf("the shipped configs/mosquitto/%s: %w", name, err)
	}
	return string(b), nil
}

// brokerPaths are the files of a community's broker, absolute paths.
type brokerPaths struct {
	CA, Cert, Key      string // certs/ca.crt, server.crt, server.key
	Passwords, ACL     string // mosquitto/passwd, mosquitto/acl
	Persistence, PID   string // mosquitto/data/, mosquitto/mosquitto.pid
	IncludeDir         string // mosquitto/conf.d
	Conf               string // mosquitto/mosquitto.conf itself
	TLSPort            int    // the port of --broker
	Community, Clearer string
}

// mosquittoConf is the shipped mosquitto.conf with the community's paths
// and TLS port filled in; every other line as shipped. It fails if the
// shipped file lacks one of the lines it fills in.
func mosquittoConf(p brokerPaths) (string, error) {
	raw, err := shippedFile("mosquitto.conf")
	if err != nil {
		return "", err
	}
	rewrite := map[string]string{
		"listener 8883":        fmt.Sprintf("listener %d", p.TLSPort),
		"cafile":               "cafile " + p.CA,
		"certfile":             "certfile " + p.Cert,
		"keyfile":              "keyfile " + p.Key,
		"password_file":        "password_file " + p.Passwords,
		"acl_file":             "acl_file " + p.ACL,
		"persistence_location": "persistence_location " + p.Persistence + "/",
		"pid_file":             "pid_file " + p.PID,
		"include_dir":          "include_dir " + p.IncludeDir,
	}
	body, err := rewriteLines("mosquitto.conf", raw, rewrite)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("# The broker of community %s, made by `p2pgrid community init` from the\n"+
		"# shipped configs/mosquitto/mosquitto.conf: its paths point into this\n"+
		"# community directory and the TLS listener is on port %d; every other\n"+
		"# line is as shipped. Run: mosquitto -c %s\n\n", p.Community, p.TLSPort, p.Conf) + body, nil
}

// rewriteLines replaces every line of a shipped file that is a key of
// rewrite, or starts with it and a space, by its value; it fails if the
// file lacks one of them.
func rewriteLines(name, raw string, rewrite map[string]string) (string, error) {
	seen := map[string]bool{}
	var out strings.Builder
	for _, line := range strings.SplitAfter(raw, "\n") {
		text := strings.TrimSuffix(line, "\n")
		for prefix, repl := range rewrite {
			if text == prefix || strings.HasPrefix(text, prefix+" ") {
				line, seen[prefix] = repl+"\n", true
			}
		}
		out.WriteString(line)
	}
	for prefix := range rewrite {
		if !seen[prefix] {
			return "", fmt.Errorf("the shipped configs/mosquitto/%s has no %q line", name, prefix)
		}
	}
	return out.String(), nil
}

// shippedClearer is the clearer's username in the shipped ACL's clearer
// block.
const shippedClearer = "operator"

// communityACL is the shipped ACL with the clearer block's user filled in
// for the community's clearer.
func communityACL(community, clearer string) (string, error) {
	raw, err := shippedFile("acl")
	if err != nil {
		return "", err
	}
	body, err := rewriteLines("acl", raw, map[string]string{"user " + shippedClearer: "user " + clearer})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("# The ACL of community %s, made by `p2pgrid community init` from the\n"+
		"# shipped configs/mosquitto/acl, with the clearer block for %q;\n"+
		"# `p2pgrid community add-app` appends a read-only block per app.\n\n", community, clearer) + body, nil
}

// appACLBlock is the ACL block of home's read-only app login name, the
// block configs/mosquitto/README.md shows ("A read-only login for an
// app"): it reads the home's own telemetry, status, metered figures, app
// topics and Home Assistant discovery configs (the market comes from the
// shipped "pattern read" lines every login has), and its "topic deny"
// lines take back, for this login alone, the writes the shipped
// "pattern ... %u" lines give every login (Mosquitto checks a user's own
// lines first, and a deny there ends the check).
func appACLBlock(community, home, name string) string {
	return fmt.Sprintf("\n# %s: the read-only app login of %s (p2pgrid community add-app).\n"+
		"user %s\n"+
		"topic read p2pgrid/v1/%s/telemetry/%s\n"+
		"topic read p2pgrid/v1/%s/status/%s\n"+
		"topic read p2pgrid/v1/%s/metered/%s\n"+
		"topic read p2pgrid/v1/%s/app/%s/+\n"+
		"topic read homeassistant/sensor/p2pgrid_%s/+/config\n"+
		"topic deny p2pgrid/v1/+/+/%s\n"+
		"topic deny p2pgrid/v1/+/app/%s/+\n"+
		"topic deny homeassistant/sensor/p2pgrid_%s/+/config\n",
		name, home, name, community, home, community, home, community, home, community, home, home, name, name, name)
}

// dashboardACLBlock is the acl block of the operator dashboard's login
// name, as configs/mosquitto/README.md shows it: every gateway's status of
// community, the market (the pattern lines), and no publishing.
func dashboardACLBlock(community, name string) string {
	return fmt.Sprintf("\n# %s: the operator's dashboard (p2pgrid community add-dashboard).\n"+
		"user %s\n"+
		"topic read p2pgrid/v1/%s/status/+\n"+
		"topic deny p2pgrid/v1/+/+/%s\n"+
		"topic deny p2pgrid/v1/+/app/%s/+\n"+
		"topic deny homeassistant/sensor/p2pgrid_%s/+/config\n",
		name, name, community, name, name, name)
}
