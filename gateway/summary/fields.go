package summary

// The keys of the single values: the last level of their topics.
const (
	KeyPrice            = "price"
	KeyPriceInterval    = "price_interval"
	KeyBoughtToday      = "bought_today_kwh"
	KeySoldToday        = "sold_today_kwh"
	KeySavingToday      = "saving_today"
	KeyBoughtMonth      = "bought_month_kwh"
	KeySoldMonth        = "sold_month_kwh"
	KeySavingMonth      = "saving_month"
	KeyLastInterval     = "last_trade_interval"
	KeyLastSide         = "last_trade_side"
	KeyLastKWh          = "last_trade_kwh"
	KeyLastPrice        = "last_trade_price"
	KeyLastAmount       = "last_trade_amount"
	KeyLastCounterparty = "last_trade_counterparty"
	KeyCurrency         = "currency"
)

// KeySummary is the last level of the JSON summary's topic; no single
// value has it.
const KeySummary = "summary"

// Kind is what a single value measures, for an app that labels it (Home
// Assistant's device and state classes follow from it).
type Kind int

// The kinds.
const (
	KindText   Kind = iota // text: an interval id, a side, gateway ids, a currency code
	KindPrice              // money per kWh, in the currency
	KindEnergy             // kWh
	KindMoney              // money, in the currency
)

// Reset is when a total starts again from zero.
type Reset int

// The resets.
const (
	NoReset Reset = iota // not a total
	Daily                // at midnight in the tally's zone
	Monthly              // at the first midnight of the month
)

// Field describes one single value.
type Field struct {
	Key   string
	Name  string // for people: "Bought today"
	Kind  Kind
	Reset Reset
}

// Fields are every single value, in the order they are published.
var Fields = []Field{
	{KeyPrice, "Local price", KindPrice, NoReset},
	{KeyPriceInterval, "Local price interval", KindText, NoReset},
	{KeyBoughtToday, "Bought today", KindEnergy, Daily},
	{KeySoldToday, "Sold today", KindEnergy, Daily},
	{KeySavingToday, "Saved today", KindMoney, Daily},
	{KeyBoughtMonth, "Bought this month", KindEnergy, Monthly},
	{KeySoldMonth, "Sold this month", KindEnergy, Monthly},
	{KeySavingMonth, "Saved this month", KindMoney, Monthly},
	{KeyLastInterval, "Last trade interval", KindText, NoReset},
	{KeyLastSide, "Last trade side", KindText, NoReset},
	{KeyLastKWh, "Last trade energy", KindEnergy, NoReset},
	{KeyLastPrice, "Last trade price", KindPrice, NoReset},
	{KeyLastAmount, "Last trade amount", KindMoney, NoReset},
	{KeyLastCounterparty, "Last trade counterparty", KindText, NoReset},
	{KeyCurrency, "Currency", KindText, NoReset},
}
