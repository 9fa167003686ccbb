package dashboard

// The kinds of the records of an interval's sealed book and signed
// result, as the ledger holds them.
const (
	kindBook   = "book"
	kindResult = "result"
)
