package auditredactionprocessor

// Running a pattern's regex on the stretches of a value that can hold a match, rather
// than on the whole value.
//
// Every rune of a match belongs to the pattern's alphabet (the union of its literals and
// classes), so every match lies inside one maximal run of alphabet runes. When the
// pattern cannot match the empty string and has no ^ or $ anchor, replacing in each run
// separately, with the rune before and the rune after it as context for \b, gives what
// replacing in the whole value gives: a search cannot start a match outside a run, a
// match cannot cross the non-alphabet rune that ends a run, and nothing but \b and \B
// looks beyond a match, at one rune. On a JSON details value, a card number's regex then
// runs on " 4111 1111 1111 1111" instead of the whole object.

import (
	"regexp/syntax"
	"unicode/utf8"
)

// narrowing is what a pattern needs to be replaced run by run.
type narrowing struct {
	alphabet runeSet
	minLen   int // bytes: shorter runs cannot hold a match
}

// deriveNarrowing returns nil for a pattern that must see the whole value: one that can
// match the empty string or has a line or text anchor.
func deriveNarrowing(pattern string) (*narrowing, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re = re.Simplify()
	n := &narrowing{minLen: minRunes(re)}
	if n.minLen == 0 || !collectAlphabet(re, &n.alphabet) {
		return nil, nil
	}
	return n, nil
}

// collectAlphabet adds the runes re can consume to set; false for an anchor.
func collectAlphabet(re *syntax.Regexp, set *runeSet) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return false
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			set.union(literalSet(r, re.Flags&syntax.FoldCase != 0))
		}
	case syntax.OpCharClass:
		set.union(setFromRanges(re.Rune))
	case syntax.OpAnyCharNotNL:
		set.union(anyRuneNotNL)
	case syntax.OpAnyChar:
		set.union(anyRune)
	}
	for _, sub := range re.Sub {
		if !collectAlphabet(sub, set) {
			return false
		}
	}
	return true
}

// runeAt decodes as the regexp engine does: an invalid byte is one U+FFFD.
func runeAt(s string, i int) (rune, int) {
	if b := s[i]; b < utf8.RuneSelf {
		return rune(b), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// replaceRuns is replace(s) computed run by run; replace is a ReplaceAllStringFunc.
func (n *narrowing) replaceRuns(s string, replace func(string) string) string {
	var out []byte
	copied := 0 // s[:copied] is in out
	prev := -1  // start of the rune before i, -1 at the start of s
	for i := 0; i < len(s); {
		r, w := runeAt(s, i)
		if !n.alphabet.has(r) {
			prev, i = i, i+w
			continue
		}
		start, before := i, prev
		for i < len(s) {
			if r, w = runeAt(s, i); !n.alphabet.has(r) {
				break
			}
			prev, i = i, i+w
		}
		if i-start < n.minLen {
			continue
		}
		lo, hi := start, i // the run, with one rune of context on each side
		if before >= 0 {
			lo = before
		}
		if i < len(s) {
			_, w = runeAt(s, i)
			hi = i + w
		}
		// The context runes are not in the alphabet, so no match includes them and the
		// replacement keeps them as they were: only the run's part is taken.
		if replaced := replace(s[lo:hi]); replaced != s[lo:hi] {
			run := replaced[start-lo : len(replaced)-(hi-i)]
			out = append(append(out, s[copied:start]...), run...)
			copied = i
		}
	}
	if out == nil {
		return s
	}
	return string(append(out, s[copied:]...))
}
