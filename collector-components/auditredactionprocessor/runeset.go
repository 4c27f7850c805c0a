package auditredactionprocessor

// Rune sets, factors and the character classes prefilters count, with the weights that
// rank them.

import (
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
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

// union adds the runes of t to s.
func (s *runeSet) union(t runeSet) {
	s.ascii[0] |= t.ascii[0]
	s.ascii[1] |= t.ascii[1]
	s.wide = mergeRanges(append(s.wide, t.wide...))
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

var (
	anyRune      = setFromRanges([]rune{0, unicode.MaxRune})
	anyRuneNotNL = setFromRanges([]rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune})
)

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
