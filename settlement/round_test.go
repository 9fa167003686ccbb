package settlement

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestFormat(t *testing.T) {
	cases := []struct {
		in    string
		minor int32
		want  string
	}{
		{"0.125", 2, "0.12"},   // tie: down to even 2
		{"0.135", 2, "0.14"},   // tie: up to even 4
		{"-0.125", 2, "-0.12"}, // ties go to even on the negative side too
		{"-0.135", 2, "-0.14"},
		{"0.1251", 2, "0.13"}, // not a tie
		{"0.1249", 2, "0.12"},
		{"0.005", 2, "0.00"},
		{"0.015", 2, "0.02"},
		{"-0.0151", 2, "-0.02"},
		{"2.5", 0, "2"},
		{"3.5", 0, "4"},
		{"3", 2, "3.00"},
		{"0", 2, "0.00"},
		{"1234.5678", 3, "1234.568"},
		{"0.00045", 4, "0.0004"},
		{"12345678901234567890.125", 2, "12345678901234567890.12"},
	}
	for _, c := range cases {
		if got := Format(decimal.RequireFromString(c.in), c.minor); got != c.want {
			t.Errorf("Format(%s, %d) = %q, want %q", c.in, c.minor, got, c.want)
		}
	}
}

func TestStatementRounded(t *testing.T) {
	s := Statement{
		Participant: "s", Intervals: 1, SoldWh: 1000, DeliveredWh: 501, ExportWh: 501, ImbalanceWh: -499,
		ReceivedP2P:      decimal.RequireFromString("0.0501"),
		CompensationPaid: decimal.RequireFromString("0.0998"),
		PaidP2P:          decimal.RequireFromString("0.0125"),
		Fees:             decimal.RequireFromString("0.0135"),
		Net:              decimal.RequireFromString("-0.0497"),
		Baseline:         decimal.RequireFromString("0.02505"),
		Saving:           decimal.RequireFromString("-0.07475"),
	}
	cases := []struct {
		minor int32
		want  string
	}{
		{2, "s n=1 miss=0 | b=0 s=1000 r=0 d=501 i=0 e=501 gi=0 ge=0 sp=0 imb=-499 | paid=0.01 recv=0.05 fees=0.01 cpaid=0.1 crecv=0 gcost=0 gcred=0 | net=-0.05 base=0.03 save=-0.07"},
		// 4 decimals: 0.0125 and 0.0135 are exact; 0.02505 ties down to
		// 0.0250 (0 even), -0.07475 ties to -0.0748 (8 even).
		{4, "s n=1 miss=0 | b=0 s=1000 r=0 d=501 i=0 e=501 gi=0 ge=0 sp=0 imb=-499 | paid=0.0125 recv=0.0501 fees=0.0135 cpaid=0.0998 crecv=0 gcost=0 gcred=0 | net=-0.0497 base=0.025 save=-0.0748"},
		// 3 decimals: 0.0125 -> 0.012, 0.0135 -> 0.014 (ties to even).
		{3, "s n=1 miss=0 | b=0 s=1000 r=0 d=501 i=0 e=501 gi=0 ge=0 sp=0 imb=-499 | paid=0.012 recv=0.05 fees=0.014 cpaid=0.1 crecv=0 gcost=0 gcred=0 | net=-0.05 base=0.025 save=-0.075"},
	}
	orig := statementLine(s)
	for _, c := range cases {
		if got := statementLine(s.Rounded(c.minor)); got != c.want {
			t.Errorf("Rounded(%d):\n got %s\nwant %s", c.minor, got, c.want)
		}
	}
	if statementLine(s) != orig {
		t.Errorf("Rounded modified its receiver: %s", statementLine(s))
	}
}
