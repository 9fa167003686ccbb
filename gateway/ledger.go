package gateway

import (
	"log/slog"

	"github.com/p2pgrid/p2pgrid/gateway/config"
	"github.com/p2pgrid/p2pgrid/settlement/ledger"
)

// LedgerOptions is how a gateway opens its ledger: the index remembers the
// keys of what the gateway can still record (market.Calendar.Recall: it
// records only intervals of its window), not of every record, so that its
// memory stays bounded however long it runs.
func LedgerOptions(cfg *config.Config, log *slog.Logger) ledger.Options {
	return ledger.Options{Logger: log, IndexFor: cfg.Market.Calendar().Recall()}
}
