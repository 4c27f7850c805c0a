package auditredactionprocessor

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The walks below visit what the contrib redaction processor visits: resource and scope
// attributes, then span and span-event attributes, log record attributes and bodies,
// and metric data point attributes. Span names are left alone (the contrib processor
// changes them only through its URL and database sanitizers, which this one lacks).
// replace_patterns, audit_redaction's own, then run on the attributes of log records,
// spans and span events (where a transform processor would have run them, after).

func (r *redactor) processLogs(_ context.Context, logs plog.Logs) (plog.Logs, error) {
	var f features
	for i := 0; i < logs.ResourceLogs().Len(); i++ {
		rl := logs.ResourceLogs().At(i)
		r.redactAttributes(rl.Resource().Attributes(), &f)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			r.redactAttributes(sl.Scope().Attributes(), &f)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				record := sl.LogRecords().At(k)
				r.redactAttributes(record.Attributes(), &f)
				r.redactBody(record.Body(), record.Attributes(), &f)
				r.applyReplacements(record.Attributes(), &f)
			}
		}
	}
	return logs, nil
}

func (r *redactor) processTraces(_ context.Context, traces ptrace.Traces) (ptrace.Traces, error) {
	var f features
	for i := 0; i < traces.ResourceSpans().Len(); i++ {
		rs := traces.ResourceSpans().At(i)
		r.redactAttributes(rs.Resource().Attributes(), &f)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			r.redactAttributes(ss.Scope().Attributes(), &f)
			for k := 0; k < ss.Spans().Len(); k++ {
				span := ss.Spans().At(k)
				r.redactAttributes(span.Attributes(), &f)
				r.applyReplacements(span.Attributes(), &f)
				for e := 0; e < span.Events().Len(); e++ {
					r.redactAttributes(span.Events().At(e).Attributes(), &f)
					r.applyReplacements(span.Events().At(e).Attributes(), &f)
				}
			}
		}
	}
	return traces, nil
}

func (r *redactor) processMetrics(_ context.Context, metrics pmetric.Metrics) (pmetric.Metrics, error) {
	var f features
	for i := 0; i < metrics.ResourceMetrics().Len(); i++ {
		rm := metrics.ResourceMetrics().At(i)
		r.redactAttributes(rm.Resource().Attributes(), &f)
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			r.redactAttributes(sm.Scope().Attributes(), &f)
			for k := 0; k < sm.Metrics().Len(); k++ {
				r.redactMetric(sm.Metrics().At(k), &f)
			}
		}
	}
	return metrics, nil
}

func (r *redactor) redactMetric(m pmetric.Metric, f *features) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
			r.redactAttributes(m.Gauge().DataPoints().At(i).Attributes(), f)
		}
	case pmetric.MetricTypeSum:
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			r.redactAttributes(m.Sum().DataPoints().At(i).Attributes(), f)
		}
	case pmetric.MetricTypeHistogram:
		for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
			r.redactAttributes(m.Histogram().DataPoints().At(i).Attributes(), f)
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := 0; i < m.ExponentialHistogram().DataPoints().Len(); i++ {
			r.redactAttributes(m.ExponentialHistogram().DataPoints().At(i).Attributes(), f)
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			r.redactAttributes(m.Summary().DataPoints().At(i).Attributes(), f)
		}
	case pmetric.MetricTypeEmpty:
	}
}
