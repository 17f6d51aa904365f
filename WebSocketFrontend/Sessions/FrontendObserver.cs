using System.Collections.Immutable;
using Grains.Interfaces;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// This frontend's end of the push path: one grain observer for all its sockets, addressed by
/// WebSocket id. Mailbox grains call it to write responses and to log sessions out.
/// </summary>
public sealed partial class FrontendObserver : ISessionObserver
{
    private readonly SessionRegistry _registry;
    private readonly DirectoryUpdates _directory;
    private readonly ReplyWriter _replies;
    private readonly ILogger<FrontendObserver> _logger;
    private readonly Lazy<ISessionObserver> _reference;

    public FrontendObserver(
        IGrainFactory grains, SessionRegistry registry, DirectoryUpdates directory, ReplyWriter replies, ILogger<FrontendObserver> logger)
    {
        _registry = registry;
        _directory = directory;
        _replies = replies;
        _logger = logger;

        // Created on first use: the co-hosted silo or the cluster client must be running by then.
        _reference = new Lazy<ISessionObserver>(() => grains.CreateObjectReference<ISessionObserver>(this));
    }

    /// <summary>The reference mailboxes call; this object must stay alive as long as it is handed out.</summary>
    public ISessionObserver Reference => _reference.Value;

    public async Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout)
    {
        if (!_registry.TryGet(sessionId, out var session))
        {
            return false;
        }

        var frames = responses.Select(r => _replies.Write("response", null, r, ResponseJson.Write)).ToArray();
        var delivered = await session!.DeliverAsync(frames, timeout);
        if (delivered)
        {
            GatewayMetrics.Pushed.Inc(frames.Length);
        }

        return delivered;
    }

    public Task LoggedOut(string sessionId, string reason)
    {
        if (_registry.TryGet(sessionId, out var session) && session!.Login is { } login && session.ClearLogin(login))
        {
            LogLoggedOut(_logger, sessionId, reason);
            _ = RemoveFromDirectoryAsync(sessionId);
            session.TryPush(_replies.Write("loggedOut", null, reason, static (w, r) => w.WriteString("reason"u8, r)));
            if (reason == "takeover")
            {
                session.RequestClose(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "logged in elsewhere");
            }
        }

        return Task.CompletedTask;
    }

    private async Task RemoveFromDirectoryAsync(string sessionId)
    {
        try
        {
            await _directory.RemoveAsync(sessionId);
        }
        catch (Exception ex)
        {
            // The frontend's next lease renewal does not bring it back, and a closed socket's entry goes with the lease.
            LogDirectoryRemoveFailed(_logger, ex, sessionId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove session {SessionId} from the online directory")]
    private static partial void LogDirectoryRemoveFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Session {SessionId} logged out by its mailbox: {Reason}")]
    private static partial void LogLoggedOut(ILogger logger, string sessionId, string reason);
}
