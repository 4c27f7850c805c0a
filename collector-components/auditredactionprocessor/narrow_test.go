package auditredactionprocessor

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestNarrowingReplacesAsTheWholeValue checks replacing run by run against replacing in
// the whole value, for the shipped patterns and constructs sensitive to context: word
// boundaries next to a run, runs one rune apart, invalid UTF-8 and multi-byte runes as
// neighbours, and a pattern that must not be narrowed (it can match the empty string).
func TestNarrowingReplacesAsTheWholeValue(t *testing.T) {
	sources := []string{`\b\d{4}\b`, `\bab+\b`, `a\x{FFFD}b`, `[a-c]+x?`, `(?i)k+`, `x*`, `^ab`, `\Bcd`}
	for _, c := range processorConfigs(t, typeStr) {
		var cfg Config
		unmarshal(t, c.raw, &cfg)
		sources = append(sources, cfg.BlockedValues...)
	}
	values := append([]string{
		"1234 x1234 1234x 1234", "ab abb_ab ab,ab", "a\xffb a\xffb", "abc.abc\xe2\x84abc", "\u212ak k\u212a",
		"xx yy", "ab ab", "ecd cd", "4111 1111 1111 1111,4111-1111-1111-1111", "\xff4111111111111111\xff",
	}, foldingAndInvalid...)
	rng := rand.New(rand.NewPCG(3, 5))
	for range 3000 {
		values = append(values, randomValue(rng))
	}
	narrowed := 0
	for _, source := range sources {
		re := regexp.MustCompile(source)
		n, err := deriveNarrowing(source)
		if err != nil {
			t.Fatal(err)
		}
		if n == nil {
			continue
		}
		narrowed++
		mask := func(string) string { return "<>" }
		whole := func(s string) string { return re.ReplaceAllStringFunc(s, mask) }
		for _, v := range values {
			if got, want := n.replaceRuns(v, whole), whole(v); got != want {
				t.Fatalf("%q on %q: run by run %q, whole value %q", source, v, got, want)
			}
		}
	}
	if narrowed < len(sources)-3 {
		t.Fatalf("only %d of %d patterns narrowed", narrowed, len(sources))
	}
	for _, source := range []string{"x*", "^ab", `a|b$`} {
		if n, _ := deriveNarrowing(source); n != nil {
			t.Errorf("%q must see the whole value", source)
		}
	}
}
