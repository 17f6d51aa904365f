using System.Collections.Immutable;
using Grains.Interfaces;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// This frontend's end of the push path: one grain observer for all its sessions, addressed by
/// session id. Mailbox grains call it to write responses and to log sessions out; each session
/// writes them in its own transport's format.
/// </summary>
public sealed class FrontendObserver : ISessionObserver
{
    private readonly SessionRegistry _registry;
    private readonly GatewayMetrics _metrics;
    private readonly Lazy<ISessionObserver> _reference;

    public FrontendObserver(IGrainFactory grains, SessionRegistry registry, GatewayMetrics metrics)
    {
        _registry = registry;
        _metrics = metrics;

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

        var replies = session!.Replies;
        var frames = new byte[responses.Length][];
        for (var i = 0; i < frames.Length; i++)
        {
            frames[i] = replies.Write("response", null, responses[i], ResponseJson.Write);
        }

        var delivered = await session.DeliverAsync(frames, timeout);
        if (delivered)
        {
            _metrics.CountPushed(frames.Length);
        }

        return delivered;
    }

    public Task LoggedOut(string sessionId, string reason)
    {
        if (_registry.TryGet(sessionId, out var session))
        {
            session!.LoggedOutByMailbox(reason);
        }

        return Task.CompletedTask;
    }
}
