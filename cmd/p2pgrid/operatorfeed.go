package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pgrid/p2pgrid/dashboard"
	"github.com/p2pgrid/p2pgrid/dashboard/statusfeed"
	"github.com/p2pgrid/p2pgrid/gateway/mqtt"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
)

// statusLive is the live feed of p2pgrid operator --mqtt: the gateways'
// retained statuses, as they say them (statusfeed).
type statusLive struct{ feed *statusfeed.Feed }

var _ dashboard.Live = statusLive{}

// Gateways implements dashboard.Live.
func (l statusLive) Gateways() []dashboard.GatewayStatus {
	var out []dashboard.GatewayStatus
	for _, st := range l.feed.Statuses() {
		g := dashboard.GatewayStatus{ID: st.Gateway, Online: st.State == protocol.StateOnline,
			Status: fmt.Sprintf("%s since %s, version %s", st.State, st.Time.UTC().Format("2006-01-02 15:04:05Z"), st.Version)}
		for _, a := range st.Alarms {
			g.Alarms = append(g.Alarms, a.Kind)
		}
		out = append(out, g)
	}
	return out
}

// Verifications implements dashboard.Live: a gateway verified an
// interval when it said its clearing was ok and its settlement, if there
// is one yet, too.
func (l statusLive) Verifications(interval string) []dashboard.Verification {
	var out []dashboard.Verification
	for gw, v := range l.feed.Verdicts(interval) {
		ok := v.Clearing == protocol.VerdictOK && (v.Settlement == "" || v.Settlement == protocol.VerdictOK)
		x := dashboard.Verification{Gateway: gw, Verified: ok}
		if !ok {
			var why []string
			if v.Clearing != protocol.VerdictOK {
				why = append(why, "clearing "+v.Clearing)
			}
			if v.Settlement != "" && v.Settlement != protocol.VerdictOK {
				why = append(why, "settlement "+v.Settlement)
			}
			x.Err = strings.Join(why, ", ")
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Gateway < out[j].Gateway })
	return out
}

// feedFlags are p2pgrid operator's flags of the MQTT live feed.
type feedFlags struct {
	broker, community, clientID, user, passwordFile, caFile string
}

func (f *feedFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.broker, "mqtt", "", "follow the gateways' retained statuses on this MQTT broker (tcp://, ssl://): their status, alarms and verification of each interval")
	fl.StringVar(&f.community, "community", "", "with --mqtt: the community id (the roster's)")
	fl.StringVar(&f.clientID, "mqtt-client-id", "operator-dashboard", "with --mqtt: the MQTT client id")
	fl.StringVar(&f.user, "mqtt-username", "", "with --mqtt: the broker login, a read-only one of its own (p2pgrid community add-dashboard)")
	fl.StringVar(&f.passwordFile, "mqtt-password-file", "", "with --mqtt: a file holding the login's password")
	fl.StringVar(&f.caFile, "mqtt-ca", "", "with --mqtt: PEM file of the CA of the broker's TLS certificate")
}

// start connects the feed in the background (it reconnects by itself) and
// returns it with the client to close; nil, nil without --mqtt.
func (f *feedFlags) start(log *slog.Logger) (dashboard.Live, func(), error) {
	if f.broker == "" {
		if f.community != "" || f.user != "" || f.passwordFile != "" || f.caFile != "" {
			return nil, nil, errors.New("--community, --mqtt-username, --mqtt-password-file and --mqtt-ca go with --mqtt URL")
		}
		return nil, nil, nil
	}
	if f.community == "" {
		return nil, nil, errors.New("--mqtt: give the community id too (--community)")
	}
	o := mqtt.Options{Broker: f.broker, ClientID: f.clientID, Username: f.user, CAFile: f.caFile, Logger: log}
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--mqtt-password-file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	c, err := mqtt.New(o)
	if err != nil {
		return nil, nil, fmt.Errorf("--mqtt: %w", err)
	}
	feed := statusfeed.New(f.community)
	if err := feed.Follow(c); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("--mqtt: %w", err)
	}
	c.Start()
	return statusLive{feed}, c.Close, nil
}
