package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/gateway/protocol"
	"github.com/p2pgrid/p2pgrid/internal/atomicfile"
	"github.com/p2pgrid/p2pgrid/market"
)

// RosterFile is the file in the gateway's state directory that keeps the
// newest roster version it accepted (a protocol.RosterMsg, the format of
// the roster file), so that a restart starts from it rather than from an
// older roster file.
const RosterFile = "roster.json"

// ReadRosterFile reads a gateway's roster file: with operator, the
// operator's public key (config operator_key), a roster version signed by
// it for community (protocol.DecodeRoster, then Verify); without, a plain
// roster (protocol.ParseRoster), fixed until a restart. Errors name what
// is wrong with the file, not the file (the caller knows it).
func ReadRosterFile(path string, operator ed25519.PublicKey, community string) (*protocol.Rosters, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if operator == nil {
		r, err := protocol.ParseRoster(data)
		if err != nil {
			if _, signed := protocol.DecodeRoster(data); signed == nil {
				err = errors.New("a roster version signed by the community operator, but operator_key is not set: set it to the operator's public key")
			}
			return nil, err
		}
		return protocol.FixedRosters(r), nil
	}
	msg, err := protocol.DecodeRoster(data)
	if err != nil {
		if _, plain := protocol.ParseRoster(data); plain == nil {
			err = errors.New("a plain roster, but operator_key is set: the file must be a roster version the operator signed")
		}
		return nil, err
	}
	if err := msg.Verify(operator, community); err != nil {
		return nil, err
	}
	return protocol.NewRosters(operator, msg)
}

// newestRoster returns the roster newest held, for what is not about one
// interval: the checks at start, the status.
func (g *Gateway) newestRoster() *protocol.Roster { return g.rosters.Newest().Roster }

// rosterAt returns the roster in effect for interval (an interval id):
// every check of an interval's orders, book, result, figures and
// settlement uses it, so that all gateways judge an interval by the same
// members, whenever each of them received a new version.
func (g *Gateway) rosterAt(interval string) *protocol.Roster {
	start, err := market.ParseInterval(interval)
	if err != nil {
		return g.newestRoster() // not an interval: nothing of it verifies anyway
	}
	return g.rosters.At(start)
}

// member reports whether this gateway, with its key, is a member for the
// delivery interval starting at start: in the roster in effect for it,
// and not before the oldest version held (a gateway that joined with a
// version knows nothing of the intervals before it takes effect).
func (g *Gateway) member(start time.Time) bool {
	if start.Before(g.rosters.Oldest().Start()) {
		return false
	}
	pub, ok := g.rosters.At(start).Key(g.id)
	return ok && pub.Equal(g.key.Public())
}

// firstOpen is the first delivery interval whose gate is still open at
// now: the earliest a roster version read from the roster file may take
// effect.
func (g *Gateway) firstOpen(now time.Time) time.Time {
	d := g.calendar.Open(now)
	if !now.Before(g.calendar.GateClose(d)) {
		d = d.Add(g.calendar.Interval)
	}
	return d
}

// signedRosters reports whether the gateway holds signed roster versions
// (operator_key is set) and so takes new ones live.
func (g *Gateway) signedRosters() bool { return !g.rosters.Fixed() }

// keepRosters merges the version kept in the state directory into the
// history (the newer of it and the roster file wins) and keeps the newest
// there. A kept copy that does not verify is logged and ignored.
func (g *Gateway) keepRosters() {
	if g.opts.StateDir == "" || !g.signedRosters() {
		return
	}
	path := filepath.Join(g.opts.StateDir, RosterFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		g.log.Warn("kept roster not read; starting from the roster file", "file", path, "err", err)
	default:
		msg, err := protocol.DecodeRoster(data)
		fresh := false
		if err == nil {
			// No gate check: the kept version was accepted in time when
			// it arrived, and intervals before it are governed by the
			// roster file's version.
			fresh, err = g.rosters.Accept(msg, time.Time{})
		}
		switch {
		case err == nil && fresh:
			g.log.Info("starting from the kept roster version, newer than the roster file", "file", path, "seq", msg.Seq, "valid_from", msg.ValidFrom)
		case protocol.ReasonOf(err) == protocol.RejectReplayed:
			// The roster file is newer: it replaces the kept copy below.
		case err != nil:
			g.log.Warn("kept roster ignored; starting from the roster file", "file", path, "err", err)
		}
	}
	g.saveRoster()
}

