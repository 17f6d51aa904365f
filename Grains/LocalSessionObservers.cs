using System.Collections.Immutable;
using Grains.Interfaces;

namespace Grains;

/// <summary>
/// The push path of a frontend that runs in the silo's own process (the embedded default). A mailbox whose
/// session belongs to that frontend calls its observer object directly, as a method, instead of through the
/// observer reference, which would cost a request and a response message through Orleans for every push
/// (two serialized copies of the batch, a callback and two thread-pool hops). Everything else stays the same:
/// the mailbox still awaits the answer within its bound, one push at a time, in order, and the frontend's code
/// runs on the thread pool, outside the grain's turn, as an observer call's would: what it starts or awaits
/// never runs on the grain's scheduler or as a call from the grain. A session of another process, or every
/// session where no frontend registered (a silo of its own), goes through the reference.
/// </summary>
public sealed class LocalSessionObservers
{
    private Registered? _local;

    /// <summary>The frontend of this process: its id, as its sessions register with it, and its observer object.</summary>
    public void Register(string frontendId, ISessionObserver observer)
    {
        ArgumentException.ThrowIfNullOrEmpty(frontendId);
        ArgumentNullException.ThrowIfNull(observer);
        Volatile.Write(ref _local, new Registered(frontendId, new OnThePool(observer)));
    }

    /// <summary>Where a push to <paramref name="session"/> goes: this process's observer object, or the session's reference.</summary>
    public ISessionObserver For(SessionRegistration session) => For(session, out _);

    /// <summary>
    /// Where a push to <paramref name="session"/> goes; <paramref name="isLocal"/> is true for this process's object, whose
    /// answer comes within the timeout it is given (the session's own deadline), where a reference may never answer.
    /// </summary>
    public ISessionObserver For(SessionRegistration session, out bool isLocal)
    {
        ArgumentNullException.ThrowIfNull(session);
        var local = Volatile.Read(ref _local);
        isLocal = local is not null && string.Equals(local.FrontendId, session.FrontendId, StringComparison.Ordinal);
        return isLocal ? local!.Observer : session.Observer;
    }

    private sealed record Registered(string FrontendId, ISessionObserver Observer);

    /// <summary>The frontend's object, called from the thread pool rather than from the calling grain's turn.</summary>
    private sealed class OnThePool(ISessionObserver target) : ISessionObserver
    {
        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout) =>
            Task.Run(() => target.Deliver(sessionId, responses, timeout));

        public Task LoggedOut(string sessionId, string reason) => Task.Run(() => target.LoggedOut(sessionId, reason));
    }
}
