package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/operator"
)

// operatorErr gives the package's errors their exit code: 2 for what the
// caller's input caused.
func operatorErr(what string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", what, err)
	var bi *operator.BadInput
	if errors.As(err, &bi) {
		return badInput(err)
	}
	return err
}

func newCommunityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "community",
		Short: "Run a community as its operator: broker files, logins, the signed roster, join bundles",
		Long: `Keep a community directory: the community CA and the broker's certificate,
Mosquitto's configuration, password file and ACL, the community operator
key that signs rosters, the operator's clearer gateway, the signed roster,
and one join bundle per home. Step by step: docs/community.md.`,
	}
	cmd.AddCommand(newCommunityInitCmd(), newCommunityAddCmd(), newCommunityRemoveCmd(),
		newCommunityListCmd(), newCommunityAddAppCmd(), newCommunityAddDashboardCmd())
	return cmd
}

func newCommunityInitCmd() *cobra.Command {
	var name, broker string
	cmd := &cobra.Command{
		Use:   "init DIR --name NAME --broker HOST[:PORT]",
		Short: "Make a new community directory, ready to run",
		Long: `Make everything a community needs in DIR (new or empty):

  community.json       the community's id and broker URL
  operator.key         the community operator key (Ed25519, mode 0600): it
                       signs rosters and nothing else; it never leaves DIR
  roster.json          version 1 of the signed roster: the operator's clearer
  certs/               the community CA (ca.key: keep offline) and the
                       broker's TLS certificate for HOST
  mosquitto/           mosquitto.conf (the shipped one, paths into DIR, the
                       TLS listener on PORT, default 8883), passwd, acl
  operator/            the operator's clearer: gateway.yaml, mqtt.password,
                       data/gateway.key
  bundles/, apps/      filled by "community add" and "community add-app"

HOST is the DNS name or IP address every gateway reaches the broker by.`,
		Example: `  p2pgrid community init ./lindenweg --name lindenweg --broker broker.lan`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" || broker == "" {
				return badInput(errors.New("community init: --name and --broker are required"))
			}
			res, err := operator.Init(args[0], name, broker, time.Now())
			if err != nil {
				return operatorErr("community init", err)
			}
			c := res.Community
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "made community %s in %s, broker %s:\n", c.ID, c.Dir, c.Broker)
			for _, f := range res.Files {
				fmt.Fprintf(w, "  %s\n", f)
			}
			fmt.Fprintf(w, `next:
  1. start the broker: mosquitto -c %s
  2. start the clearer: p2pgrid gateway --config %s
  3. for each home: its owner runs "p2pgrid key --data /var/lib/p2pgrid" on its
     gateway; you run "p2pgrid community add %s --home ID --public-key KEY"
     and hand the bundle to the home (docs/community.md)
keep %s and certs/ca.key to yourself
`, c.MosquittoConf(), c.ClearerConfig(), args[0], operator.OperatorKeyFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the community id (required)")
	cmd.Flags().StringVar(&broker, "broker", "", "HOST[:PORT] the gateways reach the broker at over TLS (required; port 8883 by default)")
	return cmd
}

