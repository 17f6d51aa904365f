using System.Net;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// What carries one connection's frames: raw <c>/ws</c>, or another protocol. A transport only moves frames; the
/// <see cref="ClientSession"/> it is served by owns everything else (the login, pushes, budgets, timeouts).
/// </summary>
/// <remarks>
/// The session calls <see cref="ReceiveAsync"/> from one loop, one message at a time, and <see cref="SendAsync"/> and
/// <see cref="CloseAsync"/> from another, its only writer. <see cref="Abort"/> may come from any thread, at any time.
/// A transport reports a dead peer by returning <see cref="InboundKind.Closed"/> or by throwing
/// <see cref="ConnectionLostException"/> (or <see cref="OperationCanceledException"/> once aborted).
/// </remarks>
public interface IClientTransport : IDisposable
{
    /// <summary>Writes this transport's frames: every reply and push of the session goes through it.</summary>
    ReplyWriter Replies { get; }

    /// <summary>The client's address (after trusted proxies), which per-address budgets are charged to.</summary>
    IPAddress? RemoteAddress { get; }

    /// <summary>Called once, before anything else, with the session the transport serves (for closes it decides itself).</summary>
    void Bind(ClientSession session);

    /// <summary>The next message from the peer. A message holding a buffer is disposed by the session once answered.</summary>
    ValueTask<InboundMessage> ReceiveAsync(CancellationToken cancellationToken);

    /// <summary>Writes one frame made by <see cref="Replies"/>.</summary>
    ValueTask SendAsync(byte[] frame, CancellationToken cancellationToken);

    /// <summary>Writes the close the session decided on, behind every frame sent before.</summary>
    ValueTask CloseAsync(CloseReason reason, string description, CancellationToken cancellationToken);

    /// <summary>After the session has ended: waits, bounded by the session's close deadline, for the peer to finish closing.</summary>
    ValueTask FinishAsync(CancellationToken cancellationToken);

    /// <summary>Drops the connection at once.</summary>
    void Abort();
}

/// <summary>Why the server closes a connection; each transport says it its own way (on <c>/ws</c>, a close status).</summary>
public enum CloseReason
{
    /// <summary>Nothing wrong: the session ended (1000).</summary>
    Normal,

    /// <summary>The server goes away or the connection was idle too long (1001).</summary>
    GoingAway,

    /// <summary>One of the per-connection limits (1008).</summary>
    PolicyViolation,

    /// <summary>A message over <see cref="ProtocolOptions.MaxMessageBytes"/> (1009).</summary>
    TooBig,
}

/// <summary>What <see cref="IClientTransport.ReceiveAsync"/> got.</summary>
public enum InboundKind
{
    /// <summary>The peer closed; nothing more comes.</summary>
    Closed,

    /// <summary>A whole <c>/ws</c> envelope <c>{"event", "body"}</c>, to be parsed.</summary>
    Envelope,

    /// <summary>A request the transport has parsed from its own framing (see <see cref="RequestParser.TryParseBody"/>), or why it is none.</summary>
    Parsed,

    /// <summary>A message the transport refuses as it stands (a binary frame, say): answered with its error, without costing a request.</summary>
    Refused,

    /// <summary>A message over <see cref="ProtocolOptions.MaxMessageBytes"/>: answered <c>too_large</c>, then the connection closes.</summary>
    TooLarge,
}

/// <summary>One message from the peer, with the transport context its reply is routed by.</summary>
public readonly struct InboundMessage : IDisposable
{
    private readonly byte[]? _pooled;

    private InboundMessage(InboundKind kind, ReadOnlyMemory<byte> envelope, byte[]? pooled, ClientRequest? request, RequestError? error, object? context)
    {
        Kind = kind;
        Envelope = envelope;
        _pooled = pooled;
        Request = request;
        Error = error;
        Context = context;
    }

    public InboundKind Kind { get; }

    /// <summary>The frame of an <see cref="InboundKind.Envelope"/>.</summary>
    public ReadOnlyMemory<byte> Envelope { get; }

    /// <summary>The request of a <see cref="InboundKind.Parsed"/> message that is one; the session disposes it.</summary>
    public ClientRequest? Request { get; }

    /// <summary>Why a <see cref="InboundKind.Parsed"/> or <see cref="InboundKind.Refused"/> message is no request.</summary>
    public RequestError? Error { get; }

    /// <summary>The transport context of the message (an acknowledgement id, say): its replies are written with it.</summary>
    public object? Context { get; }

    public static InboundMessage Closed => default;

    public static InboundMessage TooLarge(object? context = null) => new(InboundKind.TooLarge, default, null, null, null, context);

    /// <summary>A <c>/ws</c> envelope in <paramref name="buffer"/>, which goes back to the shared array pool once the message is answered.</summary>
    public static InboundMessage FromEnvelope(byte[] buffer, int length) =>
        new(InboundKind.Envelope, buffer.AsMemory(0, length), buffer, null, null, null);

    public static InboundMessage FromRequest(ClientRequest request, object? context) =>
        new(InboundKind.Parsed, default, null, request, null, context);

    public static InboundMessage FromError(RequestError error, object? context) =>
        new(InboundKind.Parsed, default, null, null, error, context);

    public static InboundMessage Refuse(RequestError error, object? context) =>
        new(InboundKind.Refused, default, null, null, error, context);

    public void Dispose()
    {
        if (_pooled is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(_pooled);
        }
    }
}

/// <summary>The connection under a transport broke (reset, aborted, closed without a handshake).</summary>
public sealed class ConnectionLostException(string message, Exception? inner = null) : Exception(message, inner);
