namespace WebSocketFrontend.Edge;

/// <summary>How <c>/metrics</c> is served, section <c>Metrics</c>.</summary>
public sealed class MetricsOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Metrics";

    /// <summary>
    /// When true, <c>/metrics</c> needs <c>Authorization: Bearer</c> with <c>Api:AdminKey</c> (and is off
    /// without one). Default false: the text holds counts and latencies, never ids or tokens, and
    /// scrapers usually carry no credentials.
    /// </summary>
    public bool RequireAdminKey { get; set; }
}
