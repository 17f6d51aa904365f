namespace WebSocketFrontend.Hosting;

/// <summary>Where OpenTelemetry sends the gateway's metrics and traces besides <c>/metrics</c>, section <c>Telemetry</c>.</summary>
public sealed class TelemetryOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Telemetry";

    /// <summary>
    /// An OTLP collector's base address (<c>http://collector:4317</c> for gRPC, <c>http://collector:4318</c> for
    /// HTTP): when set, metrics and one trace per request go there. Unset by default: nothing leaves the
    /// process but what <c>/metrics</c> is asked for, and no trace is recorded.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>How OTLP is spoken: <c>grpc</c> (the default) or <c>http/protobuf</c>.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>The service name the exported metrics and traces carry. Default <c>gateway</c>.</summary>
    public string ServiceName { get; set; } = "gateway";

    /// <summary>Whether <see cref="OtlpEndpoint"/> is an absolute http or https address.</summary>
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
}
