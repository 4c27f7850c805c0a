package auditredactionprocessor

// Prefilters: a necessary condition for a regular expression to match, derived from its
// syntax tree, that is checked against features of a value gathered in one scan.
//
// Go's regexp has no literal to look for in most PII patterns, so it tries every position
// of every value (11-40 us per pattern per record in this project's audit pipeline). A
// prefilter answers "can this pattern match anywhere in this value?" with false only when
// the answer is certainly no; when it says maybe, the regex decides. Soundness comes from
// the derivation, not from hand-written tables: every atom below is implied by the
// pattern's structure, so a new pattern in the configuration gets a prefilter without code.
//
// Two kinds of atom:
//
//   - a factor: a sequence of rune sets that every match contains as consecutive runes
//     ("@", ".[A-Za-z][A-Za-z]", the case-folded alternatives of "token"). Found with the
//     same algorithm as RE2's prefilter: the exact strings a node can match while they
//     stay few and short, otherwise AND/OR of the factors of its parts.
//   - a count: every match holds at least n runes of a class (13 ASCII digits for a card
//     number), compared against the value's count of that class.
//
// Rune semantics are Go regexp's: the value is decoded as UTF-8, an invalid byte is one
// U+FFFD rune, and case folding (?i) follows unicode.SimpleFold orbits (so 'k' also
// matches U+212A KELVIN SIGN and 's' U+017F LATIN SMALL LETTER LONG S).

import (
	"math"
	"regexp/syntax"
	"strconv"
	"strings"
)

const (
	maxExactSet    = 16   // alternatives kept as exact strings before falling back to AND/OR
	maxExactLen    = 16   // runes per exact string before falling back
	maxFactorLen   = 16   // runes of a factor kept for searching (a window of a longer one)
	weakFactor     = 0.02 // a factor more likely than this at a position is not worth a search
	strongMinCount = 6    // a count atom alone is a prefilter from this many runes up
	minUsefulRun   = 4    // shorter class runs are not checked
)

// info is what the derivation knows about one node: either the exact set of strings it
// can match (as sequences of rune sets), or a condition every match satisfies.
type info struct {
	exact   []factor // when isExact; an empty set means the node matches nothing
	isExact bool
	cond    *condition // when !isExact
}

func exactInfo(fs ...factor) info { return info{exact: fs, isExact: true} }

// asCond turns an exact set into the OR of its factors.
func (in info) asCond() *condition {
	if !in.isExact {
		return in.cond
	}
	conds := make([]*condition, 0, len(in.exact))
	for _, f := range in.exact {
		conds = append(conds, factorCond(f))
	}
	return orCond(conds...)
}

func maxLen(fs []factor) int {
	n := 0
	for _, f := range fs {
		n = max(n, len(f))
	}
	return n
}

func cross(a, b []factor) []factor {
	out := make([]factor, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			f := make(factor, 0, len(x)+len(y))
			out = append(out, append(append(f, x...), y...))
		}
	}
	return dedupe(out)
}

func dedupe(fs []factor) []factor {
	seen := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if s := f.String(); !seen[s] {
			seen[s] = true
			out = append(out, f)
		}
	}
	return out
}

func analyze(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpNoMatch:
		return exactInfo()
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return exactInfo(factor{})
	case syntax.OpLiteral:
		f := make(factor, len(re.Rune))
		for i, r := range re.Rune {
			f[i] = literalSet(r, re.Flags&syntax.FoldCase != 0)
		}
		return exactInfo(f)
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return exactInfo()
		}
		return exactInfo(factor{setFromRanges(re.Rune)})
	case syntax.OpAnyCharNotNL:
		return exactInfo(factor{anyRuneNotNL})
	case syntax.OpAnyChar:
		return exactInfo(factor{anyRune})
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpStar:
		return info{} // zero repetitions match the empty string
	case syntax.OpPlus:
		return info{cond: analyze(re.Sub[0]).asCond()}
	case syntax.OpQuest:
		sub := analyze(re.Sub[0])
		if sub.isExact && len(sub.exact) < maxExactSet {
			return exactInfo(dedupe(append(append([]factor{}, sub.exact...), factor{}))...)
		}
		return info{}
	case syntax.OpRepeat: // Simplify expands these; kept for an unsimplified tree
		if re.Min <= 0 {
			return info{}
		}
		parts := make([]*syntax.Regexp, re.Min, re.Min+1)
		for i := range parts {
			parts[i] = re.Sub[0]
		}
		if re.Max != re.Min {
			parts = append(parts, &syntax.Regexp{Op: syntax.OpStar, Sub: re.Sub[:1]})
		}
		return analyzeConcat(parts)
	case syntax.OpConcat:
		return analyzeConcat(re.Sub)
	case syntax.OpAlternate:
		subs := make([]info, len(re.Sub))
		allExact, size := true, 0
		for i, sub := range re.Sub {
			subs[i] = analyze(sub)
			allExact = allExact && subs[i].isExact
			size += len(subs[i].exact)
		}
		if allExact && size <= maxExactSet {
			var union []factor
			for _, s := range subs {
				union = append(union, s.exact...)
			}
			return exactInfo(dedupe(union)...)
		}
		conds := make([]*condition, len(subs))
		for i, s := range subs {
			conds[i] = s.asCond()
		}
		return info{cond: orCond(conds...)}
	}
	return info{} // an operator this derivation does not know: no information
}

