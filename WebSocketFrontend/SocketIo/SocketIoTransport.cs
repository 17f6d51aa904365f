using System.Net;
using WebSocketFrontend.Hosting;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace WebSocketFrontend.SocketIo;

/// <summary>
/// The Socket.IO transport of a <see cref="ClientSession"/>: a request is the event <c>client.to.instance</c> with one
/// argument, the request body; its reply goes through the acknowledgement when the client asked for one, and is the
/// reply event otherwise (<see cref="SocketIoFrameFormat"/>).
/// </summary>
/// <remarks>
/// Engine.IO's heartbeats stand for the keep-alive of <c>/ws</c>, so this transport keeps no idle timer. Frames are
/// handed to the connection, which holds them until the client takes them (a poll or the WebSocket); a client that
/// lets them pile up over <see cref="ProtocolOptions.OutboxBytes"/> is closed, as a slow <c>/ws</c> reader is.
/// </remarks>
public sealed class SocketIoTransport : IClientTransport
{
    /// <summary>The only event a client emits.</summary>
    public const string RequestEvent = "client.to.instance";

    private readonly SocketIoConnection _connection;
    private readonly long _highWaterBytes;

    /// <param name="connection">The Socket.IO connection, connected to <c>/</c>.</param>
    /// <param name="replies">The writer of <see cref="SocketIoFrameFormat"/> frames, shared by every Socket.IO session.</param>
    /// <param name="highWaterBytes">
    /// How much the connection may hold that the client has not taken before a send waits for it to take some
    /// (<see cref="ProtocolOptions.MaxMessageBytes"/>, about what a socket's send buffer holds).
    /// </param>
    public SocketIoTransport(SocketIoConnection connection, ReplyWriter replies, long highWaterBytes)
    {
        _connection = connection;
        Replies = replies;
        _highWaterBytes = highWaterBytes;
    }

    public ReplyWriter Replies { get; }

    public IPAddress? RemoteAddress => _connection.RemoteAddress;

    public void Bind(ClientSession session)
    {
        // Every close this transport sees is the connection's own; the session learns of it from ReceiveAsync.
    }

    public async ValueTask<InboundMessage> ReceiveAsync(CancellationToken cancellationToken)
    {
        var received = await _connection.ReceiveAsync(cancellationToken);
        if (received is not { } item)
        {
            return InboundMessage.Closed;
        }

        object? context = item.AckId is { } ackId ? ackId : null;
        if (item.IsBinary)
        {
            return InboundMessage.Refuse(Error($"Binary events are not accepted; emit {RequestEvent} with the request body as a JSON object."), context);
        }

        if (item.Name != RequestEvent)
        {
            return InboundMessage.FromError(Error($"The event must be {RequestEvent}."), context);
        }

        if (item.ArgumentCount != 1)
        {
            return InboundMessage.FromError(Error($"{RequestEvent} takes one argument, the request body {{\"action\", \"parameters\"}}."), context);
        }

        if (!RequestParser.TryParseDocument(item.Argument, out var document, out var error))
        {
            return InboundMessage.FromError(error!, context);
        }

        return RequestParser.TryParseBody(document!, document!.RootElement, UnicodeText.AllStringsValid(item.Argument.Span), out var request, out error)
            ? InboundMessage.FromRequest(request!, context)
            : InboundMessage.FromError(error!, context);
    }

    /// <remarks>
    /// Returns once the connection holds the frame, after waiting while it holds more than the high-water mark: a
    /// client that does not poll (or read its WebSocket) then leaves its frames in the session's outbox, whose
    /// bound closes it as a slow <c>/ws</c> reader is closed, and whose pushes its mailbox keeps. The connection's
    /// own bound (<see cref="ProtocolOptions.OutboxBytes"/>) stays behind that as a last guard.
    /// </remarks>
    public ValueTask SendAsync(byte[] frame, CancellationToken cancellationToken)
    {
        if (_connection.BufferedBytes > _highWaterBytes)
        {
            return SendWhenRoomAsync(frame, cancellationToken);
        }

        Send(frame);
        return default;
    }

    private async ValueTask SendWhenRoomAsync(byte[] frame, CancellationToken cancellationToken)
    {
        await _connection.WaitForRoomAsync(_highWaterBytes, cancellationToken);
        Send(frame);
    }

    private void Send(byte[] frame)
    {
        if (_connection.TrySend(frame))
        {
            return;
        }

        if (_connection.Closed is { IsCompletedSuccessfully: true, Result: SocketIoCloseReason.Overflow })
        {
            // The client did not take what it was sent: the slow-reader close of /ws, counted alike.
            GatewayMetrics.PolicyCloses.WithLabels("outbox_bytes").Inc();
        }

        throw new ConnectionLostException("The Socket.IO connection has closed.");
    }

    public ValueTask CloseAsync(CloseReason reason, string description, CancellationToken cancellationToken)
    {
        // Socket.IO has no close status: the client gets the packets sent before, then a DISCONNECT and the Engine.IO close.
        _connection.Close();
        return default;
    }

    public async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _connection.Closed.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The session's close deadline aborted the connection.
        }
    }

    public void Abort() => _connection.Shut(SocketIoCloseReason.TransportClosed);

    public void Dispose()
    {
        // The connection belongs to the Socket.IO server, which disposes of it once closed.
    }

    private static RequestError Error(string message) => new(ErrorCodes.BadRequest, message, null, null);
}
