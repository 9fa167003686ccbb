package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/p2pgrid/p2pgrid/auction"
	"github.com/p2pgrid/p2pgrid/gateway/homeassistant"
	"github.com/p2pgrid/p2pgrid/gateway/summary"
	"github.com/p2pgrid/p2pgrid/settlement"
	"github.com/p2pgrid/p2pgrid/settlement/record"
)

// appTopics is the gateway's publishing for the home's own phone app and
// Home Assistant (config apps): the retained summary of its trading and
// its single values (gateway/summary), and Home Assistant's discovery
// configs for them (gateway/homeassistant). The tally is fed what the
// gateway records of each verified settlement and each verified clearing
// price; Tick publishes when the figures changed, when a new day or month
// starts, and everything, discovery included, after every (re)connect.
type appTopics struct {
	mu       sync.Mutex
	tally    *summary.Tally
	changes  uint64 // counts changes of the tally
	sent     uint64 // changes when last published
	connects uint64 // Connections.Connects when last published in full
	full     bool   // published in full at least once
	// discovery are Home Assistant's configs, or the deletions of them
	// (apps.home_assistant false); nil: none.
	discovery []homeassistant.Message
}

// newAppTopics returns the app publishing of a gateway that has figures
// to show (a grid meter, and the tariffs to settle against), nil for
// others or with apps.enabled false. The totals of today and this month
// are rebuilt from the ledger, when it can be read.
func (g *Gateway) newAppTopics() *appTopics {
	cfg := g.cfg.Apps
	if !cfg.Enabled || g.forecast == nil || !g.settles {
		return nil
	}
	zone, err := summary.LoadZone(cfg.TimeZone)
	if err != nil { // validated: a zone database missing on this machine
		g.log.Error("no app topics", "err", err)
		return nil
	}
	now := g.now()
	a := &appTopics{tally: summary.NewTally(g.id, zone, now), changes: 1}
	if r, ok := g.ledger.(summary.LedgerReader); ok {
		var skipped *summary.SkippedError
		switch err := summary.Rebuild(r, a.tally, a.tally.Since()); {
		case errors.As(err, &skipped):
			g.log.Warn("the app topics' totals of today and this month leave out ledger records that do not decode", "err", err)
		case err != nil:
			g.log.Error("the app topics' totals of today and this month not rebuilt from the ledger: they count from now", "err", err)
			a.tally = summary.NewTally(g.id, zone, now)
		}
	}
	ha := homeassistant.Gateway{Community: g.cfg.Community, ID: g.id, Version: g.version(), Currency: g.cfg.Market.Currency,
		StatusTopic: g.topics.Status(g.id), StateTopic: func(key string) string { return g.topics.App(g.id, key) }}
	build := homeassistant.Remove
	if cfg.HomeAssistant {
		build = homeassistant.Discovery
	}
	if a.discovery, err = build(cfg.DiscoveryPrefix, ha, summary.Fields); err != nil {
		g.log.Warn("no Home Assistant discovery (set apps.home_assistant: false to silence this)", "err", err)
	}
	return a
}

// version is the gateway's software version as its status shows it.
func (g *Gateway) version() string {
	if g.opts.Version == "" {
		return "dev"
	}
	return g.opts.Version
}

// appsCleared takes a verified clearing's price.
func (g *Gateway) appsCleared(interval string, res *auction.Result) {
	a := g.apps
	if a == nil || !res.Cleared {
		return
	}
	price := record.Decimal(g.market.FormatPrice(res.Price)).Value()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tally.AddPrice(interval, price)
	a.changes++
}

// appsSettled takes a verified settlement: the records the gateway
// writes of it, exactly as the ledger holds them and Rebuild reads them.
func (g *Gateway) appsSettled(res *auction.Result, s *settlement.IntervalSettlement) {
	a := g.apps
	if a == nil {
		return
	}
	now := g.now()
	m := record.Market{Community: g.cfg.Community, Currency: g.cfg.Market.Currency, Rules: g.market}
	entries, err := record.Entries(m, now, res, s)
	if err != nil {
		g.log.Error("app topics not updated", "interval", s.Interval, "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tally.Roll(now)
	for _, e := range entries {
		if err := a.tally.Add(e.Kind, e.Data); err != nil {
			g.log.Error("app topics not updated", "interval", s.Interval, "err", err)
		}
	}
	a.changes++
}

// publishApps publishes the app topics when they changed or a new day
// began, and in full (Home Assistant's discovery too) after every
// (re)connect. A failed publish is tried again at the next tick.
func (g *Gateway) publishApps(ctx context.Context, now time.Time) {
	a := g.apps
	if a == nil {
		return
	}
	var connects uint64
	if cn, ok := g.mq.(Connections); ok {
		connects = cn.Connects()
	}
	a.mu.Lock()
	if a.tally.Roll(now) {
		a.changes++
	}
	full := !a.full || connects != a.connects
	changes := a.changes
	if !full && changes == a.sent {
		a.mu.Unlock()
		return
	}
	s := a.tally.Summary(g.cfg.Community, g.cfg.Market.Currency, now)
	var msgs []homeassistant.Message
	if full {
		msgs = append(msgs, a.discovery...)
	}
	a.mu.Unlock()

	js, err := s.MarshalJSON()
	if err != nil {
		g.log.Error("app summary not built", "err", err)
		return
	}
	msgs = append(msgs, homeassistant.Message{Topic: g.topics.App(g.id, summary.KeySummary), Payload: js})
	for _, v := range s.Values() {
		msgs = append(msgs, homeassistant.Message{Topic: g.topics.App(g.id, v.Key), Payload: []byte(v.Text)})
	}
	for _, m := range msgs {
		ctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err := g.mq.Publish(ctx, m.Topic, m.Payload, true)
		cancel()
		if err != nil {
			if ok, held := g.limit.allow("publish/apps", now); ok {
				g.log.Warn("app topics not published; will retry", "topic", m.Topic, "err", err, "similar_not_logged", held)
			}
			return
		}
	}
	a.mu.Lock()
	a.sent = changes
	if full {
		a.full, a.connects = true, connects
	}
	a.mu.Unlock()
}
