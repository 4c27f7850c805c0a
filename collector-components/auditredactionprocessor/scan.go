package auditredactionprocessor

import (
	"strings"
	"unicode/utf8"
)

// features of one value, gathered in a single pass over its bytes; every prefilter of
// every pattern is checked against them before any regex runs.
type features struct {
	value    string
	seen     [2]uint64 // which ASCII bytes occur
	counts   [numClasses]int
	nonASCII bool   // a byte >= 0x80: a multi-byte rune or invalid UTF-8
	runes    []rune // the value decoded as the regexp engine decodes it, on demand
	decoded  bool
}

func (f *features) scan(value string) {
	var seen [2]uint64
	var counts [numClasses]int
	nonASCII := false
	for i := 0; i < len(value); i++ {
		b := value[i]
		if b >= utf8.RuneSelf {
			nonASCII = true
			continue
		}
		seen[b>>6] |= 1 << (b & 63)
		if c := classOfByte[b]; c != 0 {
			counts[classDigit] += int(c >> classDigit & 1)
			counts[classUpperAlnum] += int(c >> classUpperAlnum & 1)
			counts[classAlnum] += int(c >> classAlnum & 1)
		}
	}
	*f = features{value: value, seen: seen, counts: counts, nonASCII: nonASCII, runes: f.runes[:0]}
}

// decode gives the runes the regexp engine sees: an invalid byte is one U+FFFD.
func (f *features) decode() []rune {
	if !f.decoded {
		for i := 0; i < len(f.value); {
			r, width := utf8.DecodeRuneInString(f.value[i:])
			f.runes = append(f.runes, r)
			i += width
		}
		f.decoded = true
	}
	return f.runes
}

// mayMatch is false only when the pattern behind p cannot match the scanned value.
func (p *prefilter) mayMatch(f *features) bool {
	if len(f.value) < p.minLen {
		return false
	}
	for c, n := range p.counts {
		if f.counts[c] < n {
			return false
		}
	}
	return p.cond.holds(f)
}

func (c *condition) holds(f *features) bool {
	switch {
	case c == nil:
		return true
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
	for _, k := range c.kids { // an OR; condFalse has no kids
		if k.holds(f) {
			return true
		}
	}
	return false
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
