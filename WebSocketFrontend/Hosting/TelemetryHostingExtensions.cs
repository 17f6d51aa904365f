using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace WebSocketFrontend.Hosting;

/// <summary>The gateway's telemetry on OpenTelemetry: metrics for <c>/metrics</c> and OTLP, traces for OTLP.</summary>
public static class TelemetryHostingExtensions
{
    /// <summary>The meters exported: the gateway's, Orleans', the runtime's, and ASP.NET Core's that cost nothing per request.</summary>
    public static readonly string[] Meters =
    [
        GatewayMetrics.MeterName,
        "Microsoft.Orleans",
        "System.Runtime",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.Diagnostics",
        "Microsoft.AspNetCore.RateLimiting",
        "Microsoft.AspNetCore.Authentication",
        "Microsoft.AspNetCore.Authorization",
    ];

    /// <summary>
    /// Registers OpenTelemetry with the Prometheus exporter, and the OTLP exporter for metrics and traces when
    /// <c>Telemetry:OtlpEndpoint</c> is set; traces are recorded only then.
    /// </summary>
    public static WebApplicationBuilder AddGatewayTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<TelemetryOptions>()
            .Bind(builder.Configuration.GetSection(TelemetryOptions.Section))
            .Validate(o => o.HasValidEndpoint(out _), "Telemetry:OtlpEndpoint must be an absolute http or https address (http://collector:4317).")
            .Validate(o => o.OtlpProtocol is "grpc" or "http/protobuf", "Telemetry:OtlpProtocol must be \"grpc\" or \"http/protobuf\".")
            .Validate(o => !string.IsNullOrWhiteSpace(o.ServiceName), "Telemetry:ServiceName must not be empty.")
            .ValidateOnStart();
        var options = builder.Configuration.GetSection(TelemetryOptions.Section).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var otlp = options.HasValidEndpoint(out var endpoint) ? endpoint : null;
        var protocol = options.OtlpProtocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;

        // The sources of a request's trace, for whichever tracer provider is built (OTLP's, or a test's).
        builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing
            .AddSource(GatewayTracing.SourceName)
            .AddSource(GatewayTracing.OrleansSources));

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(string.IsNullOrWhiteSpace(options.ServiceName) ? "gateway" : options.ServiceName))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters)
                    .AddView(instrument => IsPerRequest(instrument) ? MetricStreamConfiguration.Drop : null)
                    .AddPrometheusExporter();
                if (otlp is not null)
                {
                    metrics.AddOtlpExporter(o => Configure(o, otlp, protocol, "v1/metrics"));
                }
            });
        if (otlp is not null)
        {
            telemetry.WithTracing(tracing => tracing.AddOtlpExporter(o => Configure(o, otlp, protocol, "v1/traces")));
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
        "Microsoft.AspNetCore.Server.Kestrel" => instrument.Name != "kestrel.rejected_connections",
        "Microsoft.AspNetCore.Hosting" or "Microsoft.AspNetCore.Routing" or "Microsoft.AspNetCore.Http.Connections" => true,
        _ => false,
    };

    private static void Configure(OtlpExporterOptions exporter, Uri endpoint, OtlpExportProtocol protocol, string signalPath)
    {
        exporter.Protocol = protocol;

        // gRPC takes the collector's address; HTTP the path of each signal under it.
        exporter.Endpoint = protocol == OtlpExportProtocol.Grpc ? endpoint : new Uri(endpoint, endpoint.AbsolutePath.TrimEnd('/') + "/" + signalPath);
    }
}
