// Package influx is the InfluxDB sink of the settlement ledger: it copies
// ledger records to InfluxDB (2.x, or 1.8+ through its 2.0 compatibility
// API) for dashboards and the operator view, and reads settlements back.
//
// The ledger is the outbox and stays the source of truth. The sink keeps
// a ledger cursor (named "influx" by default) and moves it only after
// InfluxDB has confirmed a write, batch by batch (Options.Batch, default
// 500 records). While InfluxDB is down the gateway goes on trading and
// appending to the ledger; Drain fails without moving the cursor, and the
// backlog drains in bounded batches when the server is back. A record
// written twice (a crash between write and cursor) overwrites itself:
// InfluxDB identifies a point by measurement, tag set and timestamp, and
// every point's identity is in its tags and its timestamp is taken from
// the record's data, never from the clock.
//
// The package knows nothing of Modbus, MQTT or the auction; it sees only
// ledger records.
//
// # Point schema
//
// The records and their shapes are declared in settlement/record (the
// kinds, typed data and decoders, with a golden file of the records of a
// settled interval); this schema is how they map. Every ledger Kind below
// becomes one point; every point has the integer
// field ledger_seq (the record's Seq). Decimal quantities (money, kWh,
// prices) are stored twice: the exact decimal text from the ledger as a
// string field (amount="0.252") and a float64 copy with the suffix _f
// (amount_f=0.252) for graphs only; anything that adds money up must use
// the string, or better the ledger. A decimal in Data may be a JSON string
// or number; null or absent leaves both fields out.
//
// An interval is named by its start time in RFC 3339, with or without
// seconds ("2026-11-22T10:15Z", as the auction names books;
// market.ParseIntervalLoose); the point's
// timestamp is that start, and the tag interval is the name as given.
//
//	kind "clearing"   {"community","interval","price" (decimal|null),"volume_kwh","orders","trades"}
//	  measurement clearing, time = interval start
//	  tags   community (omitted when empty), interval
//	  fields price, price_f (absent when nothing cleared), volume_kwh, volume_kwh_f,
//	         orders (int), trades (int; both 0 when the record lacks them), ledger_seq (int)
//
//	kind "trade"      {"interval","id","seller","buyer","kwh","price","amount"}
//	  measurement trade, time = interval start
//	  tags   interval, trade (the trade id), seller, buyer
//	  fields kwh, kwh_f, price, price_f, amount, amount_f, ledger_seq
//
//	kind "settlement" {"interval","participant", <name>: decimal, ...}
//	  measurement settlement, time = interval start
//	  tags   interval, participant
//	  fields intervals and missing_intervals as integers (missing_intervals
//	         1: the participant was settled without metered figures);
//	         every other key as a decimal: e.g. bought_kwh, sold_kwh,
//	         delivered_kwh, paid, received, fees, net, saving (each with
//	         its _f copy); ledger_seq. Keys ending in _f are refused.
//
//	kind "reading"    {"gateway","device","profile","time","power_w","import_wh","export_wh"}
//	  measurement reading, time = the reading's time (RFC 3339)
//	  tags   gateway, device (the configured device name; profile is not
//	         mapped, so a point's identity is what it was before profile existed)
//	  fields power_w (float, W), import_wh, export_wh (int, Wh counters), ledger_seq
//
//	kind "interval"   the whole settlement of an interval (p2pgrid-settlement/1)
//	  measurement community, time = interval start: the community's totals
//	         of that interval (settlement.CommunityTotals)
//	  tags   interval
//	  fields consumption_kwh (metered import), export_kwh, traded_kwh,
//	         local_kwh (delivered p2p), spilled_kwh, local_consumed_kwh
//	         (local_kwh - spilled_kwh), grid_import_kwh, grid_export_kwh,
//	         local_share (local_consumed_kwh / consumption_kwh, 6 decimals),
//	         money_kept_locally, compensation, fees, grid, saving (each a
//	         decimal with its _f copy); participants, missing_figures (int);
//	         ledger_seq. A period's local share is
//	         sum(local_consumed_kwh) / sum(consumption_kwh), not a mean.
//
// Records of any other kind are skipped (logged at debug, counted in
// Stats.Skipped) and the cursor moves past them. A record whose Data does
// not have its kind's shape (missing interval, participant, trade id,
// gateway, device or time; a value of the wrong type) is skipped with an
// error log and counted in Stats.Rejected, as is a point InfluxDB refuses
// with HTTP 400: the ledger keeps it, and one bad record never stalls the
// sink. Field types are fixed by this schema, never by the data, so a
// field type conflict can only come from another writer.
//
// Settlements and Query read back through Flux (/api/v2/query; InfluxDB
// 1.8 needs flux-enabled = true in [http]).
//
// For InfluxDB 1.8, Options.Bucket is "database" or
// "database/retention-policy", Options.Token is "user:password" or empty,
// and Options.Org is empty.
package influx