// saveRoster writes the newest version held to the state directory
// (atomically: a power cut leaves the old version or the new one).
func (g *Gateway) saveRoster() {
	if g.opts.StateDir == "" {
		return
	}
	g.rosterMu.Lock()
	defer g.rosterMu.Unlock()
	path := filepath.Join(g.opts.StateDir, RosterFile)
	data := g.rosters.Newest().Encode()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return
	}
	err := os.MkdirAll(g.opts.StateDir, 0o700)
	if err == nil {
		err = atomicfile.Write(path, data, 0o644)
	}
	if err != nil {
		g.log.Error("roster version not kept: a restart starts from the roster file", "file", path, "err", err)
	}
}

// takeRoster handles a message on the roster topic: a version newer than
// the newest held, signed by the operator for this community, is applied
// at once; anything else is counted and logged, and changes nothing.
//
// A version from the broker is accepted without the gate check the roster
// file gets (checkRosterFile): the clearer that published it checked that
// it takes effect at an open gate, and a gateway that receives it late (it
// was offline, or the broker held it back) must still judge every
// interval from valid_from on by it, as the gateways that received it in
// time do, or it would disagree with them from then on.
func (g *Gateway) takeRoster(payload []byte) {
	msg, err := protocol.DecodeRoster(payload)
	fresh := false
	if err == nil {
		fresh, err = g.rosters.Accept(msg, time.Time{})
	}
	if err != nil {
		reason := protocol.ReasonOf(err)
		g.metrics.badMessages.WithLabelValues(protocol.KindRoster).Inc()
		g.metrics.rosterRejected.WithLabelValues(string(reason)).Inc()
		if ok, held := g.limit.allow("roster/"+string(reason), g.now()); ok {
			g.log.Warn("roster rejected", "reason", reason, "err", err, "similar_not_logged", held)
		}
		if g.clearer != nil {
			// What was published may be what the broker now retains
			// (another clearer's older version, a replay, junk): this
			// clearer puts the newest back at its next tick, once however
			// many arrive.
			g.rosterStale.Store(true)
		}
		return
	}
	if fresh {
		g.rosterAccepted(msg, "mqtt")
	}
}

// restoreRoster publishes the newest version again when a rejected
// message came on the roster topic since the last tick (takeRoster).
func (g *Gateway) restoreRoster(ctx context.Context) {
	if g.rosterStale.Swap(false) {
		g.publishRoster(ctx)
	}
}

// rosterAccepted applies a version just accepted: kept on disk, published
// by a clearer, logged.
func (g *Gateway) rosterAccepted(msg *protocol.RosterMsg, source string) {
	g.saveRoster()
	g.metrics.rosterVersion.Set(float64(g.rosters.Newest().Seq))
	late := msg.Start().Before(g.firstOpen(g.now()))
	g.log.Info("roster version accepted", "seq", msg.Seq, "valid_from", msg.ValidFrom, "gateways", len(msg.Roster.Gateways),
		"source", source, "gate_closed", late)
	if pub, ok := msg.Roster.Key(g.id); !ok || !pub.Equal(g.key.Public()) {
		g.log.Warn("this gateway is not in the new roster (or with another key): from valid_from on its orders and figures are rejected",
			"seq", msg.Seq, "valid_from", msg.ValidFrom)
	} else if g.clearer != nil && !msg.Roster.IsClearer(g.id) {
		g.log.Warn("the new roster does not mark this gateway as a clearer: from valid_from on it clears and settles nothing",
			"seq", msg.Seq, "valid_from", msg.ValidFrom)
	}
	if g.clearer != nil {
		g.publishRoster(context.Background())
	}
}

// publishRoster publishes, retained on the roster topic, what a clearer
// publishes there: the newest signed version (every clearer, so that a
// version read from one clearer's roster file reaches every gateway), or,
// with a plain roster, the roster itself (the primary only), for the
// neighbours' apps and tools.
func (g *Gateway) publishRoster(ctx context.Context) {
	payload := g.rosterPayload()
	if payload == nil {
		return
	}
	if err := g.publish(ctx, g.topics.Roster(), payload); err != nil {
		if ok, held := g.limit.allow("publish/roster", g.now()); ok {
			g.log.Warn("roster not published; will retry after the next reconnect or version", "err", err, "similar_not_logged", held)
		}
	}
}

