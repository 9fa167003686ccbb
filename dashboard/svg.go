package dashboard

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/p2pgrid/p2pgrid/settlement"
)

// chartPoint is one interval's value in a chart; ok false: no value (not
// cleared).
type chartPoint struct {
	label string
	value decimal.Decimal
	ok    bool
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH   = 600, 160
	padLeft, padBott = 48, 20
)

// barChart draws points, oldest first, as an inline SVG bar chart with
// its axis from 0 to the largest value. Coordinates are computed with
// decimals and rounded to whole units: the chart is as deterministic as
// the figures.
func barChart(title, unit string, points []chartPoint, decimals int32) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	max := decimal.Zero
	for _, p := range points {
		if p.ok && p.value.GreaterThan(max) {
			max = p.value
		}
	}
	plotW, plotH := decimal.NewFromInt(chartW-padLeft), decimal.NewFromInt(chartH-padBott-8)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padLeft, chartH-padBott, chartW, chartH-padBott)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, padLeft-4, 14, template.HTMLEscapeString(settlement.Format(max, decimals)))
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">0</text>`, padLeft-4, chartH-padBott)
	if len(points) == 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d">no intervals yet</text>`, padLeft+8, chartH/2)
	}
	n := decimal.NewFromInt(int64(max1(len(points))))
	slot := plotW.Div(n)
	for i, p := range points {
		x := decimal.NewFromInt(padLeft).Add(slot.Mul(decimal.NewFromInt(int64(i))))
		w := slot.Mul(decimal.New(8, -1))
		if !p.ok {
			fmt.Fprintf(&b, `<rect class="gap" x="%s" y="%d" width="%s" height="2"><title>%s: not cleared</title></rect>`,
				x.Round(1), chartH-padBott-2, w.Round(1), template.HTMLEscapeString(p.label))
			continue
		}
		h := decimal.Zero
		if max.IsPositive() {
			h = p.value.Mul(plotH).Div(max)
		}
		y := decimal.NewFromInt(chartH - padBott).Sub(h)
		fmt.Fprintf(&b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s"><title>%s: %s %s</title></rect>`,
			x.Round(1), y.Round(1), w.Round(1), h.Round(1), template.HTMLEscapeString(p.label), template.HTMLEscapeString(p.value.String()), template.HTMLEscapeString(unit))
	}
	if len(points) > 0 {
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d">%s</text>`, padLeft, chartH-4, template.HTMLEscapeString(points[0].label))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, chartW, chartH-4, template.HTMLEscapeString(points[len(points)-1].label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
