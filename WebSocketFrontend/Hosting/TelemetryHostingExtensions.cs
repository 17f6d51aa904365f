using System.Diagnostics.Metrics;
using Grains.Hosting;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace WebSocketFrontend.Hosting;

/// <summary>The gateway's telemetry on OpenTelemetry: metrics for <c>/metrics</c> and OTLP, traces for OTLP.</summary>
public static class TelemetryHostingExtensions
{
    /// <summary>
    /// The meters exported: the gateway's, Orleans', the runtime's, and ASP.NET Core's that record nothing per
    /// request. Kestrel's meter is left out whole: all its instruments but rejected connections are per
    /// connection, and the gateway refuses connections (Limits:MaxConnections) before Kestrel would.
    /// </summary>
    public static readonly string[] Meters =
    [
        GatewayMetrics.MeterName,
        "Microsoft.Orleans",
        "System.Runtime",
        "Microsoft.AspNetCore.Diagnostics",
        "Microsoft.AspNetCore.RateLimiting",
        "Microsoft.AspNetCore.Authentication",
        "Microsoft.AspNetCore.Authorization",
    ];

    /// <summary>
    /// Registers OpenTelemetry with the Prometheus exporter, and the OTLP exporter for metrics and traces when
    /// <c>Telemetry:OtlpEndpoint</c> is set; traces are recorded only then (or for an exporter a host adds itself,
    /// with <c>Telemetry:Traces</c>).
    /// </summary>
    public static WebApplicationBuilder AddGatewayTelemetry(this WebApplicationBuilder builder)
    {
        var options = TelemetryOptions.Register(builder.Services, builder.Configuration);
        var otlp = options.HasValidEndpoint(out var endpoint) ? endpoint : null;

        // The sources of a request's trace, for whichever tracer provider is built (OTLP's, or a test's).
        builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing
            .AddSource(GatewayTracing.SourceName)
            .AddSource(TelemetryOptions.OrleansActivitySources));

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(string.IsNullOrWhiteSpace(options.ServiceName) ? "gateway" : options.ServiceName))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters)
                    .AddView(instrument => IsPerRequest(instrument) ? MetricStreamConfiguration.Drop : null)
                    .AddPrometheusExporter();
                if (otlp is not null)
                {
                    metrics.AddOtlpExporter(o => Configure(o, otlp, options.OverHttp, "v1/metrics"));
                }
            });
        if (otlp is not null && options.TracesOn)
        {
            telemetry.WithTracing(tracing => tracing.AddOtlpExporter(o => Configure(o, otlp, options.OverHttp, "v1/traces")));
        }

        return builder;
    }

    /// <summary>
    /// ASP.NET Core's instruments recorded for every HTTP request or connection. For a WebSocket the request is
    /// the whole session, so they say nothing the gateway's own metrics do not, and recording them cost every
    /// connect-login a visible share of its CPU (docs/benchmarks.md). Dropped, they are not even listened to.
    /// </summary>
    public static bool IsPerRequest(Instrument instrument) => instrument.Meter.Name switch
    {
        "Microsoft.AspNetCore.Server.Kestrel" or "Microsoft.AspNetCore.Hosting" or "Microsoft.AspNetCore.Routing" or "Microsoft.AspNetCore.Http.Connections" => true,
        _ => false,
    };

    private static void Configure(OtlpExporterOptions exporter, Uri endpoint, bool overHttp, string signalPath)
    {
        exporter.Protocol = overHttp ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
        exporter.Endpoint = TelemetryOptions.SignalEndpoint(endpoint, overHttp, signalPath);
    }
}
