using System.Collections.Immutable;

namespace Grains.Interfaces;

/// <summary>A response addressed to a client, with its per-client sequence number.</summary>
/// <param name="Seq">Increases with every response to the client; gaps are possible, repeats are not.</param>
/// <param name="From">The sending client's id; null when a back end sent it.</param>
/// <param name="At">When the gateway accepted it.</param>
/// <param name="Payload">The payload as raw JSON text.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.PendingResponse")]
public sealed record PendingResponse(
    [property: Id(0)] long Seq,
    [property: Id(1)] int? From,
    [property: Id(2)] DateTimeOffset At,
    [property: Id(3)] string Payload);

/// <summary>How a response was taken in.</summary>
public enum SendStatus
{
    /// <summary>Written to the recipient's open socket.</summary>
    Online,

    /// <summary>Stored in the recipient's queue, for its next login (or a later push).</summary>
    Queued,

    /// <summary>No client has that id.</summary>
    NotFound,

    /// <summary>The recipient's queue is at its bound; nothing was stored.</summary>
    QueueFull,
}

/// <summary>The outcome of a send.</summary>
/// <param name="Status">Delivered, queued, or why neither.</param>
/// <param name="Seq">The response's sequence number; 0 when it was refused.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.SendResult")]
public readonly record struct SendResult([property: Id(0)] SendStatus Status, [property: Id(1)] long Seq);

/// <summary>One logged-in socket as its client's mailbox knows it.</summary>
/// <param name="SessionId">The WebSocket id.</param>
/// <param name="FrontendId">The frontend that owns the socket.</param>
/// <param name="Observer">Where pushes for the session go (one observer per frontend).</param>
/// <param name="AckMode">True when responses stay queued until the client acknowledges them.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.SessionRegistration")]
public sealed record SessionRegistration(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string FrontendId,
    [property: Id(2)] ISessionObserver Observer,
    [property: Id(3)] bool AckMode);

/// <summary>What the mailbox can tell about a client without its token.</summary>
/// <param name="Registered">False when no client has the id.</param>
/// <param name="Online">True while a live session is attached.</param>
/// <param name="QueueLength">Responses waiting in the queue.</param>
/// <param name="QueueBytes">Their payload bytes.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.MailboxStatus")]
public sealed record MailboxStatus(
    [property: Id(0)] bool Registered,
    [property: Id(1)] bool Online,
    [property: Id(2)] int QueueLength,
    [property: Id(3)] long QueueBytes);

/// <summary>A frontend's end of the push path: one object per frontend, addressed per session.</summary>
[Alias("Grains.Interfaces.ISessionObserver")]
public interface ISessionObserver : IGrainObserver
{
    /// <summary>
    /// Writes responses to the session's socket, in order, answering within <paramref name="timeout"/>:
    /// true once the socket has begun writing them, false when none of them will ever be written
    /// (frames still waiting at the deadline are withdrawn). Never both: a response reported as not
    /// written is stored by the mailbox and delivered later, so it must not reach the socket now.
    /// </summary>
    [Alias("Deliver")]
    Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout);

    /// <summary>Tells the session it is logged out (<c>takeover</c> or <c>deleted</c>).</summary>
    [Alias("LoggedOut")]
    Task LoggedOut(string sessionId, string reason);
}
