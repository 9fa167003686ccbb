package broker

import (
	"context"
	"log/slog"
)

// mochiLog adapts mochi's logs to p2pgrid's.
//
// Mochi's TCP listener logs the error that ends every client connection
// at Warn, with an empty message (listeners.Net.Serve: Log.Warn("",
// "error", err)): at every Close, one `level=WARN msg=""` line per client
// with "use of closed network connection", and one whenever a client goes
// away. Mochi's own "client disconnected" (Debug) says the same with the
// client's id. So a record without a message becomes "client connection
// ended" at Debug. And mochi's "error" attribute is "err", as everywhere
// in p2pgrid.
type mochiLog struct{ h slog.Handler }

var _ slog.Handler = mochiLog{}

// endedMessage replaces mochi's empty message.
const endedMessage = "client connection ended"

func (m mochiLog) Enabled(ctx context.Context, level slog.Level) bool {
	return m.h.Enabled(ctx, level)
}

func (m mochiLog) Handle(ctx context.Context, r slog.Record) error {
	level, msg := r.Level, r.Message
	if msg == "" {
		level, msg = slog.LevelDebug, endedMessage
		if !m.h.Enabled(ctx, level) {
			return nil
		}
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(renameErr(a))
		return true
	})
	return m.h.Handle(ctx, out)
}

func (m mochiLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	renamed := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		renamed[i] = renameErr(a)
	}
	return mochiLog{m.h.WithAttrs(renamed)}
}

func (m mochiLog) WithGroup(name string) slog.Handler { return mochiLog{m.h.WithGroup(name)} }

func renameErr(a slog.Attr) slog.Attr {
	if a.Key == "error" {
		a.Key = "err"
	}
	return a
}
