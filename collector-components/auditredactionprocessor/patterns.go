package auditredactionprocessor

import (
	"crypto/md5"  //nolint:gosec // offered for compatibility with the contrib processor
	"crypto/sha1" //nolint:gosec // idem
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"

	"golang.org/x/crypto/sha3"
)

// pattern is one configured regular expression with its derived prefilter.
type pattern struct {
	gate
	source string
	re     *regexp.Regexp
	pre    *prefilter
	narrow *narrowing // nil: the regex sees the whole value
}

// gate is the prefilter's cheapest part, kept flat for the loop over every pattern and
// every value: length, digits, and the byte masks of its condition.
type gate struct {
	minLen, minDigits int
	needs             [maxNeeds]byteMask
	nNeeds            int
}

func newGate(p *prefilter) gate {
	g := gate{minLen: p.minLen, minDigits: p.counts[classDigit]}
	if p.cond != nil {
		g.nNeeds = copy(g.needs[:], p.cond.needs)
	}
	return g
}

// shut is true when the value certainly does not match (false says nothing).
func (g *gate) shut(f *features) bool {
	if len(f.value) < g.minLen || f.digits < g.minDigits {
		return true
	}
	for i := 0; i < g.nNeeds; i++ {
		if !g.needs[i].metBy(f) {
			return true
		}
	}
	return false
}

// mayMatch is the gate, then the rest of the prefilter.
func (p *pattern) mayMatch(f *features) bool { return !p.shut(f) && p.pre.mayMatch(f) }

func compilePatterns(sources []string) ([]*pattern, error) {
	out := make([]*pattern, 0, len(sources))
	for _, source := range sources {
		re, err := regexp.Compile(source)
		if err != nil {
			return nil, fmt.Errorf("error compiling regex %q: %w", source, err)
		}
		pre, err := derivePrefilter(source)
		if err != nil { // cannot happen once regexp.Compile accepted it
			return nil, fmt.Errorf("deriving the prefilter of %q: %w", source, err)
		}
		narrow, err := deriveNarrowing(source)
		if err != nil {
			return nil, fmt.Errorf("deriving the alphabet of %q: %w", source, err)
		}
		out = append(out, &pattern{gate: newGate(pre), source: source, re: re, pre: pre, narrow: narrow})
	}
	return out, nil
}

// anyMatches tells whether one of the patterns matches value (order does not matter).
func anyMatches(patterns []*pattern, value string, f *features) bool {
	if len(patterns) == 0 {
		return false
	}
	f.scan(value)
	for _, p := range patterns {
		if p.mayMatch(f) && p.re.MatchString(value) {
			return true
		}
	}
	return false
}

// masker replaces matches with "****" or with the hex digest of the matched text.
type masker struct {
	newHash func() hash.Hash
}

func newMasker(h HashFunction) masker {
	switch h {
	case hashSHA1:
		return masker{newHash: sha1.New}
	case hashSHA3:
		return masker{newHash: sha3.New256}
	case hashMD5:
		return masker{newHash: md5.New}
	}
	return masker{}
}

const fixedMask = "****"

func (m masker) mask(match string) string {
	if m.newHash == nil {
		return fixedMask
	}
	h := m.newHash()
	h.Write([]byte(match))
	return hex.EncodeToString(h.Sum(nil))
}

// wholeValue is what a blocked key's value is masked with: every run of characters
// other than newlines (a value with newlines keeps them), and an empty value becomes one
// mask, as the contrib processor does.
var wholeValue = regexp.MustCompile(".*")

// replace masks every match of p in value, as p.re.ReplaceAllStringFunc does.
func (m masker) replace(p *pattern, value string) string {
	whole := func(s string) string { return p.re.ReplaceAllStringFunc(s, m.mask) }
	if p.narrow == nil {
		return whole(value)
	}
	return p.narrow.replaceRuns(value, whole)
}

func (m masker) maskWhole(value string) string { return wholeValue.ReplaceAllStringFunc(value, m.mask) }

// maskBlocked applies the blocked patterns in order, each to the result of the one
// before. A pattern whose prefilter rules the current text out is skipped; the others
// replace in one pass (no separate match first). After a change the text is scanned
// again, so every prefilter is checked against the text its regex would see.
func (m masker) maskBlocked(patterns []*pattern, value string, f *features) string {
	if len(patterns) == 0 {
		return value
	}
	f.scan(value)
	current := value
	for _, p := range patterns {
		if !p.mayMatch(f) {
			continue
		}
		if replaced := m.replace(p, current); replaced != current {
			current = replaced
			f.scan(current)
		}
	}
	return current
}
