package auditredactionprocessor

import (
	"math/bits"
	"strings"
	"unicode/utf8"
)

// features of one value. scan gathers the cheap ones in a single branch-free pass over
// its bytes (which ASCII bytes occur, how many digits, whether any byte is beyond ASCII),
// enough to rule most patterns out; the longest digit run and the counts of the other
// classes are gathered by a second pass only for a value that gets that far.
type features struct {
	value    string
	seen     [2]uint64 // which ASCII bytes occur
	digits   int
	nonASCII bool // a byte >= 0x80: a multi-byte rune or invalid UTF-8

	detailed bool
	digitRun int // longest run of consecutive digits
	counts   [numClasses]int

	decodedRunes []rune // the value decoded as the regexp engine decodes it, on demand
	decoded      bool
}

func (f *features) scan(value string) {
	var seen [2]uint64
	digits := 0
	high := byte(0)
	for i := 0; i < len(value); i++ {
		b := value[i]
		high |= b
		seen[b>>6&1] |= 1 << (b & 63) // bytes >= 0x80 land on bits of 0x00-0x7f: redone below
		digits += int(isDigit[b])
	}
	nonASCII := high >= utf8.RuneSelf
	if nonASCII { // the bitmap again, from the ASCII bytes only
		seen = [2]uint64{}
		for i := 0; i < len(value); i++ {
			if b := value[i]; b < utf8.RuneSelf {
				seen[b>>6] |= 1 << (b & 63)
			}
		}
	}
	*f = features{value: value, seen: seen, digits: digits, nonASCII: nonASCII, decodedRunes: f.decodedRunes[:0]}
}

var isDigit = func() (t [256]uint8) {
	for b := '0'; b <= '9'; b++ {
		t[b] = 1
	}
	return t
}()

// detail gathers the longest digit run and the class counts beyond the digits (a byte
// >= 0x80 belongs to a rune outside every class).
func (f *features) detail() {
	if f.detailed {
		return
	}
	var counts [numClasses]int
	run, longest := 0, 0
	for i := 0; i < len(f.value); i++ {
		m := classOfByte[f.value[i]]
		for c := range counts {
			counts[c] += int(m>>c) & 1
		}
		in := int(m>>classDigit) & 1
		run = (run + 1) * in
		longest = max(longest, run)
	}
	f.counts, f.digitRun, f.detailed = counts, longest, true
}

// decode gives the runes the regexp engine sees: an invalid byte is one U+FFFD.
func (f *features) decode() []rune {
	if !f.decoded {
		for i := 0; i < len(f.value); {
			r, width := utf8.DecodeRuneInString(f.value[i:])
			f.decodedRunes = append(f.decodedRunes, r)
			i += width
		}
		f.decoded = true
	}
	return f.decodedRunes
}

// mayMatch is false only when the pattern behind p cannot match the scanned value. The
// gate (length, digits, the top condition's byte masks) has been checked already; then
// come the class counts and digit runs, then factor searches.
func (p *prefilter) mayMatch(f *features) bool {
	if p.needsDetail {
		f.detail()
		for c, n := range p.counts {
			if f.counts[c] < n {
				return false
			}
		}
	}
	return p.cond.holdsPastNeeds(f)
}

// mayHaveSome is the condition's bitmap tests alone.
func (c *condition) mayHaveSome(f *features) bool {
	if c == nil {
		return true
	}
	for _, m := range c.needs {
		if !m.metBy(f) {
			return false
		}
	}
	return true
}

func (c *condition) holds(f *features) bool {
	return c.mayHaveSome(f) && c.holdsPastNeeds(f)
}

// holdsPastNeeds is holds without the condition's own byte masks (checked by the caller).
func (c *condition) holdsPastNeeds(f *features) bool {
	if c == nil {
		return true
	}
	if c.runs[classDigit] > 0 {
		if f.detail(); f.digitRun < c.runs[classDigit] {
			return false
		}
	}
	switch {
	case c.fac != nil:
		return c.fac.foundIn(f)
	case c.and:
		for _, k := range c.kids {
			if !k.holds(f) {
				return false
			}
		}
		return true
	}
	if c.set != nil && c.set.foundIn(f) { // an OR; condFalse has no kids
		return true
	}
	for _, k := range c.others {
		if k.holds(f) {
			return true
		}
	}
	return false
}

const maxSetFactors = 64 // one bit each in factorSet.start

// factorSet searches several factors in one pass: start[b] has a bit for each factor
// whose first position accepts the ASCII byte b.
type factorSet struct {
	facs  []factor
	start [utf8.RuneSelf]uint64
}

func newFactorSet(facs []factor) *factorSet {
	if len(facs) == 0 {
		return nil
	}
	s := &factorSet{facs: facs}
	for i, f := range facs {
		for b := 0; b < utf8.RuneSelf; b++ {
			if f[0].hasByte(byte(b)) {
				s.start[b] |= 1 << i
			}
		}
	}
	return s
}

func (s *factorSet) foundIn(f *features) bool {
	if f.nonASCII { // rare: one rune-level search per factor
		for _, fac := range s.facs {
			if fac.foundIn(f) {
				return true
			}
		}
		return false
	}
	v := f.value
	for i := 0; i < len(v); i++ {
		for m := s.start[v[i]]; m != 0; m &= m - 1 {
			fac := s.facs[bits.TrailingZeros64(m)]
			if i+len(fac) <= len(v) && fac.at(v, i) {
				return true
			}
		}
	}
	return false
}

// at tells whether the factor occurs in the ASCII value at position i (its first
// position already checked).
func (fac factor) at(v string, i int) bool {
	for j := 1; j < len(fac); j++ {
		if !fac[j].hasByte(v[i+j]) {
			return false
		}
	}
	return true
}

// possible is the bitmap test: every position can be filled by a byte the value has
// (or by a multi-byte rune, if the value has any).
func (fac factor) possible(f *features) bool {
	for i := range fac {
		p := &fac[i]
		if p.ascii[0]&f.seen[0] == 0 && p.ascii[1]&f.seen[1] == 0 && !(f.nonASCII && len(p.wide) > 0) {
			return false
		}
	}
	return true
}

func (fac factor) foundIn(f *features) bool {
	if !fac.possible(f) {
		return false
	}
	if !f.nonASCII {
		return fac.inASCII(f.value)
	}
	return fac.inRunes(f.decode())
}

// inASCII searches an all-ASCII value (one byte per rune), jumping with IndexByte when a
// position is a single byte.
func (fac factor) inASCII(s string) bool {
	n := len(fac)
	anchor, anchorByte, hasAnchor := 0, byte(0), false
	for i := range fac {
		if b, ok := fac[i].singleByte(); ok {
			anchor, anchorByte, hasAnchor = i, b, true
			break
		}
	}
	for start := 0; start+n <= len(s); start++ {
		if hasAnchor {
			j := strings.IndexByte(s[start+anchor:], anchorByte)
			if j < 0 {
				return false
			}
			start += j
			if start+n > len(s) {
				return false
			}
		}
		match := true
		for i := 0; i < n; i++ {
			if !fac[i].hasByte(s[start+i]) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func (fac factor) inRunes(rs []rune) bool {
	n := len(fac)
	for start := 0; start+n <= len(rs); start++ {
		match := true
		for i := 0; i < n; i++ {
			if !fac[i].has(rs[start+i]) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