func newCommunityAddCmd() *cobra.Command {
	var home, key, request string
	var valid time.Duration
	var clock *testClockFlags
	cmd := &cobra.Command{
		Use:   "add DIR (--home ID --public-key ed25519:... | --request FILE)",
		Short: "Admit a home: its MQTT login, the next roster version, its join bundle",
		Long: `Admit the home whose gateway id is ID and whose public key is the one
"p2pgrid key" printed on its gateway: a random MQTT password (its hash into
mosquitto/passwd), the next signed roster version with the home, valid from
the interval after the next one (so every gateway has it before that gate
closes), and the join bundle DIR/bundles/ID.json, printed as a QR code too.
The bundle holds the home's password: hand it over as you would the
password. Reload Mosquitto afterwards (the new login); the running clearer
reads the new roster.json by itself and publishes it to every gateway.

In place of --home and --public-key, --request takes the file that
"p2pgrid join --request" printed on the home's gateway.`,
		Example: `  p2pgrid community add ./lindenweg --home home-17 --public-key ed25519:3q2+7w...
  p2pgrid community add ./lindenweg --request home-17.request.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := homeAndKey(&home, key, request)
			if err != nil {
				return err
			}
			if valid <= 0 {
				return badInput(fmt.Errorf("community add: --valid %v: want a positive duration", valid))
			}
			now, err := clock.now()
			if err != nil {
				return err
			}
			c, err := operator.Open(args[0], os.Environ())
			if err != nil {
				return operatorErr("community add", err)
			}
			res, err := c.AddHome(home, pub, now(), valid)
			if err != nil {
				return operatorErr("community add", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "added %s to community %s: roster version %d, valid from %s\n", home, c.ID, res.Roster.Seq, res.Roster.ValidFrom)
			fmt.Fprintf(w, "join bundle: %s (valid until %s)\n", res.BundleFile, res.Bundle.Expires.Format(time.RFC3339))
			fmt.Fprintf(w, "THE BUNDLE HOLDS %s'S MQTT PASSWORD: hand it over as you would the password, then delete it.\n", home)
			fmt.Fprintf(w, "on the home's gateway: p2pgrid join %s.json\n", home)
			data, err := res.Bundle.Encode()
			if err != nil {
				return err
			}
			printQR(w, data)
			fmt.Fprintf(w, "next: reload Mosquitto (the new login); the running clearer takes roster version %d from roster.json and publishes it\n", res.Roster.Seq)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "the home's gateway id (required)")
	f.StringVar(&key, "public-key", "", `the home's public key, as "p2pgrid key" printed it (required)`)
	f.StringVar(&request, "request", "", `the home's join request, as "p2pgrid join --request" printed it, in place of --home and --public-key`)
	f.DurationVar(&valid, "valid", operator.DefaultBundleValidity, "how long the join bundle is valid")
	clock = addTestClockFlags(f)
	return cmd
}

// homeAndKey takes the home's id and public key from --home and
// --public-key, or from the join request file.
func homeAndKey(home *string, key, request string) (ed25519.PublicKey, error) {
	if request != "" {
		if *home != "" || key != "" {
			return nil, badInput(errors.New("community add: --request, or --home and --public-key, not both"))
		}
		data, err := os.ReadFile(request)
		if err != nil {
			return nil, badInput(fmt.Errorf("community add: --request: %w", err))
		}
		id, pub, err := operator.ParseJoinRequest(data)
		if err != nil {
			return nil, operatorErr("community add: "+request, err)
		}
		*home = id
		return pub, nil
	}
	if *home == "" || key == "" {
		return nil, badInput(errors.New("community add: --home and --public-key (or --request) are required"))
	}
	pub, err := protocol.ParsePublicKey(key)
	if err != nil {
		return nil, badInput(fmt.Errorf("community add: --public-key: %w", err))
	}
	return pub, nil
}

// printQR prints data as a QR code in the terminal, or says why not.
func printQR(w io.Writer, data []byte) {
	q, err := qrcode.New(strings.TrimSpace(string(data)), qrcode.Low)
	if err != nil {
		fmt.Fprintf(w, "(no QR code: %d bytes is more than one holds; copy the file instead)\n", len(data))
		return
	}
	fmt.Fprint(w, "the bundle as a QR code:\n"+q.ToSmallString(false))
}

func newCommunityRemoveCmd() *cobra.Command {
	var home string
	var clock *testClockFlags
	cmd := &cobra.Command{
		Use:   "remove DIR --home ID",
		Short: "Take a home out: the next roster version without it, its login removed",
		Long: `Take the home ID out of the community: the next signed roster version without
it, valid from the interval after the next one, its MQTT login removed from
mosquitto/passwd and its bundle deleted. Reload Mosquitto afterwards (its
login is refused from then on); the running clearer reads the new
roster.json by itself and publishes it to every gateway.`,
		Example: `  p2pgrid community remove ./lindenweg --home home-17`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if home == "" {
				return badInput(errors.New("community remove: --home is required"))
			}
			now, err := clock.now()
			if err != nil {
				return err
			}
			c, err := operator.Open(args[0], os.Environ())
			if err != nil {
				return operatorErr("community remove", err)
			}
			msg, err := c.RemoveHome(home, now())
			if err != nil {
				return operatorErr("community remove", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from community %s: roster version %d, valid from %s; its login is gone\nnext: reload Mosquitto; the running clearer takes roster version %d from roster.json and publishes it\n",
				home, c.ID, msg.Seq, msg.ValidFrom, msg.Seq)
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "the home's gateway id (required)")
	clock = addTestClockFlags(cmd.Flags())
	return cmd
}

func newCommunityListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list DIR",
		Short:   "List the members, clearers, apps and the roster version",
		Example: `  p2pgrid community list ./lindenweg`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := operator.Open(args[0], os.Environ())
			if err != nil {
				return operatorErr("community list", err)
			}
			msg, _ := c.Roster()
			apps, err := c.Apps()
			if err != nil {
				return operatorErr("community list", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "community %s, broker %s\nroster version %d, valid from %s, operator key %s\n",
				c.ID, c.Broker, msg.Seq, msg.ValidFrom, protocol.PublicKeyString(c.OperatorPublicKey()))
			fmt.Fprintf(w, "%-24s %-8s %s\n", "GATEWAY", "ROLE", "PUBLIC KEY")
			for _, m := range msg.Roster.Gateways {
				role := "home"
				if m.Clearer {
					role = "clearer"
				}
				fmt.Fprintf(w, "%-24s %-8s %s\n", m.ID, role, protocol.PublicKeyString(m.PublicKey))
			}
			for _, a := range apps {
				fmt.Fprintf(w, "%-24s %-8s %s\n", a, "app", "(read-only login)")
			}
			return nil
		},
	}
}

