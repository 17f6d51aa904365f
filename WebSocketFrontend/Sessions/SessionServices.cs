using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>What every socket shares: created once, handed to each <see cref="WebSocketSession"/>.</summary>
public sealed class SessionServices(
    RequestHandler handler,
    ReplyWriter replies,
    IOptions<ProtocolOptions> options,
    TimeProvider time,
    ILogger<WebSocketSession> logger)
{
    public RequestHandler Handler { get; } = handler;

    public ReplyWriter Replies { get; } = replies;

    public ProtocolOptions Options { get; } = options.Value;

    public TimeProvider Time { get; } = time;

    public ILogger Logger { get; } = logger;
}

/// <summary>Identifies this frontend process in the online directory.</summary>
public sealed class FrontendIdentity
{
    public string Id { get; } = $"{Environment.ProcessId}-{Guid.NewGuid():N}";
}
