package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// streamOf returns f's JOURNAL_STREAM value: its "DEVICE:INODE".
func streamOf(t *testing.T, f *os.File) string {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func tempFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// stderr is the journal only when JOURNAL_STREAM names its device and
// inode: an inherited variable with stderr redirected elsewhere is not.
func TestJournalStream(t *testing.T) {
	journal, other := tempFile(t, "journal"), tempFile(t, "other")
	env := streamOf(t, journal)
	for _, tc := range []struct {
		env  string
		f    *os.File
		want bool
	}{
		{env, journal, true},
		{env, other, false},
		{"", journal, false},
		{"nonsense", journal, false},
		{strings.Replace(env, ":", ":1", 1), journal, false},
		{"x:" + strings.SplitN(env, ":", 2)[1], journal, false},
	} {
		if got := journalStream(tc.env, tc.f); got != tc.want {
			t.Errorf("journalStream(%q, %s) = %v, want %v", tc.env, tc.f.Name(), got, tc.want)
		}
	}
}

// Under systemd (JOURNAL_STREAM matching stderr) the root logger's lines
// start with the syslog priority and carry no time; elsewhere they are
// slog's usual lines, time first.
func TestJournalLogger(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			f := tempFile(t, "stderr")
			t.Setenv("JOURNAL_STREAM", streamOf(t, f))
			l := (&logFlags{level: "debug", format: format}).logger(f)
			l.Debug("d", "k", 1)
			l.Info("i")
			l.With("gateway", "home-17").Warn("w", "err", "a\nb")
			l.WithGroup("g").Error("e", "k", "v")
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			want := map[string][]string{
				"text": {"<7>level=DEBUG msg=d k=1", "<6>level=INFO msg=i",
					`<4>level=WARN msg=w gateway=home-17 err="a\nb"`, "<3>level=ERROR msg=e g.k=v"},
				"json": {`<7>{"level":"DEBUG","msg":"d","k":1}`, `<6>{"level":"INFO","msg":"i"}`,
					`<4>{"level":"WARN","msg":"w","gateway":"home-17","err":"a\nb"}`, `<3>{"level":"ERROR","msg":"e","g":{"k":"v"}}`},
			}[format]
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("journal lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	t.Run("not the journal", func(t *testing.T) {
		f := tempFile(t, "stderr")
		t.Setenv("JOURNAL_STREAM", streamOf(t, tempFile(t, "journal")))
		(&logFlags{level: "info", format: "text"}).logger(f).Info("i")
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "time=") || !strings.HasSuffix(string(b), " level=INFO msg=i\n") {
			t.Errorf("line %q, want slog's text line, time first", b)
		}
	})
	t.Run("a buffer", func(t *testing.T) {
		var buf bytes.Buffer
		(&logFlags{level: "info", format: "text"}).logger(&buf).Info("i")
		if !strings.HasPrefix(buf.String(), "time=") {
			t.Errorf("line %q, want slog's text line, time first", buf.String())
		}
	})
}

// The journal handler's lines stay whole when goroutines log at once.
func TestJournalHandlerConcurrent(t *testing.T) {
	var buf bytes.Buffer
	h := newJournalHandler(&buf, &slog.HandlerOptions{}, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) })
	l := slog.New(h)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			gl := l.With("g", g)
			for i := range 100 {
				gl.Info("m", "i", i)
			}
		}()
	}
	for range 4 {
		<-done
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "<6>level=INFO msg=m g=") {
			t.Fatalf("line %q", line)
		}
	}
}

// Through the command line: a command's log lines (here the warning about
// a bad --log-level from `p2pgrid meter read`, which logs with the flags'
// root logger, before it refuses a bad bus URL) reach a journal stderr
// with their priority.
func TestJournalCommandLine(t *testing.T) {
	f := tempFile(t, "stderr")
	t.Setenv("JOURNAL_STREAM", streamOf(t, f))
	var out bytes.Buffer
	code := run([]string{"--log-level", "loud", "meter", "read", "--url", "bogus://x", "--device", "sdm630"}, strings.NewReader(""), &out, f)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "<4>level=WARN msg=\"unknown --log-level, using info\" value=loud\n") {
		t.Errorf("stderr %q: want the warning first, with <4> and no time", b)
	}
}
