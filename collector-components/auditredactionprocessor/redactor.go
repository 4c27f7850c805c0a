package auditredactionprocessor

import (
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Summary attribute names: the contrib redaction processor's (v0.145.0), which
// otel_audit's archive verifier also knows (COLLECTOR_SUMMARY_KEYS).
const (
	keyRedactedKeys      = "redaction.redacted.keys"
	keyRedactedCount     = "redaction.redacted.count"
	keyMaskedKeys        = "redaction.masked.keys"
	keyMaskedCount       = "redaction.masked.count"
	keyAllowedKeys       = "redaction.allowed.keys"
	keyAllowedCount      = "redaction.allowed.count"
	keyIgnoredCount      = "redaction.ignored.count"
	keyBodyRedactedKeys  = "redaction.body.redacted.keys"
	keyBodyRedactedCount = "redaction.body.redacted.count"
	keyBodyMaskedKeys    = "redaction.body.masked.keys"
	keyBodyMaskedCount   = "redaction.body.masked.count"
	keyBodyAllowedKeys   = "redaction.body.allowed.keys"
	keyBodyAllowedCount  = "redaction.body.allowed.count"
	keyBodyIgnoredCount  = "redaction.body.ignored.count"

	keyListSeparator = ","
)

// The processor's own summary keys survive any allow-list, so a record that crosses two
// collectors keeps the first one's summary (the second adds its counts to it).
var summaryKeys = []string{keyRedactedKeys, keyRedactedCount, keyMaskedKeys, keyMaskedCount, keyIgnoredCount}

// redactor holds the compiled rules; it is read-only after newRedactor, so one instance
// serves concurrent batches.
type redactor struct {
	allowAll       bool
	keyTable       keyTable // the configured keys: one lookup per attribute
	keyVerdicts    *keyCache
	ignoredKeys    []*pattern
	blockedKeys    []*pattern
	blockedValues  []*pattern // in configuration order
	allowedValues  []*pattern
	replacements   []replacement
	redactAllTypes bool
	counts, keys   bool // summary: counts (info, debug) and key lists (debug)
	masker         masker
}

func newRedactor(cfg *Config) (*redactor, error) {
	r := &redactor{
		allowAll:       cfg.AllowAllKeys,
		redactAllTypes: cfg.RedactAllTypes,
		keyVerdicts:    new(keyCache),
		counts:         cfg.Summary == summaryInfo || cfg.Summary == summaryDebug,
		keys:           cfg.Summary == summaryDebug,
		masker:         newMasker(cfg.HashFunction),
	}
	rules := make(map[string]keyRule, len(cfg.AllowedKeys)+len(summaryKeys)+len(cfg.IgnoredKeys))
	for _, k := range cfg.AllowedKeys {
		rules[k] |= keyAllowed
	}
	for _, k := range summaryKeys {
		rules[k] |= keyAllowed
	}
	for _, k := range cfg.IgnoredKeys {
		rules[k] |= keyIgnored
	}
	r.keyTable = newKeyTable(rules)
	var err error
	for _, list := range []struct {
		into    *[]*pattern
		sources []string
	}{
		{&r.ignoredKeys, cfg.IgnoredKeyPatterns},
		{&r.blockedKeys, cfg.BlockedKeyPatterns},
		{&r.blockedValues, cfg.BlockedValues},
		{&r.allowedValues, cfg.AllowedValues},
	} {
		if *list.into, err = compilePatterns(list.sources); err != nil {
			return nil, err
		}
	}
	if r.replacements, err = compileReplacements(cfg.ReplacePatterns); err != nil {
		return nil, err
	}
	return r, nil
}

// tally collects what happened to the entries of one map (or one log body).
type tally struct {
	redacted                []string // always kept: these keys are removed afterwards
	masked, allowed         []string // kept for a debug summary only
	nMasked, nAllowed, nIgn int
}

func (t *tally) mask(key string, keep bool) {
	t.nMasked++
	if keep {
		t.masked = append(t.masked, key)
	}
}

func (t *tally) allow(key string, keep bool) {
	t.nAllowed++
	if keep {
		t.allowed = append(t.allowed, key)
	}
}

// judgeKey tells whether a key is ignored (left as it is) or removed (not allowed).
func (r *redactor) judgeKey(k string, f *features) (ignored, removed bool) {
	rule := r.keyTable.rule(k)
	if rule&keyIgnored != 0 || r.keyPatterns(k, f).ignored {
		return true, false
	}
	return false, !r.allowAll && rule&keyAllowed == 0
}

var noKeyPatterns = &keyVerdict{}

// keyPatterns is what ignored_key_patterns and blocked_key_patterns say about a key.
func (r *redactor) keyPatterns(k string, f *features) *keyVerdict {
	if len(r.ignoredKeys) == 0 && len(r.blockedKeys) == 0 {
		return noKeyPatterns
	}
	if v := r.keyVerdicts.get(k); v != nil {
		return v
	}
	// A copy: the cache must not keep a decoded request alive through a key that points
	// into it.
	v := &keyVerdict{key: strings.Clone(k), ignored: anyMatches(r.ignoredKeys, k, f), blocked: anyMatches(r.blockedKeys, k, f)}
	r.keyVerdicts.put(v)
	return v
}

// redactAttributes applies the rules to one attribute map, in the contrib processor's
// order: ignored keys, keys not allowed (removed), allowed values, blocked keys (whole
// value masked), blocked values (matches masked); then the summary.
func (r *redactor) redactAttributes(attrs pcommon.Map, f *features) {
	var t tally
	for k, v := range attrs.All() {
		ignored, removed := r.judgeKey(k, f)
		if ignored {
			t.nIgn++
			continue
		}
		if removed {
			t.redacted = append(t.redacted, k)
			continue
		}
		value := v.Str() // "" for a value that is not a string
		if r.redactAllTypes {
			value = v.AsString()
		}
		if anyMatches(r.allowedValues, value, f) {
			t.allow(k, r.keys)
			continue
		}
		if r.keyPatterns(k, f).blocked {
			t.mask(k, r.keys)
			v.SetStr(r.masker.maskWhole(value))
			continue
		}
		if masked := r.masker.maskBlocked(r.blockedValues, value, f); masked != value {
			t.mask(k, r.keys)
			v.SetStr(masked)
		}
	}
	for _, k := range t.redacted {
		attrs.Remove(k)
	}
	r.summarize(attrs, t.redacted, len(t.redacted), keyRedactedKeys, keyRedactedCount)
	r.summarize(attrs, t.masked, t.nMasked, keyMaskedKeys, keyMaskedCount)
	r.summarize(attrs, t.allowed, t.nAllowed, keyAllowedKeys, keyAllowedCount)
	r.summarize(attrs, nil, t.nIgn, "", keyIgnoredCount)
}

// redactBody applies the rules to a log record's body and summarises into the record's
// attributes under the redaction.body.* names. A map body's keys are judged like
// attribute keys, nested maps and slices are walked (paths "a.b", "[0]", "a.[1]"), and
// every other value is scanned through its string form.
func (r *redactor) redactBody(body pcommon.Value, attrs pcommon.Map, f *features) {
	var t tally
	switch body.Type() {
	case pcommon.ValueTypeMap:
		r.redactBodyMap(body.Map(), bodyPath{}, &t, f)
	case pcommon.ValueTypeSlice:
		r.redactBodySlice(body.Slice(), bodyPath{}, &t, f)
	default:
		value := body.AsString()
		if anyMatches(r.allowedValues, value, f) {
			return // the contrib processor adds no summary for an allowed plain body
		}
		if masked := r.masker.maskBlocked(r.blockedValues, value, f); masked != value {
			t.mask("body", r.keys)
			body.SetStr(masked)
		}
	}
	r.summarize(attrs, t.redacted, len(t.redacted), keyBodyRedactedKeys, keyBodyRedactedCount)
	r.summarize(attrs, t.masked, t.nMasked, keyBodyMaskedKeys, keyBodyMaskedCount)
	r.summarize(attrs, t.allowed, t.nAllowed, keyBodyAllowedKeys, keyBodyAllowedCount)
	r.summarize(attrs, nil, t.nIgn, "", keyBodyIgnoredCount)
}

// bodyPath names a value inside a body: the zero value is the body itself, whose
// entries are named without a prefix.
type bodyPath struct {
	name   string
	nested bool
}

func (p bodyPath) child(key string) bodyPath {
	if !p.nested {
		return bodyPath{name: key, nested: true}
	}
	return bodyPath{name: p.name + "." + key, nested: true}
}

// redactBodyMap judges a body map's keys: ignored, removed, blocked (whole value masked;
// no allowed-values check here, unlike attributes), else the value is walked.
func (r *redactor) redactBodyMap(m pcommon.Map, prefix bodyPath, t *tally, f *features) {
	var removed []string
	for k, v := range m.All() {
		path := prefix.child(k)
		ignored, remove := r.judgeKey(k, f)
		switch {
		case ignored:
			t.nIgn++
		case remove:
			removed = append(removed, k)
		case r.keyPatterns(k, f).blocked:
			t.mask(path.name, r.keys)
			v.SetStr(r.masker.maskWhole(v.Str()))
		default:
			r.redactBodyValue(v, path, t, f)
		}
	}
	for _, k := range removed {
		m.Remove(k)
		t.redacted = append(t.redacted, prefix.child(k).name)
	}
}

func (r *redactor) redactBodySlice(s pcommon.Slice, prefix bodyPath, t *tally, f *features) {
	for i := 0; i < s.Len(); i++ {
		r.redactBodyValue(s.At(i), prefix.child("["+strconv.Itoa(i)+"]"), t, f)
	}
}

func (r *redactor) redactBodyValue(v pcommon.Value, path bodyPath, t *tally, f *features) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		r.redactBodyMap(v.Map(), path, t, f)
	case pcommon.ValueTypeSlice:
		r.redactBodySlice(v.Slice(), path, t, f)
	default:
		value := v.AsString()
		if anyMatches(r.allowedValues, value, f) {
			t.allow(path.name, r.keys)
			return
		}
		if masked := r.masker.maskBlocked(r.blockedValues, value, f); masked != value {
			t.mask(path.name, r.keys)
			v.SetStr(masked)
		}
	}
}

// summarize adds n to the count attribute (and, at debug, the keys to the sorted key
// list), merging with what an earlier pass left there.
func (r *redactor) summarize(attrs pcommon.Map, keys []string, n int, keysAttr, countAttr string) {
	if n == 0 || !r.counts {
		return
	}
	if r.keys && keysAttr != "" {
		if old, ok := attrs.Get(keysAttr); ok && old.Str() != "" {
			keys = append(keys, strings.Split(old.Str(), keyListSeparator)...)
		}
		sort.Strings(keys)
		attrs.PutStr(keysAttr, strings.Join(keys, keyListSeparator))
	}
	count := int64(n)
	if old, ok := attrs.Get(countAttr); ok {
		count += old.Int()
	}
	attrs.PutInt(countAttr, count)
}
