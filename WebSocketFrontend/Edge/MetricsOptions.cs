using System.ComponentModel.DataAnnotations;

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

    /// <summary>
    /// When set, <c>/metrics</c> answers only on connections to this local port (404 on the others), so a
    /// firewall can keep it internal; the port must also be listened on (<c>Urls</c>). Unset by default.
    /// </summary>
    [Range(1, 65535)]
    public int? Port { get; set; }
}
