using System.Diagnostics;

namespace WebSocketFrontend.Hosting;

/// <summary>
/// The gateway's traces: one activity per client request, the root of a trace that Orleans' activity
/// propagation carries through the grain calls (and their storage) the request makes.
/// </summary>
public static class GatewayTracing
{
    /// <summary>The name of <see cref="Source"/>.</summary>
    public const string SourceName = "Gateway";

    /// <summary>Starts no activity unless something listens (an exporter is configured).</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>
    /// Starts the activity of one request of <paramref name="action"/> on the connection <paramref name="sessionId"/>, or returns null when nothing listens. It
    /// is a root: the connection's own HTTP request, which lasts as long as the socket, is no parent of it.
    /// </summary>
    public static Activity? StartRequest(string action, string sessionId)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        // Called from an async method: clearing the current activity reaches no further than that method.
        Activity.Current = null;
        var activity = Source.StartActivity(action, ActivityKind.Server);
        activity?.SetTag("gateway.action", action);
        activity?.SetTag("gateway.session_id", sessionId);
        return activity;
    }
}
