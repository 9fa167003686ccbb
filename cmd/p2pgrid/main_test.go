package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs the command line in-process and returns status and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestClearExampleBook(t *testing.T) {
	code, out, errOut := runCLI(t, "", "clear", "../../configs/examples/book.json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var res struct {
		Price      *string `json:"price"`
		VolumeKWh  string  `json:"volume_kwh"`
		Welfare    string  `json:"welfare"`
		BookSHA256 string  `json:"book_sha256"`
		Fills      []struct{ ID, Side, KWh string }
		Trades     []struct{ ID, Sell, Buy, KWh, Price string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if res.Price == nil || *res.Price != "0.14" || res.VolumeKWh != "3.8" || res.Welfare != "0.476" {
		t.Errorf("price %v volume %s welfare %s, want 0.14, 3.8, 0.476", res.Price, res.VolumeKWh, res.Welfare)
	}
	if len(res.BookSHA256) != 64 || len(res.Fills) != 5 || len(res.Trades) != 4 {
		t.Errorf("digest %q, %d fills, %d trades; want 64 hex, 5, 4", res.BookSHA256, len(res.Fills), len(res.Trades))
	}
	if !strings.HasSuffix(out, "}\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("want one JSON line, got %q", out)
	}
}

func TestClearStdinMatchesFile(t *testing.T) {
	book, err := os.ReadFile("../../configs/examples/book.json")
	if err != nil {
		t.Fatal(err)
	}
	_, fromFile, _ := runCLI(t, "", "clear", "../../configs/examples/book.json")
	for _, args := range [][]string{{"clear"}, {"clear", "-"}} {
		code, fromStdin, errOut := runCLI(t, string(book), args...)
		if code != 0 || fromStdin != fromFile {
			t.Errorf("%v: exit %d (%s), output differs from the file's:\n%s\n%s", args, code, errOut, fromStdin, fromFile)
		}
	}
}

func TestClearFlags(t *testing.T) {
	book := `{"orders":[{"id":"s","participant":"a","side":"sell","kwh":1,"price":0.10},
		{"id":"b","participant":"b","side":"buy","kwh":"1","price":"0.30"}]}`
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"clear"}, `{"price":"0.2",`},
		{[]string{"clear", "--k", "0"}, `{"price":"0.1",`},
		{[]string{"clear", "--k", "1"}, `{"price":"0.3",`},
		{[]string{"clear", "--fee", "0.04"}, `{"price":"0.18","fee":"0.04",`},
	} {
		code, out, errOut := runCLI(t, book, tc.args...)
		if code != 0 || !strings.HasPrefix(out, tc.want) {
			t.Errorf("%v: exit %d %q, output %q, want prefix %q", tc.args, code, errOut, out, tc.want)
		}
	}
}

func TestClearTable(t *testing.T) {
	code, out, errOut := runCLI(t, "", "clear", "--format", "table", "../../configs/examples/book.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"price        0.14 per kWh", "volume       3.8 kWh", "h1-sell", "h5-buy"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Bad input exits 2 with exactly one line on stderr that names the problem.
func TestClearBadInput(t *testing.T) {
	order := func(id, side, kwh, price string) string {
		return `{"id":"` + id + `","participant":"p","side":"` + side + `","kwh":"` + kwh + `","price":"` + price + `"}`
	}
	book := func(orders ...string) string { return `{"orders":[` + strings.Join(orders, ",") + `]}` }
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"not json", "nonsense", nil, "book: invalid character"},
		{"duplicate id", book(order("a", "sell", "1", "0.1"), order("a", "buy", "1", "0.2")), nil, `order "a": id: duplicate order id`},
		{"zero kwh", book(order("a", "sell", "0", "0.1")), nil, `order "a": kwh: 0 is not positive`},
		{"negative kwh", book(order("a", "sell", "-1", "0.1")), nil, `order "a": kwh: -1 is not positive`},
		{"too precise", book(order("a", "sell", "1.0001", "0.1")), nil, `order "a": kwh: too many decimals`},
		{"bad side", book(order("a", "bid", "1", "0.1")), nil, `order "a": side: unknown side "bid"`},
		{"above cap", book(order("a", "buy", "1", "0.5")), []string{"--price-cap", "0.4"}, `order "a": price: 0.5 is above the price cap 0.4`},
		{"below floor", book(order("a", "sell", "1", "0.01")), []string{"--price-floor", "0.05"}, `order "a": price: 0.01 is below the price floor 0.05`},
		{"huge number", book(order("a", "sell", strings.Repeat("9", 5000), "0.1")), nil, `order "a": kwh: out of range`},
		{"bad id", book(order("a b", "sell", "1", "0.1")), nil, `order #0: id: character ' '`},
		{"bad k", book(), []string{"--k", "2"}, "market rule k: 2 is outside [0, 1]"},
		{"bad flag", "", []string{"--nope"}, "unknown flag: --nope"},
		{"bad format", book(), []string{"--format", "xml"}, `unknown format "xml"`},
		{"missing file", "", []string{"/nonexistent/book.json"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.stdin, append([]string{"clear"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stdout %q)", code, out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "p2pgrid: ") {
				t.Errorf("stderr is not one p2pgrid: line: %q", errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
		})
	}
}

func TestHelpEverywhere(t *testing.T) {
	root := newRootCmd(nil, nil, nil)
	cmds := root.Commands()
	if len(cmds) < 2 {
		t.Fatalf("only %d subcommands", len(cmds))
	}
	for _, args := range append([][]string{{"--help"}}, subcommandPaths(root.Commands(), nil)...) {
		if args[0] != "--help" {
			args = append(args, "--help")
		}
		code, out, errOut := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, stderr %q, no usage in %q", args, code, errOut, out)
		}
	}
}

// "p2pgrid version" and "p2pgrid --version" print the same line: version,
// Go version, platform.
func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	want := "p2pgrid " + versionString() + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if code != 0 || out != want {
		t.Errorf("version: exit %d, %q, want %q", code, out, want)
	}
	code, flagOut, _ := runCLI(t, "", "--version")
	if code != 0 || flagOut != out {
		t.Errorf("--version: exit %d, %q, want what version prints, %q", code, flagOut, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := runCLI(t, "", "frobnicate")
	if code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// The binary built as the Makefile builds it is static and says its version.
func TestStaticVersionedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "p2pgrid")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v9.8.7-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "p2pgrid v9.8.7-test ") {
		t.Errorf("version: %v %q", err, out)
	}
	if flagOut, err := exec.Command(bin, "--version").Output(); err != nil || string(flagOut) != string(out) {
		t.Errorf("--version: %v %q, want what version prints, %q", err, flagOut, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	// A bad book through the real binary: exit 2, one line, no stack trace.
	cmd := exec.Command(bin, "clear", "-")
	cmd.Stdin = strings.NewReader(`{"orders":[{"id":"x","participant":"p","side":"sell","kwh":"1e999999","price":"1"}]}`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("bad book: %v, stderr %q", err, stderr.String())
	}
}

func subcommandPaths(cmds []*cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmds {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		p := append(append([]string{}, prefix...), c.Name())
		out = append(out, p)
		out = append(out, subcommandPaths(c.Commands(), p)...)
	}
	return out
}