// analyzeConcat keeps the cross product of exact neighbours while it stays small, and
// otherwise requires the condition of every part.
func analyzeConcat(subs []*syntax.Regexp) info {
	var conds []*condition
	current := []factor{{}}
	allExact := true
	for _, sub := range subs {
		part := analyze(sub)
		if !part.isExact {
			allExact = false
			conds = append(conds, exactInfo(current...).asCond(), part.cond)
			current = []factor{{}}
			continue
		}
		if len(current)*len(part.exact) <= maxExactSet && maxLen(current)+maxLen(part.exact) <= maxExactLen {
			current = cross(current, part.exact)
			continue
		}
		allExact = false
		conds = append(conds, exactInfo(current...).asCond())
		current = part.exact
	}
	if allExact {
		return exactInfo(current...)
	}
	return info{cond: andCond(append(conds, exactInfo(current...).asCond())...)}
}

const unbounded = math.MaxInt32

// minCount is the fewest runes of class every match of re holds.
func minCount(re *syntax.Regexp, class *runeSet) int {
	switch re.Op {
	case syntax.OpNoMatch:
		return unbounded
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if set := literalSet(r, re.Flags&syntax.FoldCase != 0); set.subsetOf(class) {
				n++
			}
		}
		return n
	case syntax.OpCharClass:
		if set := setFromRanges(re.Rune); len(re.Rune) > 0 && set.subsetOf(class) {
			return 1
		}
		if len(re.Rune) == 0 {
			return unbounded
		}
		return 0
	case syntax.OpCapture, syntax.OpPlus:
		return minCount(re.Sub[0], class)
	case syntax.OpRepeat:
		return min(unbounded, re.Min*minCount(re.Sub[0], class))
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n = min(unbounded, n+minCount(sub, class))
		}
		return n
	case syntax.OpAlternate:
		n := unbounded
		for _, sub := range re.Sub {
			n = min(n, minCount(sub, class))
		}
		return n
	}
	return 0 // star, quest, empty-width assertions, any-char, unknown operators
}

// minRunes is the fewest runes in any match of re.
func minRunes(re *syntax.Regexp) int { return minCount(re, &anyRune) }

// prefilter is the derived necessary condition for one pattern.
type prefilter struct {
	minLen      int             // bytes: a match of n runes has at least n bytes
	counts      [numClasses]int // runes of each class every match holds
	cond        *condition
	needsDetail bool // a count beyond the digits is not zero
}

// derivePrefilter parses pattern as regexp.Compile does (Perl syntax, simplified).
func derivePrefilter(pattern string) (*prefilter, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re = re.Simplify()
	p := &prefilter{minLen: minRunes(re), cond: analyze(re).asCond()}
	for c := range classSets {
		p.counts[c] = minCount(re, &classSets[c])
		// Too few to pay for the second pass over the value, or implied by the digits
		// (every class contains them).
		if c != classDigit && (p.counts[c] < strongMinCount || p.counts[c] <= p.counts[classDigit]) {
			p.counts[c] = 0
		}
		p.needsDetail = p.needsDetail || (c != classDigit && p.counts[c] > 0)
	}
	return p, nil
}

// useful tells whether the prefilter can reject ordinary values on its own: a factor
// condition, or a count of strongMinCount runes of one class.
func (p *prefilter) useful() bool {
	if p.cond != nil {
		return true
	}
	for _, n := range p.counts {
		if n >= strongMinCount {
			return true
		}
	}
	return false
}

func (p *prefilter) String() string {
	var parts []string
	if p.minLen > 0 {
		parts = append(parts, "len>="+strconv.Itoa(p.minLen))
	}
	for c, n := range p.counts {
		if n > 0 {
			parts = append(parts, "count"+classNames[c]+">="+strconv.Itoa(n))
		}
	}
	if p.cond != nil {
		parts = append(parts, p.cond.String())
	}
	if len(parts) == 0 {
		return "true"
	}
	return strings.Join(parts, " AND ")
}
