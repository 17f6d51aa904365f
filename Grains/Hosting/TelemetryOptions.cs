using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Grains.Hosting;

/// <summary>Where OpenTelemetry sends metrics and traces besides the frontend's <c>/metrics</c>, section <c>Telemetry</c>; frontends and silos read it alike.</summary>
public sealed class TelemetryOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Telemetry";

    /// <summary>Orleans' activity sources a request's trace goes through: grain calls, and grain storage.</summary>
    public static readonly string[] OrleansActivitySources = ["Microsoft.Orleans.Application", "Microsoft.Orleans.Storage"];

    /// <summary>
    /// An OTLP collector's base address (<c>http://collector:4317</c> for gRPC, <c>http://collector:4318</c> for
    /// HTTP): when set, metrics and one trace per request go there. Unset by default: nothing leaves the
    /// process but what <c>/metrics</c> is asked for, and no trace is recorded.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>How OTLP is spoken: <c>grpc</c> (the default) or <c>http/protobuf</c>.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>
    /// Whether requests are traced: a span per request, carried through the grain calls it makes by Orleans'
    /// activity propagation. Default: on exactly when <see cref="OtlpEndpoint"/> is set. Off, Orleans runs its
    /// grain calls without the propagation filters, which cost throughput even when no span is recorded.
    /// </summary>
    public bool? Traces { get; set; }

    /// <summary>Whether requests are traced, <see cref="Traces"/> or its default.</summary>
    public bool TracesOn => Traces ?? !string.IsNullOrEmpty(OtlpEndpoint);

    /// <summary>The options as configured (unvalidated: the host validates them at start).</summary>
    public static TelemetryOptions From(IConfiguration configuration) =>
        configuration.GetSection(Section).Get<TelemetryOptions>() ?? new TelemetryOptions();

    /// <summary>The service name exported metrics and traces carry. Default: <c>gateway</c> for a frontend, <c>gateway-silo</c> for a standalone silo.</summary>
    public string? ServiceName { get; set; }

    /// <summary>Whether OTLP is spoken over HTTP rather than gRPC.</summary>
    public bool OverHttp => OtlpProtocol == "http/protobuf";

    /// <summary>Whether <see cref="OtlpEndpoint"/> is unset or an absolute http or https address; <paramref name="endpoint"/> is it when set.</summary>
    public bool HasValidEndpoint(out Uri? endpoint)
    {
        endpoint = null;
        if (string.IsNullOrEmpty(OtlpEndpoint))
        {
            return true;
        }

        if (Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            endpoint = uri;
            return true;
        }

        return false;
    }

    /// <summary>Where one signal (<c>v1/traces</c>, <c>v1/metrics</c>) goes: gRPC takes the collector's address, HTTP a path under it.</summary>
    public static Uri SignalEndpoint(Uri endpoint, bool overHttp, string signalPath) =>
        overHttp ? new Uri(endpoint, endpoint.AbsolutePath.TrimEnd('/') + "/" + signalPath) : endpoint;

    /// <summary>Registers the options, validated at start, and returns them as configured now (for wiring exporters).</summary>
    public static TelemetryOptions Register(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<TelemetryOptions>()
            .Bind(configuration.GetSection(Section))
            .Validate(o => o.HasValidEndpoint(out _), "Telemetry:OtlpEndpoint must be an absolute http or https address (http://collector:4317).")
            .Validate(o => o.OtlpProtocol is "grpc" or "http/protobuf", "Telemetry:OtlpProtocol must be \"grpc\" or \"http/protobuf\".")
            .Validate(o => o.ServiceName is null || !string.IsNullOrWhiteSpace(o.ServiceName), "Telemetry:ServiceName must not be blank when set.")
            .ValidateOnStart();
        return From(configuration);
    }
}
