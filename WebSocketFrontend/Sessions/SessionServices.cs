using Microsoft.Extensions.Options;
using WebSocketFrontend.Edge;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>What every session shares, whatever its transport: created once, handed to each <see cref="ClientSession"/>.</summary>
public sealed class SessionServices(
    RequestHandler handler,
    ReplyWriter replies,
    IOptions<ProtocolOptions> options,
    TimeProvider time,
    ILogger<ClientSession> logger,
    IGrainFactory grains,
    FrontendIdentity frontend,
    FrontendObserver observer,
    DirectoryUpdates directory,
    GatewayMetrics metrics,
    EdgeMetrics edgeMetrics)
{
    public RequestHandler Handler { get; } = handler;

    /// <summary>The writer of the raw <c>/ws</c> envelope, which the WebSocket transport writes with.</summary>
    public ReplyWriter Replies { get; } = replies;

    public ProtocolOptions Options { get; } = options.Value;

    public TimeProvider Time { get; } = time;

    public ILogger Logger { get; } = logger;

    public IGrainFactory Grains { get; } = grains;

    public FrontendIdentity Frontend { get; } = frontend;

    /// <summary>The grain observer mailboxes push to; a session's registration names it.</summary>
    public FrontendObserver Observer { get; } = observer;

    public DirectoryUpdates Directory { get; } = directory;

    public GatewayMetrics Metrics { get; } = metrics;

    public EdgeMetrics EdgeMetrics { get; } = edgeMetrics;

    /// <summary>How long a session stays valid in its mailbox without renewal: three renewal periods.</summary>
    public TimeSpan SessionValidity => Options.SessionRenewInterval * 3;
}

/// <summary>Identifies this frontend process in the online directory.</summary>
public sealed class FrontendIdentity
{
    public string Id { get; } = $"{Environment.ProcessId}-{Guid.NewGuid():N}";
}
