package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// journalStream reports whether f is the stream systemd connected to the
// journal. systemd sets JOURNAL_STREAM to "DEVICE:INODE" (decimal) of that
// stream for a service whose standard output or error goes to the journal
// (systemd.exec(5)); the variable alone is not enough, since children
// inherit it while their stderr may be redirected elsewhere.
func journalStream(env string, f *os.File) bool {
	dev, ino, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == d && uint64(st.Ino) == i
}

// journalPriority is the syslog priority prefix journald reads from the
// start of a line (sd-daemon(3)): <3> error, <4> warning, <6> info, <7>
// debug.
func journalPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	default:
		return "<7>"
	}
}

// journalHandler writes a record as the handler it wraps formats it (text
// or JSON), without the time, which journald adds, and with the record's
// priority prefix, so `journalctl -p warning` finds the warnings.
type journalHandler struct {
	mu    *sync.Mutex   // one line at a time, shared by every derived handler
	w     io.Writer     // the journal stream
	line  *bytes.Buffer // the line being formatted, written by h
	inner slog.Handler  // formats into line
}

var _ slog.Handler = (*journalHandler)(nil)

// newJournalHandler returns a handler made by newHandler (slog's text or
// JSON handler) that writes to the journal stream w.
func newJournalHandler(w io.Writer, opts *slog.HandlerOptions, newHandler func(io.Writer, *slog.HandlerOptions) slog.Handler) *journalHandler {
	o := *opts
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	line := &bytes.Buffer{}
	return &journalHandler{mu: &sync.Mutex{}, w: w, line: line, inner: newHandler(line, &o)}
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.line.Reset()
	h.line.WriteString(journalPriority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.w.Write(h.line.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{mu: h.mu, w: h.w, line: h.line, inner: h.inner.WithAttrs(as)}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{mu: h.mu, w: h.w, line: h.line, inner: h.inner.WithGroup(name)}
}
