using System.Collections.Immutable;
using Orleans.Concurrency;

namespace Grains.Interfaces;

/// <summary>
/// A client by id (the grain key): the index to the digest that keys its <see cref="IClientGrain"/>,
/// its durable queue of pending responses, and its live session. Back-end services in the cluster
/// send responses through <see cref="Send"/>.
/// </summary>
[Alias("Grains.Interfaces.IClientIdGrain")]
public interface IClientIdGrain : IGrainWithIntegerKey
{
    /// <summary>Points this id at a digest; an id already pointing elsewhere is refused.</summary>
    /// <exception cref="InvalidOperationException">The id already belongs to another digest.</exception>
    [Alias("Assign")]
    Task Assign(string digest);

    /// <summary>The digest this id points at, or <see langword="null"/> when the id is unused.</summary>
    [Alias("GetDigest"), ReadOnly]
    Task<string?> GetDigest();

    /// <summary>Forgets the id, provided it still points at <paramref name="digest"/>.</summary>
    [Alias("Release")]
    Task Release(string digest);

    /// <summary>
    /// Delivers a response to the live session, or stores it in the queue. Either way it is safe
    /// when this returns: written to the socket, or durably stored.
    /// </summary>
    /// <param name="from">The sending client's id, or null for a back end.</param>
    /// <param name="payload">The payload as raw JSON text.</param>
    [Alias("Send")]
    Task<SendResult> Send(int? from, string payload);

    /// <summary>
    /// Makes <paramref name="session"/> the client's live session (an earlier one is told
    /// <c>takeover</c>) and returns every queued response, oldest first.
    /// </summary>
    [Alias("Attach")]
    Task<ImmutableArray<PendingResponse>> Attach(SessionRegistration session, TimeSpan validFor);

    /// <summary>
    /// Keeps a session alive for <paramref name="validFor"/>; re-attaches it after the grain lost it
    /// and pushes what waited meanwhile. False when another session has taken over.
    /// </summary>
    [Alias("Renew")]
    Task<bool> Renew(SessionRegistration session, TimeSpan validFor);

    /// <summary>Removes responses up to <paramref name="upTo"/> once the session has them; false when it is not the live session.</summary>
    [Alias("Acknowledge")]
    Task<bool> Acknowledge(string sessionId, long upTo);

    /// <summary>Ends the session if it is still the live one.</summary>
    [Alias("Detach")]
    Task Detach(string sessionId);

    /// <summary>Registered, online, queue length.</summary>
    [Alias("Status"), ReadOnly]
    Task<MailboxStatus> Status();

    /// <summary>Deletes the queue and the index entry, and logs the live session out; only for the owning digest.</summary>
    [Alias("Delete")]
    Task Delete(string digest);
}
