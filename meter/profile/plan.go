package profile

import (
	"cmp"
	"fmt"
	"slices"
)

// MaxRequest is the most registers one Modbus read may ask for (function
// codes 03 and 04).
const MaxRequest = 125

// DefaultMaxGap is the max_gap of a profile that does not set one.
const DefaultMaxGap = 16

// Request is one Modbus read: Count registers of table Type from Address.
type Request struct {
	Type    RegType
	Address uint16
	Count   uint16
}

func (q Request) String() string {
	return fmt.Sprintf("%s 0x%04X+%d", q.Type, q.Address, q.Count)
}

// end is one past the last register of q.
func (q Request) end() int { return int(q.Address) + int(q.Count) }

// Plan returns the reads that fetch every register of p in as few
// requests as possible: registers of one type whose addresses are at most
// p.MaxGap unused registers apart share a request, as long as it stays
// within MaxRequest registers. The order is fixed: holding before input,
// then by address.
func (p *Profile) Plan() []Request {
	reqs, _ := p.plan()
	return reqs
}

// plan returns the requests and, for each register of p (in file order),
// the index of its request.
func (p *Profile) plan() ([]Request, []int) {
	order := make([]int, len(p.Registers))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := p.Registers[a], p.Registers[b]
		return cmp.Or(cmp.Compare(ra.Type, rb.Type), cmp.Compare(ra.Address, rb.Address))
	})
	var reqs []Request
	in := make([]int, len(p.Registers))
	for _, i := range order {
		r := p.Registers[i]
		if n := len(reqs); n > 0 {
			last := &reqs[n-1]
			end := max(last.end(), r.end())
			if last.Type == r.Type && int(r.Address)-last.end() <= p.MaxGap && end-int(last.Address) <= MaxRequest {
				last.Count = uint16(end - int(last.Address))
				in[i] = n - 1
				continue
			}
		}
		reqs = append(reqs, Request{Type: r.Type, Address: r.Address, Count: uint16(r.Width())})
		in[i] = len(reqs) - 1
	}
	return reqs, in
}
