using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Tasks.Sources;

namespace WebSocketFrontend.SocketIo;

/// <summary>Why a Socket.IO connection ended.</summary>
public enum SocketIoCloseReason
{
    /// <summary>The client disconnected from <c>/</c> or closed its Engine.IO session.</summary>
    ClientDisconnect,

    /// <summary>The transport went away (socket closed, request aborted).</summary>
    TransportClosed,

    /// <summary>No pong (Engine.IO v4) or no ping (v3) came in time.</summary>
    PingTimeout,

    /// <summary>No Socket.IO CONNECT to <c>/</c> came within <c>SocketIo:ConnectTimeout</c>.</summary>
    ConnectTimeout,

    /// <summary>The client broke the protocol: a malformed packet, a second concurrent poll, a body over <c>maxPayload</c>.</summary>
    ProtocolError,

    /// <summary>The client did not take its packets: they went over <c>Protocol:OutboxBytes</c>.</summary>
    Overflow,

    /// <summary>The server closed it (<see cref="SocketIoConnection.Close"/>, or its handler returned).</summary>
    ServerDisconnect,

    /// <summary>The server is stopping.</summary>
    ServerShutdown,
}

/// <summary>
/// One Socket.IO client connected to the namespace <c>/</c>, over HTTP long-polling, WebSocket, or polling
/// upgraded to WebSocket. Packets are sent in the order they were given, whatever the transport does meanwhile.
/// </summary>
public sealed class SocketIoConnection : IValueTaskSource<SocketIoEvent?>
{
    private const int EventQueueCapacity = 16;
    private const int MaxAttachments = 64;
    private const int FirstChunkBytes = 4096;
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    private static readonly byte[] PingPacket = "2"u8.ToArray();
    private static readonly byte[] PongPacket = "3"u8.ToArray();
    private static readonly byte[] ProbeAnswer = "3probe"u8.ToArray();
    private static readonly byte[] NoopPacket = "6"u8.ToArray();
    private static readonly byte[] ClosePacket = "1"u8.ToArray();
    private static readonly byte[] DisconnectPacket = "41"u8.ToArray();
    private static readonly byte[] ImplicitConnectPacket = "40"u8.ToArray();

    private readonly SocketIoServer _server;
    private readonly object _gate = new();
    private readonly Queue<byte[]> _outbox = new();

    // The events the reader has not taken (made at the first that has to wait), the reader's wait, and the wait of a
    // sender that found the queue full: a few fields instead of a channel, as most connections idle. Guarded by _gate.
    private Queue<SocketIoEvent>? _events;
    private ManualResetValueTaskSourceCore<SocketIoEvent?> _reader = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration _readerCancellation;
    private CancellationToken _readerToken;
    private bool _readerWaiting;
    private TaskCompletionSource? _eventTaken;
    private readonly TaskCompletionSource<SocketIoCloseReason> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closing = new();
    private TaskCompletionSource _outboxChanged = NewSignal();
    private TaskCompletionSource _taken = NewSignal();
    private long _buffered;
    private bool _isClosed;
    private bool _webSocket;
    private bool _upgrading;
    private bool _flushPoll;
    private bool _pollPending;
    private bool _postPending;
    private bool _connected;
    private IDisposable? _admission;

    // One timer serves the heartbeat and the connect timeout: it is set, under _gate, for the earliest of the three
    // times below (times since the server started; TimeSpan.MaxValue when not set). Outside its own run it is only
    // ever brought forward, never put back: a time that moves later leaves it to fire with nothing due and be set
    // again, and a time that has come is left for the run already due, whatever the order of the two.
    private ITimer? _timer;
    private TimeSpan _timerDue = TimeSpan.MaxValue;
    private TimeSpan _connectDue = TimeSpan.MaxValue;
    private TimeSpan _pingDue = TimeSpan.MaxValue;
    private TimeSpan _deadlineDue = TimeSpan.MaxValue;
    private SocketIoPacket? _binaryHeader;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;
    private int _attachmentsLeft;

    internal SocketIoConnection(SocketIoServer server, string id, int engineVersion, bool webSocket, IPAddress? remoteAddress, IDisposable? admission)
    {
        _server = server;
        Id = id;
        EngineVersion = engineVersion;
        _webSocket = webSocket;
        RemoteAddress = remoteAddress;
        _admission = admission;
    }

    /// <summary>The Engine.IO session id.</summary>
    public string Id { get; }

    /// <summary>The client's address (after trusted proxies).</summary>
    public IPAddress? RemoteAddress { get; }

