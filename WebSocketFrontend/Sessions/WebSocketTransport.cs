using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// The raw <c>/ws</c> transport: one text frame per message, in the <c>{"event", "body"}</c> envelope. It assembles
/// frames up to the size cap under a deadline, closes an idle socket, counts the peer's ping and pong frames against
/// the request budget, and says closes with WebSocket close statuses.
/// </summary>
public sealed class WebSocketTransport : IClientTransport
{
    private const int FirstChunkBytes = 4096;

    private readonly WebSocket _socket;
    private readonly SessionServices _services;
    private readonly ProtocolOptions _options;
    private readonly ControlFrameMonitor? _controlFrames;
    private ClientSession? _session;
    private ITimer? _idleTimer;

    // Armed while a started message waits for more of itself; made on first need, as most messages arrive whole.
    private ITimer? _frameDeadline;
    private bool _frameDeadlineArmed;

    // Set when the WebSocket failed the connection itself on what the peer sent; it has sent its close frame then.
    private bool _failedByWebSocket;

    /// <param name="socket">The accepted WebSocket.</param>
    /// <param name="services">What every session shares.</param>
    /// <param name="controlFrames">Sees the peer's ping and pong frames, which the WebSocket answers without telling; they count against the request budget.</param>
    /// <param name="remoteAddress">The client's address (after trusted proxies).</param>
    public WebSocketTransport(WebSocket socket, SessionServices services, ControlFrameMonitor? controlFrames = null, IPAddress? remoteAddress = null)
    {
        _socket = socket;
        _services = services;
        _options = services.Options;
        _controlFrames = controlFrames;
        RemoteAddress = remoteAddress;
    }

    public ReplyWriter Replies => _services.Replies;

    public IPAddress? RemoteAddress { get; }

    private ClientSession Session => _session!;

    public void Bind(ClientSession session)
    {
        _session = session;
        _idleTimer = _services.Time.CreateTimer(
            static s => ((WebSocketTransport)s!).Session.RequestClose(CloseReason.GoingAway, "idle timeout"),
            this, _options.KeepAliveTimeout, Timeout.InfiniteTimeSpan);
        if (_controlFrames is not null)
        {
            _controlFrames.ControlFrameReceived = session.ChargeTransportMessage;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<InboundMessage> ReceiveAsync(CancellationToken cancellationToken)
    {
        try
        {
            // Waiting on an empty buffer holds no memory while the socket is idle.
            var first = await _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
            if (first.MessageType == WebSocketMessageType.Close)
            {
                return InboundMessage.Closed;
            }

            var message = await ReceiveMessageAsync(first, cancellationToken);
            if (message.Kind != InboundKind.Closed)
            {
                _idleTimer!.Change(_options.KeepAliveTimeout, Timeout.InfiniteTimeSpan);
            }

            return message;
        }
        catch (Exception ex) when (ex is WebSocketException or ConnectionAbortedException)
        {
            _failedByWebSocket = ex is WebSocketException && _socket.State == WebSocketState.Aborted;
            throw new ConnectionLostException(ex.Message, ex);
        }
    }

    public ValueTask SendAsync(byte[] frame, CancellationToken cancellationToken)
    {
        var sending = _socket.SendAsync(frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        if (sending.IsCompletedSuccessfully)
        {
            sending.GetAwaiter().GetResult();
            return default;
        }

        return AwaitSendAsync(sending);
    }

    public async ValueTask CloseAsync(CloseReason reason, string description, CancellationToken cancellationToken)
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(StatusOf(reason), description, cancellationToken);
            }
        }
        catch (WebSocketException ex)
        {
            throw new ConnectionLostException(ex.Message, ex);
        }
    }

    /// <summary>After our close frame, waits (bounded by the session's close deadline, which aborts) for the peer's.</summary>
    public async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        if (_failedByWebSocket && _controlFrames is not null)
        {
            // The WebSocket sent its own close frame and will read no more: the peer's answer is read under it.
            await _controlFrames.AwaitPeerCloseAsync(cancellationToken);
            return;
        }

