using Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Silo.Hosting;

/// <summary>
/// The standalone silo's telemetry: with <c>Telemetry:OtlpEndpoint</c>, Orleans' and the runtime's metrics and
/// the spans of the grain calls and storage requests it serves go to the collector, in the traces the
/// frontends began. Without it, nothing is recorded.
/// </summary>
public static class SiloTelemetryExtensions
{
    public static IHostApplicationBuilder AddSiloTelemetry(this IHostApplicationBuilder builder)
    {
        var options = TelemetryOptions.Register(builder.Services, builder.Configuration);
        if (!options.HasValidEndpoint(out var endpoint) || endpoint is null)
        {
            return builder;
        }

        void Configure(OtlpExporterOptions exporter, string signalPath)
        {
            exporter.Protocol = options.OverHttp ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
            exporter.Endpoint = TelemetryOptions.SignalEndpoint(endpoint, options.OverHttp, signalPath);
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(string.IsNullOrWhiteSpace(options.ServiceName) ? "gateway-silo" : options.ServiceName))
            .WithMetrics(metrics => metrics.AddMeter("Microsoft.Orleans", "System.Runtime").AddOtlpExporter(o => Configure(o, "v1/metrics")));
        if (options.TracesOn)
        {
            telemetry.WithTracing(tracing => tracing.AddSource(TelemetryOptions.OrleansActivitySources).AddOtlpExporter(o => Configure(o, "v1/traces")));
        }

        return builder;
    }
}
