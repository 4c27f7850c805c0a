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
	"math/bits"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxExactSet    = 16   // alternatives kept as exact strings before falling back to AND/OR
	maxExactLen    = 16   // runes per exact string before falling back
	maxFactorLen   = 16   // runes of a factor kept for searching (a window of a longer one)
	weakFactor     = 0.02 // a factor more likely than this at a position is not worth a search
	strongMinCount = 6    // a count atom alone is a prefilter from this many runes up
	minUsefulRun   = 4    // shorter class runs are not checked
)

// runeSet is the set of runes one position of a factor may hold.
type runeSet struct {
	ascii [2]uint64 // runes 0-127, one bit each
	wide  []rune    // sorted, non-overlapping [lo, hi] pairs of runes >= 0x80
}

func (s *runeSet) hasByte(b byte) bool { return s.ascii[b>>6]&(1<<(b&63)) != 0 }

func (s *runeSet) has(r rune) bool {
	if r < utf8.RuneSelf {
		return s.hasByte(byte(r))
	}
	i := sort.Search(len(s.wide)/2, func(i int) bool { return s.wide[2*i+1] >= r })
	return i < len(s.wide)/2 && s.wide[2*i] <= r
}

func (s *runeSet) asciiSize() int { return bits.OnesCount64(s.ascii[0]) + bits.OnesCount64(s.ascii[1]) }

// singleByte returns the one ASCII byte of a set that holds nothing else.
func (s *runeSet) singleByte() (byte, bool) {
	if len(s.wide) != 0 || s.asciiSize() != 1 {
		return 0, false
	}
	if s.ascii[0] != 0 {
		return byte(bits.TrailingZeros64(s.ascii[0])), true
	}
	return byte(64 + bits.TrailingZeros64(s.ascii[1])), true
}

// setFromRanges builds a set from syntax's [lo, hi, lo, hi, ...] rune ranges.
func setFromRanges(ranges []rune) runeSet {
	var s runeSet
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
			s.ascii[r>>6] |= 1 << (uint(r) & 63)
		}
		if hi >= utf8.RuneSelf {
			s.wide = append(s.wide, max(lo, utf8.RuneSelf), hi)
		}
	}
	s.wide = mergeRanges(s.wide)
	return s
}

func mergeRanges(ranges []rune) []rune {
	if len(ranges) <= 2 {
		return ranges
	}
	pairs := make([][2]rune, 0, len(ranges)/2)
	for i := 0; i+1 < len(ranges); i += 2 {
		pairs = append(pairs, [2]rune{ranges[i], ranges[i+1]})
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	merged := []rune{pairs[0][0], pairs[0][1]}
	for _, p := range pairs[1:] {
		if last := len(merged) - 1; p[0] <= merged[last]+1 {
			merged[last] = max(merged[last], p[1])
		} else {
			merged = append(merged, p[0], p[1])
		}
	}
	return merged
}

// literalSet is the set of runes a literal rune matches: itself, or its whole case-fold
// orbit under (?i), exactly as the regexp engine compares folded runes.
func literalSet(r rune, fold bool) runeSet {
	ranges := []rune{r, r}
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			ranges = append(ranges, f, f)
		}
	}
	return setFromRanges(ranges)
}

// Position weights for ranking factors, a rough frequency of ASCII characters in
// attribute values (space and lower-case letters common, most punctuation rare). Only
// the choice of factors depends on them, never the soundness.
var charWeight = func() (w [utf8.RuneSelf]float64) {
	for b := range w {
		switch {
		case b == ' ':
			w[b] = 15
		case strings.IndexByte("etaoinsr", byte(b)) >= 0:
			w[b] = 5
		case b >= 'a' && b <= 'z':
			w[b] = 2
		case b >= '0' && b <= '9':
			w[b] = 2
		case b >= 'A' && b <= 'Z':
			w[b] = 1
		case strings.IndexByte(`.,/-_:="'&`, byte(b)) >= 0:
			w[b] = 1
		case b > ' ' && b < 0x7f:
			w[b] = 0.3
		case b == '\t' || b == '\n':
			w[b] = 0.3
		default:
			w[b] = 0.01
		}
	}
	return w
}()

var charWeightTotal = func() (t float64) {
	for _, w := range charWeight {
		t += w
	}
	return t
}()