// rosterPayload is what this gateway publishes on the roster topic; nil
// for none.
func (g *Gateway) rosterPayload() []byte {
	switch {
	case g.signedRosters() && g.clearer != nil:
		return g.rosters.Newest().Encode()
	case g.cfg.Clearer == config.ClearerPrimary:
		return g.newestRoster().Encode()
	}
	return nil
}

// fileStamp is what tells a changed roster file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// checkRosterFile reads the roster file again when it changed (its
// modification time or size), so that the operator's tool, which
// rewrites it with a new signed version, reaches the gateway, and through
// a clearer every gateway, without a restart. The version must take
// effect at an interval whose gate is still open: the operator is told at
// once (an error in the log, p2pgrid_roster_rejected_total) when it does
// not.
func (g *Gateway) checkRosterFile(now time.Time) {
	if !g.signedRosters() || g.cfg.Roster == "" {
		return
	}
	stamp, err := stampOf(g.cfg.Roster)
	g.mu.Lock()
	same := stamp == g.rosterStamp
	g.rosterStamp = stamp
	g.mu.Unlock()
	if err != nil {
		if ok, held := g.limit.allow("roster/file", now); ok {
			g.log.Warn("roster file not readable; keeping the roster held", "file", g.cfg.Roster, "err", err, "similar_not_logged", held)
		}
		return
	}
	if same {
		return
	}
	data, err := os.ReadFile(g.cfg.Roster)
	if err != nil {
		g.mu.Lock()
		g.rosterStamp = fileStamp{} // tried again at the next tick
		g.mu.Unlock()
		if ok, held := g.limit.allow("roster/file", now); ok {
			g.log.Warn("roster file not readable; keeping the roster held", "file", g.cfg.Roster, "err", err, "similar_not_logged", held)
		}
		return
	}
	msg, err := protocol.DecodeRoster(data)
	fresh := false
	if err == nil {
		fresh, err = g.rosters.Accept(msg, g.firstOpen(now))
	}
	switch {
	case err == nil && fresh:
		g.rosterAccepted(msg, "file")
	case err == nil:
	case protocol.ReasonOf(err) == protocol.RejectReplayed && msg != nil && msg.Seq < g.rosters.Newest().Seq:
		// An older version than the one held (which came over MQTT).
		g.log.Debug("roster file older than the roster held", "file", g.cfg.Roster, "seq", msg.Seq, "held", g.rosters.Newest().Seq)
	default:
		reason := protocol.ReasonOf(err)
		g.metrics.rosterRejected.WithLabelValues(string(reason)).Inc()
		g.log.Error("roster file rejected; keeping the roster held", "file", g.cfg.Roster, "reason", reason, "err", err)
	}
}

// startRosters is the roster history a gateway starts from: Options.Rosters
// (signed, with operator_key) or Options.Roster (plain, without).
func startRosters(cfg *config.Config, o Options) (*protocol.Rosters, error) {
	op := cfg.OperatorPublicKey()
	switch {
	case o.Rosters != nil && o.Roster != nil:
		return nil, errors.New("both a plain roster and signed roster versions given")
	case o.Rosters == nil && o.Roster == nil:
		return nil, cfg.KeyError("roster", errors.New("no roster"))
	case o.Roster != nil && op != nil:
		return nil, cfg.KeyError("operator_key", errors.New("set, but the roster is a plain one: with operator_key the roster file must be a version the operator signed"))
	case o.Roster != nil:
		return protocol.FixedRosters(o.Roster), nil
	case op != nil && o.Rosters.Fixed():
		return nil, cfg.KeyError("operator_key", errors.New("set, but the roster is a plain one: with operator_key the roster file must be a version the operator signed"))
	case op == nil && !o.Rosters.Fixed():
		return nil, cfg.KeyError("operator_key", errors.New("not set, but the roster is signed: set it to the community operator's public key"))
	case !o.Rosters.Fixed():
		if err := o.Rosters.Newest().Verify(op, cfg.Community); err != nil {
			return nil, cfg.KeyError("operator_key", fmt.Errorf("the roster version does not verify with it: %w", err))
		}
	}
	return o.Rosters, nil
}
