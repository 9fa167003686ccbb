// Package ledger is the local settlement ledger: the embedded default
// store and the source of truth for clearings, trades, metered deliveries
// and settlements. Sinks such as InfluxDB are fed from it and keep their
// place with named cursors.
//
// It knows nothing of markets, meters or sinks: it stores opaque JSON
// objects under a kind and an idempotency key.
//
// # Guarantees
//
//   - Append-only: records are numbered 1, 2, 3, ... and never rewritten.
//   - Durable on acknowledgement: Append writes its entries with one
//     write(2) on an O_APPEND file and one fsync, and returns only then.
//     A directory or file it creates is made durable with an fsync of the
//     directory that holds it.
//   - Tamper-evident: every record carries the hash of the record before
//     it, so changing, removing, inserting or reordering any record breaks
//     the chain at that record. (A chain is evidence, not a signature:
//     someone who rewrites the whole tail consistently is not detected
//     unless the last hash was kept elsewhere.)
//   - Idempotent: a (kind, key) pair is stored at most once; Append
//     refuses a repeat with ErrDuplicate and Has answers from an index
//     built on Open. With Options.IndexFor the index holds only the keys
//     of the records of that long before the last one (and of the last
//     2,048 records): memory stays bounded however long the ledger grows,
//     and idempotency is exact for every caller that appends only keys of
//     recent periods (the gateway: the intervals of its window). Record
//     offsets are kept one per 256 records.
//   - Crash-safe: a crash can leave only a torn last record (a partial
//     line). Open checks the whole chain, cuts a bad last record with a
//     warning after saving its bytes to ledger.torn-* in the directory,
//     and refuses to open a ledger damaged anywhere before the last record
//     (a *VerifyError names it; nothing is cut).
//   - One writer: Open takes an exclusive flock on the file (ErrLocked).
//
// # File format
//
// The directory holds ledger.jsonl, cursor-NAME files and, after a repair,
// ledger.torn-* files. ledger.jsonl has one record per line, each line
// ending in "\n", in exactly this canonical form (no spaces, this key
// order):
//
//	{"seq":1,"time":"2026-11-22T12:15:00Z","kind":"trade","key":"2026-11-22T12:15Z/home1/home2","data":{"kwh":"1.5"},"prev":"000…000","hash":"9f86…"}
//
// The fields:
//
//   - seq: decimal, from 1, no leading zeros; line n holds seq n.
//   - time: the caller's time in UTC as Go's time.RFC3339Nano writes it
//     (trailing zeros of the fraction dropped, "Z").
//   - kind: 1-32 bytes of a-z and _.
//   - key: 1-200 bytes of printable ASCII (0x20-0x7e); in the line " and \
//     are written \" and \\, and nothing else is escaped.
//   - data: a JSON object in valid UTF-8, compact (no space, tab, CR or LF
//     outside strings), at most 1 MiB, stored byte for byte as given.
//   - prev: the hash of the previous record; for seq 1, 64 '0's (ZeroHash).
//   - hash: lower-case hex SHA-256 of the same line, without its newline,
//     with the hash value empty: of the bytes {"seq":…,"prev":"…","hash":""}.
//
// Because hash covers prev, each hash commits to the whole history before
// it. A cursor file holds one decimal sequence number and a newline.
//
// ParseRecord accepts a line only if it is byte for byte this canonical
// form with a correct hash; Verify checks a whole file without changing
// it, and "p2pgrid ledger verify DIR" is its command-line form. Scan reads
// the records of a ledger another process may be appending to (read-only,
// lock-free, the chain checked, a torn last line reported rather than
// refused): "p2pgrid ledger show" and "p2pgrid settlements" read with it.
// docs/ledger.md has the rationale and the benchmark figures.
package ledger
