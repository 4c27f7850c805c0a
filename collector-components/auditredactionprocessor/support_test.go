package auditredactionprocessor

// Shared by the tests: the processor configurations shipped in collector-config/, both
// processors (this one and the contrib redaction processor v0.145.0, the reference)
// built from the same configuration, and a comparison of their outputs.
//
// The reference is not deterministic: the contrib processor keeps blocked_values in a Go
// map, so it applies them in an order that changes between batches, and where two
// patterns overlap in one value ("+1 4111 1111 1111 1111" is a phone number and holds a
// card number) its output depends on that order. This processor applies them in the
// configured order. The comparison therefore accepts a differing string only when
// (1) this processor's result is what the contrib processor gives with the patterns in
// the configured order (contrib processors of one pattern each, chained), and (2) the
// contrib processor's own result is one it gives in some order.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	redaction "github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.yaml.in/yaml/v3"
)

// configDir holds the collector configurations this component is used in.
var configDir = filepath.Join("..", "..", "collector-config")

// namedConfig is one processor's settings as written in a collector configuration.
type namedConfig struct {
	file, name string
	raw        map[string]any
}

func (c namedConfig) String() string { return c.file + ":" + c.name }

// processorConfigs returns the processors of every top-level collector-config/*.yaml
// whose type is one of types.
func processorConfigs(t testing.TB, types ...string) []namedConfig {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(configDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no collector configurations in %s (%v)", configDir, err)
	}
	var out []namedConfig
	for _, file := range files {
		if filepath.Base(file) == "builder-config.yaml" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Processors map[string]map[string]any `yaml:"processors"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for name, raw := range doc.Processors {
			typ, _, _ := strings.Cut(name, "/")
			for _, want := range types {
				if typ == want {
					out = append(out, namedConfig{file: filepath.Base(file), name: name, raw: unescapeDollars(raw).(map[string]any)})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// unescapeDollars does what the collector's config resolver does to a string without
// ${...} references: "$$" stands for "$" (replace_patterns templates use it).
func unescapeDollars(v any) any {
	switch v := v.(type) {
	case string:
		return strings.ReplaceAll(v, "$$", "$")
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = unescapeDollars(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = unescapeDollars(x)
		}
		return out
	}
	return v
}

// withoutOwnSettings is raw minus audit_redaction's own settings: what both processors
// understand.
func withoutOwnSettings(raw map[string]any) map[string]any {
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		if k != "replace_patterns" {
			out[k] = v
		}
	}
	return out
}

// shippedConfigs are the audit_redaction processors of the shipped configurations; the
// tests below are only as good as this list is long.
func shippedConfigs(t testing.TB) []namedConfig {
	t.Helper()
	configs := processorConfigs(t, typeStr)
	if len(configs) == 0 {
		t.Fatalf("no %s processor in %s/*.yaml", typeStr, configDir)
	}
	return configs
}

func unmarshal(t testing.TB, raw map[string]any, into any) {
	t.Helper()
	if err := confmap.NewFromStringMap(raw).Unmarshal(into); err != nil {
		t.Fatalf("unmarshal %v: %v", raw, err)
	}
}

// pair is this processor and the contrib one, built from the same settings.
type pair struct {
	name string
	cfg  *Config
	ours processor.Factory
	mine struct {
		logs   func(plog.Logs) plog.Logs
		traces func(ptrace.Traces) ptrace.Traces
	}
	contrib struct {
		logs   func(plog.Logs) plog.Logs
		traces func(ptrace.Traces) ptrace.Traces
	}
	steps []func(string) string // contrib with one blocked pattern each, in configured order

	mu    sync.Mutex
	cache map[stepKey]string
}

type stepKey struct {
	pattern int
	value   string
}

func logsRunner(t testing.TB, f processor.Factory, cfg any) func(plog.Logs) plog.Logs {
	t.Helper()
	sink := new(consumertest.LogsSink)
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	var mu sync.Mutex
	return func(in plog.Logs) plog.Logs {
		mu.Lock()
		defer mu.Unlock()
		sink.Reset()
		if err := p.ConsumeLogs(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		return sink.AllLogs()[0]
	}
}

func tracesRunner(t testing.TB, f processor.Factory, cfg any) func(ptrace.Traces) ptrace.Traces {
	t.Helper()
	sink := new(consumertest.TracesSink)
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	var mu sync.Mutex
	return func(in ptrace.Traces) ptrace.Traces {
		mu.Lock()
		defer mu.Unlock()
		sink.Reset()
		if err := p.ConsumeTraces(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		return sink.AllTraces()[0]
	}
}

// newPair builds both processors from the settings they share (replace_patterns, this
// processor's own, are compared with OTTL's meaning in TestReplacePatternsAsOTTL).
func newPair(t testing.TB, name string, raw map[string]any) *pair {
	t.Helper()
	raw = withoutOwnSettings(raw)
	p := &pair{name: name, cache: map[stepKey]string{}}
	ours := NewFactory()
	p.cfg = ours.CreateDefaultConfig().(*Config)
	unmarshal(t, raw, p.cfg)
	if err := p.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	theirs := redaction.NewFactory()
	theirCfg := theirs.CreateDefaultConfig()
	unmarshal(t, raw, theirCfg)
	p.mine.logs, p.mine.traces = logsRunner(t, ours, p.cfg), tracesRunner(t, ours, p.cfg)
	p.contrib.logs, p.contrib.traces = logsRunner(t, theirs, theirCfg), tracesRunner(t, theirs, theirCfg)
	for _, pattern := range p.cfg.BlockedValues {
		stepCfg := theirs.CreateDefaultConfig()
		unmarshal(t, map[string]any{
			"allow_all_keys": true,
			"blocked_values": []any{pattern},
			"hash_function":  string(p.cfg.HashFunction),
		}, stepCfg)
		run := logsRunner(t, theirs, stepCfg)
		p.steps = append(p.steps, func(value string) string {
			logs := plog.NewLogs()
			logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().
				Attributes().PutStr("v", value)
			out := run(logs)
			v, _ := out.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get("v")
			return v.Str()
		})
	}
	return p
}

// shippedPairs builds a pair for every shipped audit_redaction processor.
func shippedPairs(t testing.TB) []*pair {
	t.Helper()
	var pairs []*pair
	for _, c := range shippedConfigs(t) {
		pairs = append(pairs, newPair(t, c.String(), c.raw))
	}
	return pairs
}

func (p *pair) step(i int, value string) string {
	p.mu.Lock()
	out, ok := p.cache[stepKey{i, value}]
	p.mu.Unlock()
	if !ok {
		out = p.steps[i](value)
		p.mu.Lock()
		p.cache[stepKey{i, value}] = out
		p.mu.Unlock()
	}
	return out
}

// inConfiguredOrder is the contrib processor's masking with the patterns applied in the
// order the configuration lists them.
func (p *pair) inConfiguredOrder(value string) string {
	for i := range p.steps {
		value = p.step(i, value)
	}
	return value
}

// inSomeOrder tells whether the contrib processor, applying the patterns in some order,
// turns value into want.
func (p *pair) inSomeOrder(value, want string) bool {
	// Only patterns that change some string reachable from value can make a difference;
	// the others are no-ops in every order, so only the orders of the first kind are tried.
	// Reachable is over-approximated (a pattern that was a no-op may be applied again
	// later), which can only add patterns; each path changes the value at most once per
	// pattern, so this ends.
	type reach struct {
		value   string
		changed uint64
	}
	var relevant []int
	seen := map[reach]bool{{value: value}: true}
	queue := []reach{{value: value}}
	changes := make([]bool, len(p.steps))
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for i := range p.steps {
			if s.changed&(1<<i) != 0 {
				continue
			}
			if out := p.step(i, s.value); out != s.value {
				changes[i] = true
				if next := (reach{out, s.changed | 1<<i}); !seen[next] {
					seen[next] = true
					queue = append(queue, next)
				}
			}
		}
	}
	for i, c := range changes {
		if c {
			relevant = append(relevant, i)
		}
	}
	type state struct {
		value string
		done  uint64
	}
	all := uint64(1)<<len(relevant) - 1
	visited := map[state]bool{}
	var search func(state) bool
	search = func(s state) bool {
		if s.done == all {
			return s.value == want
		}
		if visited[s] {
			return false
		}
		visited[s] = true
		for j, i := range relevant {
			if s.done&(1<<j) == 0 && search(state{p.step(i, s.value), s.done | 1<<j}) {
				return true
			}
		}
		return false
	}
	return search(state{value: value})
}

// diff collects where two outputs differ in a way the order rule above does not excuse.
type diff struct {
	pair       *pair
	problems   []string
	orderTies  int // strings where the contrib processor's order changed its output
	comparedAt int // string leaves compared
}

func (d *diff) failf(format string, args ...any) {
	if len(d.problems) < 20 {
		d.problems = append(d.problems, fmt.Sprintf(format, args...))
	}
}

func (d *diff) report(t testing.TB) {
	t.Helper()
	if len(d.problems) > 0 {
		t.Errorf("%s: this processor and the contrib redaction processor disagree:\n  %s",
			d.pair.name, strings.Join(d.problems, "\n  "))
	}
}

// scanned is the string a processor scanned for a leaf that it changed.
func scanned(orig pcommon.Value, ok bool) string {
	if !ok {
		return ""
	}
	if orig.Type() == pcommon.ValueTypeStr {
		return orig.Str()
	}
	return orig.AsString()
}

func (d *diff) value(path string, orig pcommon.Value, hasOrig bool, mine, theirs pcommon.Value) {
	if mine.Type() != theirs.Type() {
		d.failf("%s: type %s here, %s in contrib", path, mine.Type(), theirs.Type())
		return
	}
	switch mine.Type() {
	case pcommon.ValueTypeMap:
		var om pcommon.Map
		if hasOrig && orig.Type() == pcommon.ValueTypeMap {
			om = orig.Map()
		} else {
			om = pcommon.NewMap()
		}
		d.maps(path, om, mine.Map(), theirs.Map())
	case pcommon.ValueTypeSlice:
		ms, ts := mine.Slice(), theirs.Slice()
		if ms.Len() != ts.Len() {
			d.failf("%s: %d items here, %d in contrib", path, ms.Len(), ts.Len())
			return
		}
		for i := 0; i < ms.Len(); i++ {
			var o pcommon.Value
			ok := hasOrig && orig.Type() == pcommon.ValueTypeSlice && i < orig.Slice().Len()
			if ok {
				o = orig.Slice().At(i)
			}
			d.value(fmt.Sprintf("%s[%d]", path, i), o, ok, ms.At(i), ts.At(i))
		}
	case pcommon.ValueTypeStr:
		d.comparedAt++
		if mine.Str() == theirs.Str() {
			return
		}
		in := scanned(orig, hasOrig)
		if want := d.pair.inConfiguredOrder(in); mine.Str() != want {
			d.failf("%s: %q -> %q here, %q in contrib (and %q in the configured order)", path, in, mine.Str(), theirs.Str(), want)
			return
		}
		if !d.pair.inSomeOrder(in, theirs.Str()) {
			d.failf("%s: %q -> %q in contrib, which no order of its patterns gives", path, in, theirs.Str())
			return
		}
		d.orderTies++
	default:
		if !mine.Equal(theirs) {
			d.failf("%s: %s here, %s in contrib", path, mine.AsString(), theirs.AsString())
		}
	}
}

// maps compares key by key, in order: the archive is written in this order.
func (d *diff) maps(path string, orig, mine, theirs pcommon.Map) {
	var mk, tk []string
	for k := range mine.All() {
		mk = append(mk, k)
	}
	for k := range theirs.All() {
		tk = append(tk, k)
	}
	if strings.Join(mk, "\x00") != strings.Join(tk, "\x00") {
		d.failf("%s: keys %q here, %q in contrib", path, mk, tk)
		return
	}
	for _, k := range mk {
		mv, _ := mine.Get(k)
		tv, _ := theirs.Get(k)
		ov, ok := orig.Get(k)
		d.value(path+"."+k, ov, ok, mv, tv)
	}
}

func (d *diff) logs(orig, mine, theirs plog.Logs) {
	if mine.ResourceLogs().Len() != theirs.ResourceLogs().Len() {
		d.failf("resource count differs")
		return
	}
	for i := 0; i < mine.ResourceLogs().Len(); i++ {
		o, m, th := orig.ResourceLogs().At(i), mine.ResourceLogs().At(i), theirs.ResourceLogs().At(i)
		d.maps(fmt.Sprintf("resource[%d]", i), o.Resource().Attributes(), m.Resource().Attributes(), th.Resource().Attributes())
		for j := 0; j < m.ScopeLogs().Len(); j++ {
			os, ms, ts := o.ScopeLogs().At(j), m.ScopeLogs().At(j), th.ScopeLogs().At(j)
			d.maps(fmt.Sprintf("resource[%d].scope[%d]", i, j), os.Scope().Attributes(), ms.Scope().Attributes(), ts.Scope().Attributes())
			for k := 0; k < ms.LogRecords().Len(); k++ {
				or, mr, tr := os.LogRecords().At(k), ms.LogRecords().At(k), ts.LogRecords().At(k)
				where := fmt.Sprintf("resource[%d].scope[%d].record[%d]", i, j, k)
				d.maps(where+".attributes", or.Attributes(), mr.Attributes(), tr.Attributes())
				d.value(where+".body", or.Body(), true, mr.Body(), tr.Body())
			}
		}
	}
}

func (d *diff) traces(orig, mine, theirs ptrace.Traces) {
	if mine.ResourceSpans().Len() != theirs.ResourceSpans().Len() {
		d.failf("resource count differs")
		return
	}
	for i := 0; i < mine.ResourceSpans().Len(); i++ {
		o, m, th := orig.ResourceSpans().At(i), mine.ResourceSpans().At(i), theirs.ResourceSpans().At(i)
		d.maps(fmt.Sprintf("resource[%d]", i), o.Resource().Attributes(), m.Resource().Attributes(), th.Resource().Attributes())
		for j := 0; j < m.ScopeSpans().Len(); j++ {
			os, ms, ts := o.ScopeSpans().At(j), m.ScopeSpans().At(j), th.ScopeSpans().At(j)
			d.maps(fmt.Sprintf("resource[%d].scope[%d]", i, j), os.Scope().Attributes(), ms.Scope().Attributes(), ts.Scope().Attributes())
			for k := 0; k < ms.Spans().Len(); k++ {
				osp, msp, tsp := os.Spans().At(k), ms.Spans().At(k), ts.Spans().At(k)
				where := fmt.Sprintf("resource[%d].scope[%d].span[%d]", i, j, k)
				if msp.Name() != tsp.Name() {
					d.failf("%s: name %q here, %q in contrib", where, msp.Name(), tsp.Name())
				}
				d.maps(where+".attributes", osp.Attributes(), msp.Attributes(), tsp.Attributes())
				for e := 0; e < msp.Events().Len(); e++ {
					d.maps(fmt.Sprintf("%s.event[%d]", where, e), osp.Events().At(e).Attributes(),
						msp.Events().At(e).Attributes(), tsp.Events().At(e).Attributes())
				}
			}
		}
	}
}

// compareLogs runs both processors on copies of in and checks their outputs.
func (p *pair) compareLogs(t testing.TB, in plog.Logs) *diff {
	t.Helper()
	orig, a, b := plog.NewLogs(), plog.NewLogs(), plog.NewLogs()
	in.CopyTo(orig)
	in.CopyTo(a)
	in.CopyTo(b)
	d := &diff{pair: p}
	d.logs(orig, p.mine.logs(a), p.contrib.logs(b))
	return d
}

func (p *pair) compareTraces(t testing.TB, in ptrace.Traces) *diff {
	t.Helper()
	orig, a, b := ptrace.NewTraces(), ptrace.NewTraces(), ptrace.NewTraces()
	in.CopyTo(orig)
	in.CopyTo(a)
	in.CopyTo(b)
	d := &diff{pair: p}
	d.traces(orig, p.mine.traces(a), p.contrib.traces(b))
	return d
}
