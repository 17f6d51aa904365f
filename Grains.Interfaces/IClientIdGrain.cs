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
    /// <param name="session">The session, as its login attached it.</param>
    /// <param name="validFor">How long it stays live without another renewal.</param>
    /// <param name="deliveredUpTo">
    /// The highest sequence number the session's frontend has given its socket since the login (its queue,
    /// then the pushes its send loop took; 0 for none): a new activation, which lost that memory with the
    /// old one, resumes behind it instead of pushing again what the session already has.
    /// </param>
    [Alias("Renew")]
    Task<bool> Renew(SessionRegistration session, TimeSpan validFor, long deliveredUpTo);

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

    /// <summary>
    /// A client's send (<c>send</c> over the protocol): as <see cref="Send"/>, except that with
    /// <paramref name="contactsOnly"/> a sender that is not one of this client's contacts is told
    /// <see cref="SendStatus.NotFound"/>, exactly as if the id did not exist.
    /// </summary>
    [Alias("SendFromClient")]
    Task<SendResult> SendFromClient(int from, string payload, bool contactsOnly);

    /// <summary>Lets <paramref name="other"/> send to this client (one direction; links are made both ways by the caller).</summary>
    [Alias("AddContact")]
    Task<ContactChange> AddContact(int other);

    /// <summary>Stops <paramref name="other"/> from sending to this client; not found only when this id is unused.</summary>
    [Alias("RemoveContact")]
    Task<ContactChange> RemoveContact(int other);

    /// <summary>The ids that may send to this client, ascending; null when the id is unused.</summary>
    [Alias("Contacts"), ReadOnly]
    Task<ImmutableArray<int>?> Contacts();

    /// <summary>
    /// Points the id at <paramref name="to"/> in one write, provided it points at <paramref name="from"/>
    /// (true also when it already points at <paramref name="to"/>, for a retry). A live session other
    /// than <paramref name="keepSessionId"/> is told <c>revoked</c>: its token is dead.
    /// </summary>
    [Alias("MoveDigest")]
    Task<bool> MoveDigest(string from, string to, string? keepSessionId);

    /// <summary>Logs the live session out with reason <c>kicked</c>; false when no session is live.</summary>
    [Alias("Kick")]
    Task<bool> Kick();

    /// <summary>
    /// Up to <paramref name="limit"/> queued responses with a sequence number above <paramref name="after"/>,
    /// oldest first, without removing any; null when the id is unused.
    /// </summary>
    [Alias("PeekQueue"), ReadOnly]
    Task<ImmutableArray<PendingResponse>?> PeekQueue(long after, int limit);

    /// <summary>Removes every queued response; returns how many went, or null when the id is unused.</summary>
    [Alias("Purge")]
    Task<int?> Purge();

    /// <summary>What the expiry sweep needs to know about the id.</summary>
    [Alias("Registration"), ReadOnly]
    Task<RegistrationInfo> Registration();

    /// <summary>
    /// Deletes the mailbox as <see cref="Delete"/> does, provided it still belongs to
    /// <paramref name="digest"/>, was registered at or before <paramref name="registeredBefore"/>,
    /// and has never had a login; false otherwise.
    /// </summary>
    [Alias("ExpireUnused")]
    Task<bool> ExpireUnused(string digest, DateTimeOffset registeredBefore);
}

/// <summary>The outcome of a change to a client's contacts.</summary>
public enum ContactChange
{
    /// <summary>Done (or already so).</summary>
    Done,

    /// <summary>No client has the id.</summary>
    NotFound,

    /// <summary>The client has as many contacts as it may.</summary>
    TooMany,
}

/// <summary>An id's registration as the expiry sweep reads it.</summary>
/// <param name="Digest">The digest the id points at; null when unused.</param>
/// <param name="RegisteredAt">When the id was assigned; null for ids assigned before this was recorded.</param>
/// <param name="AwaitingFirstLogin">True until the client's first login (false for ids assigned before this was recorded).</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.RegistrationInfo")]
public sealed record RegistrationInfo(
    [property: Id(0)] string? Digest,
    [property: Id(1)] DateTimeOffset? RegisteredAt,
    [property: Id(2)] bool AwaitingFirstLogin);
