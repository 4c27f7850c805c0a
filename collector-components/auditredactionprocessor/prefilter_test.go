package auditredactionprocessor

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
)

// TestConfiguredPatternsHavePrefilters fails when a pattern of a collector configuration
// would run its regex on every value: a blocked_values pattern (or blocked key pattern)
// from which no useful necessary condition can be derived. Such a pattern is still
// applied correctly, but it costs what the contrib processor costs; rewrite it (a
// literal, a separator, a minimum count of digits) or accept the cost knowingly here.
func TestConfiguredPatternsHavePrefilters(t *testing.T) {
	checked := 0
	for _, c := range processorConfigs(t, typeStr, "redaction") {
		var cfg Config
		unmarshal(t, c.raw, &cfg)
		for _, list := range []struct {
			name     string
			patterns []string
		}{{"blocked_values", cfg.BlockedValues}, {"blocked_key_patterns", cfg.BlockedKeyPatterns}, {"replace_patterns", replacePatternSources(cfg)}} {
			for _, source := range list.patterns {
				checked++
				pre, err := derivePrefilter(source)
				if err != nil {
					t.Errorf("%s %s: %q: %v", c, list.name, source, err)
					continue
				}
				if !pre.useful() {
					t.Errorf("%s %s: %q has no prefilter (derived: %s)", c, list.name, source, pre)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no pattern found in the collector configurations")
	}
}

func replacePatternSources(cfg Config) []string {
	var out []string
	for _, rp := range cfg.ReplacePatterns {
		out = append(out, rp.Pattern)
	}
	return out
}

// TestPatternsWithoutPrefilter shows the check above can fail: these give nothing to
// look for before running the regex.
func TestPatternsWithoutPrefilter(t *testing.T) {
	for _, source := range []string{".*", "[a-z]+", `\w{3,}`, `(?i)[a-z]\d`, "x*", `\s+`} {
		pre, err := derivePrefilter(source)
		if err != nil {
			t.Fatal(err)
		}
		if pre.useful() {
			t.Errorf("%q: derived %s, expected no useful prefilter", source, pre)
		}
	}
}

// Regex constructs with strings that match them (checked) and strings that do not and
// that the prefilter must already rule out (its point).
var constructs = []struct {
	pattern        string
	matches, ruled []string
}{
	{`(?i)kelvin`, []string{"\u212aELVIN", "KeLvIn"}, []string{"kelvi", "elvin k"}},
	{`(?i)s3cret`, []string{"\u017f3CRET", "S3cret"}, []string{"secret"}},
	{`(?i)stra(ß|ss)e`, []string{"STRA\u1e9eE", "strasse"}, []string{"strae"}},
	{`(?i)σx`, []string{"ςX", "Σx"}, []string{"σ x"}},
	{"a.b", []string{"a\xffb", "a\u212ab"}, []string{"ab", "a\nb"}},
	{"a[^x]b", []string{"a\xffb", "a\u00e9b"}, []string{"axb", "ab"}},
	{"a\\x{FFFD}b", []string{"a\xffb", "a\ufffdb", "a\xe2b"}, []string{"a?b"}},
	{`(ab|cd)?ef`, []string{"ef", "abef", "xcdefx"}, []string{"e f"}},
	{`x{2,}y`, []string{"xxy", "xxxxxy"}, []string{"xy", "xxx", "y yy"}},
	{`^abc$`, []string{"abc"}, []string{"ab", "a bc"}},
	{`\bfoo\b`, []string{"a foo b"}, []string{"fo o"}},
	{`\pL+@\d`, []string{"été@1"}, []string{"été@", "@@"}},
	{`[[:alpha:]]{5}\d{6}`, []string{"abcde123456"}, []string{"abcde12345"}},
	{`a{0}b|c`, []string{"b", "c"}, []string{"a", "d"}},
	{`(a*)+b`, []string{"b", "aab"}, []string{"aaa"}},
	{`(?:)`, []string{"", "x"}, nil},
	{`[^\x00-\x{10FFFF}]`, nil, []string{"", "anything", "\xff"}},
	{`(?i)(token|secret)\s*[:=]`, []string{"TO\u212aEN =", "\u017fecret:"}, []string{"token", "secret -"}},
	{`\d{13,19}`, []string{"4111111111111111"}, []string{"411111111111", "4111 1111 1111 1111"}},
}

// admits is the whole prefilter: the gate, then the rest.
func admits(p *prefilter, f *features) bool {
	g := newGate(p)
	return !g.shut(f) && p.mayMatch(f)
}

func TestPrefilterOnConstructs(t *testing.T) {
	var f features
	for _, c := range constructs {
		re := regexp.MustCompile(c.pattern)
		pre, err := derivePrefilter(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.matches {
			f.scan(s)
			if !re.MatchString(s) {
				t.Errorf("%q does not match %q: fix the test", c.pattern, s)
			} else if !admits(pre, &f) {
				t.Errorf("%q: prefilter %s rejects %q, which matches", c.pattern, pre, s)
			}
		}
		for _, s := range c.ruled {
			f.scan(s)
			if re.MatchString(s) {
				t.Errorf("%q matches %q: fix the test", c.pattern, s)
			} else if admits(pre, &f) {
				t.Errorf("%q: prefilter %s lets %q through", c.pattern, pre, s)
			}
		}
	}
}

// TestPrefilterNeverRejectsAMatch checks soundness on random strings, for the shipped
// patterns and the constructs above: whenever the regex matches, the prefilter says maybe.
func TestPrefilterNeverRejectsAMatch(t *testing.T) {
	sources := []string{}
	for _, c := range constructs {
		sources = append(sources, c.pattern)
	}
	shipped := map[string]bool{}
	for _, c := range processorConfigs(t, typeStr) {
		var cfg Config
		unmarshal(t, c.raw, &cfg)
		for _, source := range slices.Concat(cfg.BlockedValues, cfg.BlockedKeyPatterns, replacePatternSources(cfg)) {
			if !shipped[source] {
				shipped[source] = true
				sources = append(sources, source)
			}
		}
	}
	patterns, err := compilePatterns(sources)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	matched, rejected := make([]int, len(patterns)), make([]int, len(patterns))
	var f features
	for i := 0; i < 30_000; i++ {
		s := randomValue(rng)
		f.scan(s)
		for j, p := range patterns {
			may := p.mayMatch(&f)
			if p.re.MatchString(s) {
				matched[j]++
				if !may {
					t.Fatalf("%q: prefilter %s rejects %q, which matches", p.source, p.pre, s)
				}
			} else if !may {
				rejected[j]++
			}
		}
	}
	for j, p := range patterns {
		t.Logf("%6d matched %6d ruled out  %s", matched[j], rejected[j], p.source)
	}
	for j, p := range patterns[len(constructs):] {
		if matched[len(constructs)+j] == 0 {
			t.Errorf("no random string matched %q: the soundness check says nothing about it", p.source)
		}
	}
}