func newCommunityAddAppCmd() *cobra.Command {
	var home, name string
	cmd := &cobra.Command{
		Use:   "add-app DIR --home ID [--name NAME]",
		Short: "Make a read-only MQTT login for a home's phone app or Home Assistant",
		Long: `Make the MQTT login NAME (default ID-app) for an app of home ID: it may read
the home's own telemetry, status and metered figures, its app topics (the
summary of its trading) and its Home Assistant discovery configs, and the
community's market (books, results, settlements, orders, roster), none of
the neighbours' telemetry, status or app topics, and publish nothing. A random password (its
hash into mosquitto/passwd, the password in DIR/apps/NAME.password) and a
user block in mosquitto/acl, as configs/mosquitto/README.md shows. Reload
Mosquitto afterwards.`,
		Example: `  p2pgrid community add-app ./lindenweg --home home-17
  p2pgrid community add-app ./lindenweg --home home-17 --name home-17-assistant`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if home == "" {
				return badInput(errors.New("community add-app: --home is required (the home whose topics the app reads)"))
			}
			return addReadOnlyLogin(cmd, "community add-app", args[0], home, func(c *operator.Community) (string, string, error) {
				return c.AddApp(home, name)
			})
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "the home whose topics the app reads (required)")
	cmd.Flags().StringVar(&name, "name", "", "the app's login (default HOME-app)")
	return cmd
}

func newCommunityAddDashboardCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "add-dashboard DIR [--name NAME]",
		Short: "Make a read-only MQTT login for the operator's dashboard",
		Long: `Make the MQTT login NAME (default dashboard) for 'p2pgrid operator --mqtt':
it may read every gateway's status (online, alarms, its verdict on each
interval) and the community's market, none of the homes' telemetry or
metered figures, and publish nothing. The dashboard needs a login of its
own: on the clearer's it would take the clearer's client id and knock the
clearer off the broker. A random password (its hash into mosquitto/passwd,
the password in DIR/apps/NAME.password) and a user block in mosquitto/acl,
as configs/mosquitto/README.md shows. Reload Mosquitto afterwards.`,
		Example: `  p2pgrid community add-dashboard ./lindenweg
  p2pgrid operator --ledger /var/lib/p2pgrid/ledger --mqtt ssl://broker.lan:8883 --community lindenweg \
    --mqtt-username dashboard --mqtt-password-file ./lindenweg/apps/dashboard.password --mqtt-ca ./lindenweg/ca/ca.crt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return addReadOnlyLogin(cmd, "community add-dashboard", args[0], "the operator's dashboard", func(c *operator.Community) (string, string, error) {
				return c.AddDashboard(name)
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the dashboard's login (default dashboard)")
	return cmd
}

// addReadOnlyLogin opens the community in dir, makes a read-only login
// with add (which returns its password and the file it is in) and prints
// it as the login of what; verb names the command in errors.
func addReadOnlyLogin(cmd *cobra.Command, verb, dir, what string, add func(*operator.Community) (password, file string, err error)) error {
	c, err := operator.Open(dir, os.Environ())
	if err != nil {
		return operatorErr(verb, err)
	}
	password, file, err := add(c)
	if err != nil {
		return operatorErr(verb, err)
	}
	login := strings.TrimSuffix(filepath.Base(file), ".password")
	fmt.Fprintf(cmd.OutOrStdout(), "made read-only login %s for %s: broker %s, username %s, password %s (also in %s), CA %s\nnext: reload Mosquitto\n",
		login, what, c.Broker, login, password, file, c.CAFile())
	return nil
}