    /// <summary>The Engine.IO protocol version: 4 (Socket.IO v3/v4 clients) or 3 (Socket.IO v2 clients).</summary>
    public int EngineVersion { get; }

    /// <summary>The transport in use now: <c>polling</c> or <c>websocket</c>.</summary>
    public string Transport
    {
        get
        {
            lock (_gate)
            {
                return _webSocket ? "websocket" : "polling";
            }
        }
    }

    /// <summary>Bytes given to <see cref="TrySend"/> that the client has not been handed yet.</summary>
    public long BufferedBytes => Interlocked.Read(ref _buffered);

    /// <summary>Completes, with the reason, when the connection has closed.</summary>
    public Task<SocketIoCloseReason> Closed => _closed.Task;

    /// <summary>
    /// The next event the client emitted, in order; null once the connection has closed. Events wait, a few at
    /// most, until they are read: a client that sends faster than its events are read is slowed down.
    /// </summary>
    public ValueTask<SocketIoEvent?> ReceiveAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<SocketIoEvent?>(cancellationToken);
        }

        lock (_gate)
        {
            if (_events is { Count: > 0 } events)
            {
                var item = events.Dequeue();
                WakeSenderLocked();
                return new(item);
            }

            if (_isClosed)
            {
                return new((SocketIoEvent?)null);
            }

            if (_readerWaiting)
            {
                throw new InvalidOperationException("Events are read by one reader at a time.");
            }

            _readerWaiting = true;
            _readerToken = cancellationToken;
            _reader.Reset();

            // A token cancelled meanwhile runs the callback here, which takes the (reentrant) lock and ends the wait.
            _readerCancellation = cancellationToken.UnsafeRegister(static (s, token) => ((SocketIoConnection)s!).CancelRead(token), this);
            return new(this, _reader.Version);
        }
    }

    SocketIoEvent? IValueTaskSource<SocketIoEvent?>.GetResult(short token) => _reader.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<SocketIoEvent?>.GetStatus(short token) => _reader.GetStatus(token);

    void IValueTaskSource<SocketIoEvent?>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _reader.OnCompleted(continuation, state, token, flags);

    private void CancelRead(CancellationToken token)
    {
        lock (_gate)
        {
            // A registration of an earlier wait that ran as it was removed has another token, or a cancelled one.
            if (_readerWaiting && _readerToken == token)
            {
                _readerWaiting = false;
                _reader.SetException(new OperationCanceledException(token));
            }
        }
    }

    /// <summary>Ends the reader's wait with an event, or with null once closed; false when no reader waits.</summary>
    private bool TryHandToReaderLocked(SocketIoEvent? item)
    {
        if (!_readerWaiting)
        {
            return false;
        }

        _readerWaiting = false;
        _readerCancellation.Unregister();
        _readerToken = default;
        _reader.SetResult(item);
        return true;
    }

    private void WakeSenderLocked()
    {
        if (_eventTaken is { } taken)
        {
            _eventTaken = null;
            taken.TrySetResult();
        }
    }

    /// <summary>
    /// Queues a packet made by <see cref="SocketIoPackets"/> (<c>42[...]</c> or <c>43id[...]</c>). False when the
    /// connection has closed, or when the packet would take the unsent bytes over <c>Protocol:OutboxBytes</c>:
    /// then the connection closes with <see cref="SocketIoCloseReason.Overflow"/>.
    /// </summary>
    public bool TrySend(byte[] packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        if (!SocketIoPackets.IsEventOrAck(packet))
        {
            throw new ArgumentException("Not an event or acknowledgement packet of SocketIoPackets.", nameof(packet));
        }

        lock (_gate)
        {
            if (_isClosed)
            {
                return false;
            }

            if (_buffered + packet.Length > _server.MaxBufferedBytes)
            {
                Shut(SocketIoCloseReason.Overflow);
                return false;
            }

            EnqueueLocked(packet);
            return true;
        }
    }

    /// <summary>
    /// Waits until at most <paramref name="bytes"/> are unsent (<see cref="BufferedBytes"/>), or the connection has
    /// closed: a sender that waits here before <see cref="TrySend"/> holds what a slow client has not taken near that mark.
    /// </summary>
    public async ValueTask WaitForRoomAsync(long bytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task taken;
            lock (_gate)
            {
                if (_isClosed || _buffered <= bytes)
                {
                    return;
                }

                taken = _taken.Task;
            }

            await taken.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Disconnects the client from <c>/</c> (it gets the packets queued before, then a DISCONNECT) and closes.</summary>
    public void Close() => Shut(SocketIoCloseReason.ServerDisconnect);

    internal CancellationToken Closing => _closing.Token;

    internal bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _isClosed;
            }
        }
    }

    /// <summary>Queues the handshake and starts the timers; an Engine.IO v3 client is connected to <c>/</c> at once.</summary>
    internal void Open()
    {
        var options = _server.Options;
        var handshake = SocketIoPackets.Utf8(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"0{{\"sid\":\"{Id}\",\"upgrades\":[{(_webSocket ? string.Empty : "\"websocket\"")}],\"pingInterval\":{(long)options.PingInterval.TotalMilliseconds},\"pingTimeout\":{(long)options.PingTimeout.TotalMilliseconds},\"maxPayload\":{_server.MaxPayload}}}"));
        _timer = _server.Time.CreateTimer(static s => ((SocketIoConnection)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        lock (_gate)
        {
            var now = _server.Now;
            EnqueueLocked(handshake);
            if (EngineVersion == 3)
            {
                // Socket.IO v2 clients are connected to "/" without asking. They ping; the session ends when no
                // ping came within the interval and the timeout.
                EnqueueLocked(ImplicitConnectPacket);
                _connected = true;
                _deadlineDue = now + options.PingInterval + options.PingTimeout;
            }
            else
            {
                _pingDue = now + options.PingInterval;
                _connectDue = now + options.ConnectTimeout;
            }

            SetTimerLocked(now);
        }

        if (EngineVersion == 3)
        {
            _server.StartHandler(this);
        }
    }

    /// <summary>Ends the connection once: wakes every transport, ends the event stream, releases the admission slot.</summary>
    internal void Shut(SocketIoCloseReason reason)
    {
        lock (_gate)
        {
            if (_isClosed)
            {
                return;
            }

            _isClosed = true;
            if (reason is SocketIoCloseReason.ServerDisconnect or SocketIoCloseReason.ServerShutdown)
            {
                if (_connected)
                {
                    EnqueueLocked(DisconnectPacket);
                }

                EnqueueLocked(ClosePacket);
            }
            else if (reason is SocketIoCloseReason.ProtocolError or SocketIoCloseReason.ConnectTimeout)
            {
                EnqueueLocked(ClosePacket);
            }
            else
            {
                Signal();
            }
        }

        lock (_gate)
        {
            SignalTaken();

            // The reader takes the events queued before, then null; a sender waiting for room gives up.
            if (_events is not { Count: > 0 })
            {
                TryHandToReaderLocked(null);
            }

            WakeSenderLocked();
        }

        _timer?.Dispose();
        _server.Remove(this, reason);
        Interlocked.Exchange(ref _admission, null)?.Dispose();
        _closed.TrySetResult(reason);
        _closing.Cancel();
    }

    /// <summary>The timer's run: closes a connection whose ping deadline or connect timeout has passed, sends a due ping, and sets the timer for the next time.</summary>
    private void OnTimer()
    {
        SocketIoCloseReason? expired = null;
        lock (_gate)
        {
            if (_isClosed)
            {
                return;
            }

            var now = _server.Now;
            // A session that never connected to "/" is closed for that, whatever its heartbeat does meanwhile.
            if (_connectDue <= now)
            {
                expired = SocketIoCloseReason.ConnectTimeout;
            }
            else if (_deadlineDue <= now)
            {
                expired = SocketIoCloseReason.PingTimeout;
            }
            else
            {
                if (_pingDue <= now)
                {
                    EnqueueLocked(PingPacket);
                    _pingDue = TimeSpan.MaxValue;
                    _deadlineDue = now + _server.Options.PingTimeout;
                }

                SetTimerLocked(now);
            }
        }

        if (expired is { } reason)
        {
            Shut(reason);
        }
    }

    /// <summary>
    /// Sets the timer of an open connection (Shut disposes of it once closed, outside the lock) for the earliest time
    /// due; with <paramref name="earlierOnly"/>, only if that is before the time it is set for. Never for now or
    /// before: a timer due at once could run its callback on this thread.
    /// </summary>
    private void SetTimerLocked(TimeSpan now, bool earlierOnly = false)
    {
        var next = TimeSpan.FromTicks(Math.Min(_deadlineDue.Ticks, Math.Min(_connectDue.Ticks, _pingDue.Ticks)));
        if (earlierOnly && next >= _timerDue)
        {
            return;
        }

        _timerDue = next;
        _timer!.Change(next == TimeSpan.MaxValue ? Timeout.InfiniteTimeSpan : next > now ? next - now : TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
    }

    private void EnqueueLocked(byte[] packet)
    {
        _outbox.Enqueue(packet);
        _buffered += packet.Length;
        Signal();
    }

    private void SignalTaken()
    {
        _taken.TrySetResult();
        _taken = NewSignal();
    }

    private void Signal()
    {
        _outboxChanged.TrySetResult();
        _outboxChanged = NewSignal();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // ---- HTTP long-polling ----

    /// <summary>A GET: waits for packets and hands over all that are queued as one payload.</summary>
    internal async Task ServePollAsync(HttpContext context)
    {
        if (!TryBegin(ref _pollPending))
        {
            await SocketIoServer.WriteErrorAsync(context, SocketIoError.BadRequest);
            return;
        }

        List<byte[]>? packets = null;
        try
        {
            while (true)
            {
                Task changed;
                lock (_gate)
                {
                    if (_webSocket)
                    {
                        // Upgraded meanwhile: what is queued goes over the WebSocket.
                        packets = [NoopPacket];
                        break;
                    }

                    if (_outbox.Count > 0 || _flushPoll || _isClosed)
                    {
                        packets = new List<byte[]>(_outbox.Count + 1);
                        while (_outbox.TryDequeue(out var packet))
                        {
                            _buffered -= packet.Length;
                            if (ReferenceEquals(packet, ClosePacket) && packets.Count > 0)
                            {
                                // Socket.IO clients act on a close at once and on the packets before it in the
                                // same payload a moment later, when a closed client drops them: those packets end
                                // the payload, and the next poll of the closed session gets the 400 that closes it.
                                continue;
                            }

                            packets.Add(packet);
                        }

                        SignalTaken();

                        if (packets.Count == 0)
                        {
                            packets.Add(_isClosed ? ClosePacket : NoopPacket);
                        }

                        _flushPoll = false;
                        break;
                    }

                    changed = _outboxChanged.Task;
                }

                try
                {
                    await changed.WaitAsync(context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _pollPending = false;
            }
        }

        SocketIoServer.PrepareTextResponse(context);
        var payload = EncodePayload(packets);
        context.Response.ContentLength = payload.Length;
        try
        {
            await context.Response.Body.WriteAsync(payload, context.RequestAborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // The client went away with its packets; its heartbeat ends the session.
        }
    }

    /// <summary>A POST: reads a payload of packets (at most <c>maxPayload</c> bytes) and handles them in order.</summary>
    internal async Task ServePostAsync(HttpContext context)
    {
        if (!TryBegin(ref _postPending))
        {
            await SocketIoServer.WriteErrorAsync(context, SocketIoError.BadRequest);
            return;
        }

        try
        {
            var body = await ReadBodyAsync(context.Request, _server.MaxPayload, context.RequestAborted);
            if (body is null)
            {
                Shut(SocketIoCloseReason.ProtocolError);
                SocketIoServer.PrepareTextResponse(context);
                context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
                return;
            }

            var binaryPayload = context.Request.ContentType?.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase) == true;
            var packets = binaryPayload ? DecodeBinaryPayloadV3(body) : DecodePayload(body);
            if (packets is null)
            {
                Shut(SocketIoCloseReason.ProtocolError);
                await SocketIoServer.WriteErrorAsync(context, SocketIoError.BadRequest);
                return;
            }

            foreach (var (packet, binary) in packets)
            {
                if (!await HandlePacketAsync(packet, binary, context.RequestAborted))
                {
                    break;
                }
            }

            SocketIoServer.PrepareTextResponse(context);
            context.Response.ContentType = "text/html";
            await context.Response.WriteAsync("ok", context.RequestAborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // The client went away mid-request.
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            // Kestrel gave up on the body (too slow): the client's fault, answered with its status.
            context.Response.StatusCode = ex.StatusCode;
        }
        finally
        {
            lock (_gate)
            {
                _postPending = false;
            }
        }
    }

    /// <summary>
    /// Marks a poll (or a post) as in progress; false on a session that is closed or on WebSocket, and on a
    /// second one at once, which closes the session: the client is broken or someone else holds its id.
    /// </summary>
    private bool TryBegin(ref bool pending)
    {
        lock (_gate)
        {
            if (_webSocket || _isClosed)
            {
                return false;
            }

            if (pending)
            {
                Shut(SocketIoCloseReason.ProtocolError);
                return false;
            }

            pending = true;
            return true;
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 1024, limit) + 1);
        while (true)
        {
            var memory = buffer.GetMemory(1024);
            var read = await request.Body.ReadAsync(memory, cancellationToken);
            if (read == 0)
            {
                return buffer.WrittenSpan.ToArray();
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
            {
                return null;
            }
        }
    }

    /// <summary>v4: packets joined by the record separator; v3: each prefixed with its length in UTF-16 code units and a colon.</summary>
    private byte[] EncodePayload(List<byte[]> packets)
    {
        var buffer = new ArrayBufferWriter<byte>();
        for (var i = 0; i < packets.Count; i++)
        {
            var packet = packets[i];
            if (EngineVersion == 3)
            {
                var length = Encoding.UTF8.GetCharCount(packet);
                Encoding.UTF8.GetBytes(length.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":", buffer);
            }
            else if (i > 0)
            {
                buffer.Write<byte>([0x1e]);
            }

            buffer.Write(packet);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Splits a text payload into packets; null when its framing is broken.</summary>
    private List<(ReadOnlyMemory<byte> Packet, bool Binary)>? DecodePayload(byte[] body)
    {
        var packets = new List<(ReadOnlyMemory<byte>, bool)>();
        if (EngineVersion == 4)
        {
            var start = 0;
            for (var i = 0; i <= body.Length; i++)
            {
                if (i == body.Length || body[i] == 0x1e)
                {
                    if (!TryAddTextPacket(packets, body.AsMemory(start, i - start)))
                    {
                        return null;
                    }

                    start = i + 1;
                }
            }

            return packets;
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(body);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        var position = 0;
        while (position < text.Length)
        {
            var colon = text.IndexOf(':', position);
            if (colon <= position || colon - position > 9 || !int.TryParse(text.AsSpan(position, colon - position), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length)
                || length > text.Length - colon - 1)
            {
                return null;
            }

            if (!TryAddTextPacket(packets, Encoding.UTF8.GetBytes(text.Substring(colon + 1, length))))
            {
                return null;
            }

            position = colon + 1 + length;
        }

        return packets.Count > 0 ? packets : null;
    }

    /// <summary>Adds one text packet, decoding <c>b</c> (base64 binary: v4 <c>b&lt;data&gt;</c>, v3 <c>b4&lt;data&gt;</c>).</summary>
    private bool TryAddTextPacket(List<(ReadOnlyMemory<byte>, bool)> packets, ReadOnlyMemory<byte> packet)
    {
        if (packet.IsEmpty)
        {
            return false;
        }

        if (packet.Span[0] != (byte)'b')
        {
            packets.Add((packet, false));
            return true;
        }

        var data = packet[1..];
        if (EngineVersion == 3)
        {
            if (data.IsEmpty || data.Span[0] != (byte)'4')
            {
                return false;
            }

            data = data[1..];
        }

        var decoded = new byte[System.Buffers.Text.Base64.GetMaxDecodedFromUtf8Length(data.Length)];
        if (System.Buffers.Text.Base64.DecodeFromUtf8(data.Span, decoded, out _, out var written) != OperationStatus.Done)
        {
            return false;
        }

        packets.Add((decoded.AsMemory(0, written), true));
        return true;
    }

    /// <summary>
    /// An Engine.IO v3 binary payload: for each packet a 0 (text) or 1 (binary) byte, its length as one byte per
    /// decimal digit, 255, then the packet (a binary packet starts with its type byte).
    /// </summary>
    private List<(ReadOnlyMemory<byte> Packet, bool Binary)>? DecodeBinaryPayloadV3(byte[] body)
    {
        if (EngineVersion != 3)
        {
            return null;
        }

        var packets = new List<(ReadOnlyMemory<byte>, bool)>();
        var i = 0;
        while (i < body.Length)
        {
            var binary = body[i] switch { 0 => false, 1 => true, _ => (bool?)null };
            if (binary is null)
            {
                return null;
            }

            i++;
            var length = 0;
            var digits = 0;
            while (i < body.Length && body[i] != 255)
            {
                if (body[i] > 9 || ++digits > 9)
                {
                    return null;
                }

                length = (length * 10) + body[i];
                i++;
            }

            if (i >= body.Length || digits == 0 || length > body.Length - i - 1 || length == 0)
            {
                return null;
            }

            var packet = body.AsMemory(i + 1, length);
            i += 1 + length;
            if (binary.Value)
            {
                if (packet.Span[0] != 4)
                {
                    return null;
                }

                packets.Add((packet[1..], true));
            }
            else if (!TryAddTextPacket(packets, packet))
            {
                return null;
            }
        }

        return packets.Count > 0 ? packets : null;
    }

    // ---- WebSocket ----

    /// <summary>Whether a WebSocket may take this polling session over; only one may try at a time.</summary>
    internal bool TryBeginUpgrade()
    {
        lock (_gate)
        {
            if (_isClosed || _webSocket || _upgrading)
            {
                return false;
            }

            _upgrading = true;
            return true;
        }
    }

    /// <summary>
    /// Serves a WebSocket: a new session's, or one probing to take a polling session over (then it answers the
    /// probe, flushes the pending poll, and carries the session from the client's upgrade packet on).
    /// </summary>
    internal async Task RunWebSocketAsync(WebSocket socket, bool upgrade, CancellationToken requestAborted)
    {
        // Once the connection has closed, the client has a while to answer the close; then the socket is aborted.
        var grace = new CloseGraceTimer(socket);
        using var onClose = _closing.Token.Register(static s => ((CloseGraceTimer)s!).Start(), grace);
        var writer = upgrade ? null : WriteLoopAsync(socket, requestAborted);
        try
        {
            while (true)
            {
                // An idle socket holds no buffer: one is rented once a message has come, and returned once it is handled.
                var (buffer, length, type) = await ReceiveMessageAsync(socket, requestAborted);
                try
                {
                    if (type == WebSocketMessageType.Close)
                    {
                        if (writer is not null)
                        {
                            Shut(SocketIoCloseReason.TransportClosed);
                        }

                        break;
                    }

                    if (length < 0)
                    {
                        // Over maxPayload.
                        if (writer is null)
                        {
                            await CloseSocketAsync(socket, WebSocketCloseStatus.MessageTooBig);
                        }
                        else
                        {
                            _closeStatus = WebSocketCloseStatus.MessageTooBig;
                            Shut(SocketIoCloseReason.ProtocolError);
                        }

                        break;
                    }

                    var message = buffer.AsMemory(0, length);
                    if (writer is null)
                    {
                        // Probing: only "2probe" and the upgrade itself are expected.
                        if (type == WebSocketMessageType.Text && message.Span.SequenceEqual("2probe"u8))
                        {
                            await socket.SendAsync(ProbeAnswer, WebSocketMessageType.Text, true, requestAborted);
                            lock (_gate)
                            {
                                _flushPoll = true;
                                Signal();
                            }

                            continue;
                        }

                        if (type == WebSocketMessageType.Text && message.Span.SequenceEqual("5"u8))
                        {
                            lock (_gate)
                            {
                                if (_isClosed)
                                {
                                    break;
                                }

                                _webSocket = true;
                                _upgrading = false;
                                _flushPoll = false;
                                Signal();
                            }

                            writer = WriteLoopAsync(socket, requestAborted);
                            continue;
                        }

                        await CloseSocketAsync(socket, WebSocketCloseStatus.ProtocolError);
                        break;
                    }

                    var binary = type == WebSocketMessageType.Binary;
                    if (binary && EngineVersion == 3)
                    {
                        // v3 binary frames carry the packet type first.
                        if (message.IsEmpty || message.Span[0] != 4)
                        {
                            Shut(SocketIoCloseReason.ProtocolError);
                            break;
                        }

                        message = message[1..];
                    }

                    // What is kept of the packet (an event's argument, a binary event's header) is copied out of the buffer.
                    if (!await HandlePacketAsync(message, binary, requestAborted))
                    {
                        break;
                    }
                }
                finally
                {
                    if (buffer is not null)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            if (writer is not null)
            {
                // The socket that carried the session has ended, and the session with it (a no-op if it had closed).
                Shut(SocketIoCloseReason.TransportClosed);
            }

            lock (_gate)
            {
                if (!_webSocket)
                {
                    _upgrading = false;
                }
            }

            if (writer is not null)
            {
                await writer;
            }

            // The server closed first: the client reads what was sent, then answers the close (for a while at most).
            await DrainUntilClosedAsync(socket, requestAborted);
            grace.Dispose();
            if (socket.State is not WebSocketState.Closed)
            {
                socket.Abort();
            }
        }
    }

    private static async Task DrainUntilClosedAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        if (socket.State != WebSocketState.CloseSent)
        {
            return;
        }

        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(CloseGrace);
        var buffer = ArrayPool<byte>.Shared.Rent(FirstChunkBytes);
        try
        {
            while (socket.State == WebSocketState.CloseSent)
            {
                if ((await socket.ReceiveAsync(buffer.AsMemory(), bound.Token)).MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Waits for the next message with no buffer, then reads it whole into a rented one, which the caller returns (null
    /// for a close that came between messages); length -1 when it is over <c>maxPayload</c>.
    /// </summary>
    private async Task<(byte[]? Buffer, int Length, WebSocketMessageType Type)> ReceiveMessageAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var first = await socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
        if (first.MessageType == WebSocketMessageType.Close)
        {
            return (null, 0, WebSocketMessageType.Close);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(FirstChunkBytes, _server.MaxPayload + 1));
        if (first.EndOfMessage)
        {
            // An empty message, whole in the frame the empty read took.
            return (buffer, 0, first.MessageType);
        }

        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length > _server.MaxPayload)
                    {
                        return (buffer, -1, WebSocketMessageType.Text);
                    }

                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _server.MaxPayload + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return (buffer, 0, WebSocketMessageType.Close);
                }

                length += result.Count;
                if (length > _server.MaxPayload)
                {
                    return (buffer, -1, result.MessageType);
                }

                if (result.EndOfMessage)
                {
                    return (buffer, length, result.MessageType);
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>Sends the queued packets in order until the connection closes, then closes the socket.</summary>
    private async Task WriteLoopAsync(WebSocket socket, CancellationToken requestAborted)
    {
        try
        {
            while (true)
            {
                Task changed;
                byte[]? packet;
                lock (_gate)
                {
                    if (_outbox.TryDequeue(out packet))
                    {
                        _buffered -= packet.Length;
                        SignalTaken();
                    }
                    else if (_isClosed)
                    {
                        break;
                    }

                    changed = _outboxChanged.Task;
                }

                if (packet is not null)
                {
                    await socket.SendAsync(packet, WebSocketMessageType.Text, true, requestAborted);
                    continue;
                }

                // No cancellation here: a socket that ends, aborted requests included, ends its read loop, which
                // closes the connection, and that wakes this wait.
                await changed;
            }

            await CloseSocketAsync(socket, _closeStatus);
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
        {
            Shut(SocketIoCloseReason.TransportClosed);
        }
    }

    private static async Task CloseSocketAsync(WebSocket socket, WebSocketCloseStatus status)
    {
        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var bound = new CancellationTokenSource(CloseGrace);
            try
            {
                await socket.CloseOutputAsync(status, null, bound.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or ObjectDisposedException)
            {
                socket.Abort();
            }
        }
    }

    // ---- Packets ----

    /// <summary>Handles one Engine.IO packet; false when the connection has closed (a malformed packet closes it).</summary>
    private async ValueTask<bool> HandlePacketAsync(ReadOnlyMemory<byte> packet, bool binary, CancellationToken cancellationToken)
    {
        if (IsClosed)
        {
            return false;
        }

        if (binary)
        {
            return await OnAttachmentAsync(cancellationToken);
        }

        if (packet.IsEmpty)
        {
            return Fail();
        }

        switch (packet.Span[0])
        {
            case (byte)'1':
                Shut(SocketIoCloseReason.ClientDisconnect);
                return false;
            case (byte)'2' when EngineVersion == 3:
                lock (_gate)
                {
                    if (!_isClosed)
                    {
                        EnqueueLocked(packet.Length == 1 ? PongPacket : [(byte)'3', .. packet.Span[1..]]);
                        var now = _server.Now;
                        _deadlineDue = now + _server.Options.PingInterval + _server.Options.PingTimeout;
                        SetTimerLocked(now, earlierOnly: true);
                    }
                }

                return true;
            case (byte)'3' when EngineVersion == 4:
                lock (_gate)
                {
                    if (!_isClosed)
                    {
                        var now = _server.Now;
                        _deadlineDue = TimeSpan.MaxValue;
                        _pingDue = now + _server.Options.PingInterval;
                        SetTimerLocked(now, earlierOnly: true);
                    }
                }

                return true;
            case (byte)'4':
                return await OnMessageAsync(packet[1..], cancellationToken);
            case (byte)'6':
                return true;
            default:
                return Fail();
        }
    }

    private bool Fail()
    {
        Shut(SocketIoCloseReason.ProtocolError);
        return false;
    }

    private async ValueTask<bool> OnMessageAsync(ReadOnlyMemory<byte> text, CancellationToken cancellationToken)
    {
        if (_binaryHeader is not null || !SocketIoPacket.TryParse(text, out var packet))
        {
            return Fail();
        }

        var root = packet.Namespace == "/";
        switch (packet.Type)
        {
            case SocketIoPacket.Connect:
                if (!packet.HasObjectOrNoData())
                {
                    return Fail();
                }

                if (!root)
                {
                    var refusal = EngineVersion == 3
                        ? $"44{packet.Namespace},\"Invalid namespace\""
                        : $"44{packet.Namespace},{{\"message\":\"Invalid namespace\"}}";
                    Enqueue(SocketIoPackets.Utf8(refusal));
                    return true;
                }

                if (EngineVersion == 4 && !_connected)
                {
                    _connected = true;
                    lock (_gate)
                    {
                        // Later: the timer, if set for it, fires with nothing due and is set again.
                        _connectDue = TimeSpan.MaxValue;
                    }

                    Enqueue(SocketIoPackets.Utf8($"40{{\"sid\":\"{SocketIoServer.NewId()}\"}}"));
                    _server.StartHandler(this);
                }

                return true;
            case SocketIoPacket.Disconnect:
                if (root)
                {
                    Shut(SocketIoCloseReason.ClientDisconnect);
                    return false;
                }

                return true;
            case SocketIoPacket.Event or SocketIoPacket.Ack or SocketIoPacket.BinaryEvent or SocketIoPacket.BinaryAck:
                var named = packet.Type is SocketIoPacket.Event or SocketIoPacket.BinaryEvent;
                if (!root || !_connected || !packet.TryReadArguments(named, out _, out _, out _) || packet.Attachments > MaxAttachments
                    || (!named && packet.Id is null))
                {
                    return Fail();
                }

                if (packet.Type is SocketIoPacket.BinaryEvent or SocketIoPacket.BinaryAck && packet.Attachments > 0)
                {
                    _binaryHeader = packet with { Data = packet.Data.ToArray() };
                    _attachmentsLeft = packet.Attachments;
                    return true;
                }

                return await DeliverAsync(packet, cancellationToken);
            default:
                return Fail();
        }
    }

    private async ValueTask<bool> OnAttachmentAsync(CancellationToken cancellationToken)
    {
        if (_binaryHeader is not { } header)
        {
            return Fail();
        }

        if (--_attachmentsLeft > 0)
        {
            return true;
        }

        _binaryHeader = null;
        return await DeliverAsync(header, cancellationToken);
    }

    /// <summary>Hands an event to the reader; a client's acknowledgement is dropped, as the server never asks for one, unless it is binary.</summary>
    private async ValueTask<bool> DeliverAsync(SocketIoPacket packet, CancellationToken cancellationToken)
    {
        var binary = packet.Type is SocketIoPacket.BinaryEvent or SocketIoPacket.BinaryAck;
        if (packet.Type == SocketIoPacket.Ack)
        {
            return true;
        }

        var named = packet.Type is SocketIoPacket.Event or SocketIoPacket.BinaryEvent;
        packet.TryReadArguments(named, out var name, out var first, out var count);
        var item = new SocketIoEvent(name, first.ToArray(), count, named ? packet.Id : null, binary);
        while (true)
        {
            Task room;
            lock (_gate)
            {
                if (_isClosed)
                {
                    return false;
                }

                if (TryHandToReaderLocked(item))
                {
                    return true;
                }

                _events ??= new Queue<SocketIoEvent>();
                if (_events.Count < EventQueueCapacity)
                {
                    _events.Enqueue(item);
                    return true;
                }

                room = (_eventTaken ??= NewSignal()).Task;
            }

            await room.WaitAsync(cancellationToken);
        }
    }

    private void Enqueue(byte[] packet)
    {
        lock (_gate)
        {
            if (!_isClosed)
            {
                EnqueueLocked(packet);
            }
        }
    }

    /// <summary>
    /// Aborts a socket <see cref="CloseGrace"/> after <see cref="Start"/>, unless disposed of first: it is made at
    /// the close only, so that an open connection holds no timer for it.
    /// </summary>
    private sealed class CloseGraceTimer(WebSocket socket) : IDisposable
    {
        private static readonly ITimer Disposed = TimeProvider.System.CreateTimer(static _ => { }, null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        private ITimer? _timer;

        public void Start()
        {
            var timer = TimeProvider.System.CreateTimer(static s => ((WebSocket)s!).Abort(), socket, CloseGrace, Timeout.InfiniteTimeSpan);
            if (Interlocked.CompareExchange(ref _timer, timer, null) is not null)
            {
                // Disposed of already (or started twice).
                timer.Dispose();
            }
        }

        public void Dispose()
        {
            var timer = Interlocked.Exchange(ref _timer, Disposed);
            if (!ReferenceEquals(timer, Disposed))
            {
                timer?.Dispose();
            }
        }
    }
}