// likelihood is the chance that a character drawn by charWeight belongs to the set; the
// runes beyond ASCII count as rare.
func (s *runeSet) likelihood() float64 {
	var w float64
	for b := 0; b < utf8.RuneSelf; b++ {
		if s.hasByte(byte(b)) {
			w += charWeight[b]
		}
	}
	if len(s.wide) > 0 {
		w += 0.5
	}
	return min(w/charWeightTotal, 1)
}

func (s *runeSet) String() string {
	if b, ok := s.singleByte(); ok {
		if strings.IndexByte(`[]\`, b) >= 0 {
			return `\` + string(rune(b))
		}
		if b >= ' ' && b < 0x7f {
			return string(rune(b))
		}
	}
	var out strings.Builder
	out.WriteByte('[')
	for b := 0; b < utf8.RuneSelf; {
		if !s.hasByte(byte(b)) {
			b++
			continue
		}
		end := b
		for end+1 < utf8.RuneSelf && s.hasByte(byte(end+1)) {
			end++
		}
		writeRune(&out, rune(b))
		if end > b {
			if end > b+1 {
				out.WriteByte('-')
			}
			writeRune(&out, rune(end))
		}
		b = end + 1
	}
	for i := 0; i+1 < len(s.wide); i += 2 {
		writeRune(&out, s.wide[i])
		if s.wide[i+1] > s.wide[i] {
			out.WriteByte('-')
			writeRune(&out, s.wide[i+1])
		}
	}
	out.WriteByte(']')
	return out.String()
}

func writeRune(out *strings.Builder, r rune) {
	switch {
	case r < ' ' || r == 0x7f || r > unicode.MaxASCII:
		out.WriteString(`\x{` + strconv.FormatInt(int64(r), 16) + `}`)
	case strings.ContainsRune(`[]\-^`, r):
		out.WriteByte('\\')
		out.WriteRune(r)
	default:
		out.WriteRune(r)
	}
}

// factor is a sequence of positions every match contains as consecutive runes.
type factor []runeSet

func (f factor) likelihood() float64 {
	p := 1.0
	for i := range f {
		p *= f[i].likelihood()
	}
	return p
}

func (f factor) String() string {
	var out strings.Builder
	for i := range f {
		out.WriteString(f[i].String())
	}
	return out.String()
}

// window returns the most selective part of at most maxFactorLen positions: any part
// of a factor is a factor too, and a shorter one is cheaper to look for.
func (f factor) window() factor {
	if len(f) <= maxFactorLen {
		return f
	}
	best, bestP := 0, math.Inf(1)
	for i := 0; i+maxFactorLen <= len(f); i++ {
		if p := f[i : i+maxFactorLen].likelihood(); p < bestP {
			best, bestP = i, p
		}
	}
	return f[best : best+maxFactorLen]
}

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

var (
	anyRune      = setFromRanges([]rune{0, unicode.MaxRune})
	anyRuneNotNL = setFromRanges([]rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune})
)

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

// Classes whose counts the value scan keeps, ASCII only so that a byte count is a rune
// count: a multi-byte rune or an invalid byte is never in them.
const (
	classDigit      = iota // [0-9]
	classUpperAlnum        // [0-9A-Z]
	classAlnum             // [0-9A-Za-z]
	numClasses
)

var (
	classNames = [numClasses]string{"[0-9]", "[0-9A-Z]", "[0-9A-Za-z]"}
	classSets  = [numClasses]runeSet{
		setFromRanges([]rune{'0', '9'}),
		setFromRanges([]rune{'0', '9', 'A', 'Z'}),
		setFromRanges([]rune{'0', '9', 'A', 'Z', 'a', 'z'}),
	}
	classOfByte = func() (t [256]uint8) {
		for c, set := range classSets {
			for b := 0; b < utf8.RuneSelf; b++ {
				if set.hasByte(byte(b)) {
					t[b] |= 1 << c
				}
			}
		}
		return t
	}()
)

func (s *runeSet) subsetOf(t *runeSet) bool {
	if s.ascii[0]&^t.ascii[0] != 0 || s.ascii[1]&^t.ascii[1] != 0 {
		return false
	}
	// t.wide is merged, so a contiguous range of s must lie inside one range of t.
	for i := 0; i+1 < len(s.wide); i += 2 {
		covered := false
		for j := 0; j+1 < len(t.wide); j += 2 {
			if t.wide[j] <= s.wide[i] && s.wide[i+1] <= t.wide[j+1] {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
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