        if (_socket.State != WebSocketState.CloseSent)
        {
            return;
        }

        var discard = ArrayPool<byte>.Shared.Rent(FirstChunkBytes);
        try
        {
            while (_socket.State == WebSocketState.CloseSent)
            {
                var result = await _socket.ReceiveAsync(discard.AsMemory(), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ConnectionAbortedException)
        {
            // The deadline aborted the socket or the peer dropped it: either way it is closed.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(discard);
        }
    }

    public void Abort() => _socket.Abort();

    public void Dispose()
    {
        _idleTimer?.Dispose();
        _frameDeadline?.Dispose();
    }

    private static WebSocketCloseStatus StatusOf(CloseReason reason) => reason switch
    {
        CloseReason.GoingAway => WebSocketCloseStatus.EndpointUnavailable,
        CloseReason.PolicyViolation => WebSocketCloseStatus.PolicyViolation,
        CloseReason.TooBig => WebSocketCloseStatus.MessageTooBig,
        _ => WebSocketCloseStatus.NormalClosure,
    };

    private static async ValueTask AwaitSendAsync(ValueTask sending)
    {
        try
        {
            await sending;
        }
        catch (WebSocketException ex)
        {
            throw new ConnectionLostException(ex.Message, ex);
        }
    }

    /// <summary>Reads one whole message; closed when the peer closed, too large when it was over the cap.</summary>
    private async ValueTask<InboundMessage> ReceiveMessageAsync(ValueWebSocketReceiveResult first, CancellationToken cancellationToken)
    {
        var max = _options.MaxMessageBytes;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(FirstChunkBytes, max + 1));
        if (first.EndOfMessage)
        {
            // A zero-length message ended in the frame the empty read already took; it still gets its reply.
            return Whole(buffer, 0, first.MessageType);
        }

        var count = 0;
        try
        {
            while (true)
            {
                if (count == buffer.Length)
                {
                    if (count > max)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return InboundMessage.TooLarge();
                    }

                    var grown = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, max + 1));
                    buffer.AsSpan(0, count).CopyTo(grown);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = grown;
                }

                var receiving = _socket.ReceiveAsync(buffer.AsMemory(count), cancellationToken);
                if (!receiving.IsCompleted)
                {
                    // The message has started and the rest is not here: from now on it has a deadline.
                    ArmFrameDeadline();
                }

                var result = await receiving;
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return InboundMessage.Closed;
                }

                count += result.Count;
                if (count > max)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return InboundMessage.TooLarge();
                }

                if (result.EndOfMessage)
                {
                    return Whole(buffer, count, result.MessageType);
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        finally
        {
            DisarmFrameDeadline();
        }
    }

    private static InboundMessage Whole(byte[] buffer, int length, WebSocketMessageType type)
    {
        if (type == WebSocketMessageType.Text)
        {
            return InboundMessage.FromEnvelope(buffer, length);
        }

        ArrayPool<byte>.Shared.Return(buffer);
        return InboundMessage.Refuse(
            new RequestError(ErrorCodes.BadRequest, "Binary frames are not accepted; send the envelope as text.", null, null), null);
    }

    private void ArmFrameDeadline()
    {
        if (_frameDeadlineArmed)
        {
            return;
        }

        _frameDeadline ??= _services.Time.CreateTimer(
            static s => ((WebSocketTransport)s!).Session.ClosePolicyViolation("frame_timeout", "message not finished in time"),
            this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _frameDeadline.Change(_options.FrameTimeout, Timeout.InfiniteTimeSpan);
        _frameDeadlineArmed = true;
    }

    private void DisarmFrameDeadline()
    {
        if (_frameDeadlineArmed)
        {
            _frameDeadline!.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _frameDeadlineArmed = false;
        }
    }
}
