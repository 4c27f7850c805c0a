package auditredactionprocessor

// Conditions: AND/OR trees of factors with what every value satisfying them holds (byte
// masks, digit runs), built by the derivation in prefilter.go and checked in scan.go.

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// condition is an AND/OR tree of factors; nil means true (no information).
type condition struct {
	and  bool // an AND of kids (else an OR of kids, or a single factor when kids is nil)
	kids []*condition
	fac  factor
	// runs[c]: every value the condition holds for has this many consecutive runes of
	// class c (a factor "[0-9][0-9][0-9][0-9]-" needs a run of 4 digits). Only the digit
	// run is kept and checked against the scan's longest, before any search: an OR of
	// twenty card-number shapes is ruled out at once for a value whose longest run is 3.
	runs [numClasses]int
	// needs: every value the condition holds for has, for each mask, one of its bytes;
	// bitmap tests against the scan, before any search (a card number needs a digit and
	// a separator, an IBAN an upper-case letter and a digit).
	needs []byteMask

	// For an OR: its factor kids searched together in one pass (factorSet), and the rest.
	set    *factorSet
	others []*condition
}

// finish drops the runs that are not checked and, for an OR, groups its factor kids.
func (c *condition) finish() *condition {
	if !c.and && c.fac == nil {
		var facs []factor
		c.others = nil
		for _, k := range c.kids {
			if k.fac != nil && len(facs) < maxSetFactors {
				facs = append(facs, k.fac)
			} else {
				c.others = append(c.others, k)
			}
		}
		c.set = newFactorSet(facs)
	}
	for class, n := range c.runs {
		// Only digit runs are checked (the scan counts them in its one pass): a run of
		// letters says little more than the factor it comes from.
		if n < minUsefulRun || class != classDigit {
			c.runs[class] = 0
		}
	}
	return c
}

// byteMask is a set of bytes one of which a value must hold: ASCII bytes, and with wide
// any byte >= 0x80 (a position that may be a rune beyond ASCII).
type byteMask struct {
	ascii [2]uint64
	wide  bool
}

const maxNeeds = 3 // masks kept per condition

func (m byteMask) likelihood() float64 {
	set := runeSet{ascii: m.ascii}
	if m.wide {
		set.wide = []rune{utf8.RuneSelf, unicode.MaxRune}
	}
	return set.likelihood()
}

func (m byteMask) metBy(f *features) bool {
	return m.ascii[0]&f.seen[0] != 0 || m.ascii[1]&f.seen[1] != 0 || (m.wide && f.nonASCII)
}

// leastLikely keeps the maxNeeds least likely distinct masks.
func leastLikely(masks []byteMask) []byteMask {
	sort.SliceStable(masks, func(i, j int) bool { return masks[i].likelihood() < masks[j].likelihood() })
	var out []byteMask
	for _, m := range masks {
		if len(out) < maxNeeds && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// factorNeeds are the factor's least likely positions: each must be in the value.
func factorNeeds(f factor) []byteMask {
	masks := make([]byteMask, len(f))
	for i := range f {
		masks[i] = byteMask{ascii: f[i].ascii, wide: len(f[i].wide) > 0}
	}
	return leastLikely(masks)
}

// classRuns is the longest stretch of positions of f inside each class.
func classRuns(f factor) (runs [numClasses]int) {
	for c := range classSets {
		current := 0
		for i := range f {
			if f[i].subsetOf(&classSets[c]) {
				current++
				runs[c] = max(runs[c], current)
			} else {
				current = 0
			}
		}
	}
	return runs
}

var condFalse = &condition{} // an OR of nothing: the pattern can never match

func factorCond(f factor) *condition {
	if len(f) == 0 {
		return nil // the empty string is in every value
	}
	f = f.window()
	if f.likelihood() > weakFactor {
		return nil
	}
	c := &condition{fac: f, runs: classRuns(f), needs: factorNeeds(f)}
	return c.finish()
}

func andCond(conds ...*condition) *condition {
	var kids []*condition
	seen := map[string]bool{}
	for _, c := range conds {
		switch {
		case c == nil:
			continue
		case c == condFalse:
			return condFalse
		case c.and:
			for _, k := range c.kids {
				if s := k.String(); !seen[s] {
					seen[s] = true
					kids = append(kids, k)
				}
			}
		default:
			if s := c.String(); !seen[s] {
				seen[s] = true
				kids = append(kids, c)
			}
		}
	}
	switch len(kids) {
	case 0:
		return nil
	case 1:
		return kids[0]
	}
	c := &condition{and: true, kids: kids}
	for _, k := range kids {
		for class := range c.runs {
			c.runs[class] = max(c.runs[class], k.runs[class])
		}
		c.needs = append(c.needs, k.needs...)
	}
	c.needs = leastLikely(c.needs)
	return c.finish()
}

func orCond(conds ...*condition) *condition {
	var kids []*condition
	seen := map[string]bool{}
	for _, c := range conds {
		switch {
		case c == nil:
			return nil // one branch that can match anything makes the OR true
		case c == condFalse:
			continue
		case !c.and && c.fac == nil:
			for _, k := range c.kids {
				if s := k.String(); !seen[s] {
					seen[s] = true
					kids = append(kids, k)
				}
			}
		default:
			if s := c.String(); !seen[s] {
				seen[s] = true
				kids = append(kids, c)
			}
		}
	}
	switch len(kids) {
	case 0:
		return condFalse
	case 1:
		return kids[0]
	}
	// Whichever kid holds meets each of its masks, so the union of the kids' i-th masks
	// is met too (for i below every kid's number of masks).
	c := &condition{kids: kids, runs: kids[0].runs}
	n := maxNeeds
	for _, k := range kids {
		n = min(n, len(k.needs))
	}
	c.needs = make([]byteMask, n)
	for _, k := range kids {
		for class := range c.runs {
			c.runs[class] = min(c.runs[class], k.runs[class])
		}
		for i := range c.needs {
			c.needs[i].ascii[0] |= k.needs[i].ascii[0]
			c.needs[i].ascii[1] |= k.needs[i].ascii[1]
			c.needs[i].wide = c.needs[i].wide || k.needs[i].wide
		}
	}
	return c.finish()
}

func (c *condition) String() string {
	switch {
	case c == nil:
		return "true"
	case c == condFalse:
		return "false"
	case c.fac != nil:
		return strconv.Quote(c.fac.String())
	}
	parts := make([]string, len(c.kids))
	for i, k := range c.kids {
		parts[i] = k.String()
	}
	if c.and {
		return "(" + strings.Join(parts, " AND ") + ")"
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}
