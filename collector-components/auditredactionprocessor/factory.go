package auditredactionprocessor

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.uber.org/zap"
)

// typeStr is the name configurations use: `audit_redaction/<name>:`.
const typeStr = "audit_redaction"

var componentType = component.MustNewType(typeStr)

// NewFactory returns the factory ocb registers for otelcol-audit.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		componentType,
		createDefaultConfig,
		processor.WithTraces(createTraces, component.StabilityLevelAlpha),
		processor.WithLogs(createLogs, component.StabilityLevelAlpha),
		processor.WithMetrics(createMetrics, component.StabilityLevelAlpha),
	)
}

// The defaults are the contrib processor's: no key allowed (fails closed), no pattern,
// no summary.
func createDefaultConfig() component.Config { return &Config{} }

var capabilities = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})

func build(set processor.Settings, cfg component.Config) (*redactor, error) {
	c := cfg.(*Config)
	r, err := newRedactor(c)
	if err != nil {
		return nil, fmt.Errorf("error creating the audit_redaction processor: %w", err)
	}
	for _, p := range r.blockedValues {
		if !p.pre.useful() {
			// Still correct (the regex runs on every value), only slow: say so once.
			set.Logger.Warn("blocked_values pattern has no prefilter: it runs on every value",
				zap.String("pattern", p.source))
		}
	}
	return r, nil
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	r, err := build(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, r.processLogs, capabilities)
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	r, err := build(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, r.processTraces, capabilities)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	r, err := build(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, r.processMetrics, capabilities)
}
