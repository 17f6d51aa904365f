using System.Collections.Immutable;
using Grains;
using Grains.Interfaces;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// This frontend's end of the push path: one grain observer for all its sessions, addressed by
/// session id. Mailbox grains call it to write responses and to log sessions out; each session
/// writes them in its own transport's format. Mailboxes of a silo in this process call it directly, from the
/// thread pool (<see cref="LocalSessionObservers"/>), without Orleans messages.
/// </summary>
public sealed class FrontendObserver : ISessionObserver
{
    private readonly SessionRegistry _registry;
    private readonly Lazy<ISessionObserver> _reference;

    public FrontendObserver(IGrainFactory grains, SessionRegistry registry, FrontendIdentity frontend, LocalSessionObservers local)
    {
        _registry = registry;
        local.Register(frontend.Id, this);

        // Created on first use: the co-hosted silo or the cluster client must be running by then.
        _reference = new Lazy<ISessionObserver>(() => grains.CreateObjectReference<ISessionObserver>(this));
    }

    /// <summary>The reference mailboxes call; this object must stay alive as long as it is handed out.</summary>
    public ISessionObserver Reference => _reference.Value;

    public async Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout) =>
        _registry.TryGet(sessionId, out var session) && await session!.DeliverResponsesAsync(responses, timeout);

    public Task LoggedOut(string sessionId, string reason)
    {
        if (_registry.TryGet(sessionId, out var session))
        {
            session!.LoggedOutByMailbox(reason);
        }

        return Task.CompletedTask;
    }
}
