using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;

namespace ClientManagement.Client;

/// <summary>
/// A connection to the client-management gateway over WebSocket. Requests may be pipelined: each carries a
/// request id and is matched with its reply. Responses addressed to the logged-in client (its queue at login,
/// then live pushes) come out of <see cref="ReadResponsesAsync"/> in order. A lost connection is made again
/// after a jittered back-off and the last login repeated, and responses already handed out are not handed
/// out again. Thread-safe; <see cref="ReadResponsesAsync"/> has one reader at a time.
/// </summary>
public sealed class GatewayClient : IAsyncDisposable
{
    private const string RequestEvent = "client.to.instance";

    private static readonly JsonSerializerOptions SerializerOptions = new(JsonSerializerDefaults.Web);

    private readonly GatewayClientOptions _options;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly Channel<Push> _pushes = Channel.CreateUnbounded<Push>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly Lock _gate = new();

    private TaskCompletionSource<Connection> _ready = NewReady();
    private Connection? _connection;
    private GatewayConnectionState _state = GatewayConnectionState.Disconnected;
    private long _nextRequestId;
    private bool _connectStarted;
    private bool _disposed;

    // The login to repeat after a reconnection; written by the receive loop when a 'logged' reply arrives.
    private LoginRequest? _login;

    // The highest seq handed out for _lastClientId; the receive loop alone touches these.
    private int? _lastClientId;
    private long _lastSeq;

    /// <summary>Makes a client; nothing connects before <see cref="ConnectAsync"/>.</summary>
    public GatewayClient(GatewayClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = options.TimeProvider;
    }

    /// <summary>Makes a client of <paramref name="uri"/> with the default settings.</summary>
    public GatewayClient(Uri uri)
        : this(new GatewayClientOptions { Uri = uri })
    {
    }

    /// <summary>Raised on every change of <see cref="State"/>, on the thread that made it; keep handlers short.</summary>
    public event EventHandler<ConnectionStateChangedEventArgs>? StateChanged;

    /// <summary>Where the connection stands.</summary>
    public GatewayConnectionState State => _state;

    /// <summary>The id of the client this connection last logged in as, or null.</summary>
    public int? ClientId => _login?.ClientId;

    /// <summary>Opens the WebSocket. Call once, before any request.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connectStarted)
            {
                throw new InvalidOperationException("ConnectAsync was called already.");
            }

            _connectStarted = true;
        }

        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            Publish(connection);
        }
        catch
        {
            lock (_gate)
            {
                _connectStarted = false;
            }

            throw;
        }
    }

    /// <summary>Registers a new client with <paramref name="information"/> (any JSON-serializable object, <c>name</c> and <c>location</c> strings when present).</summary>
    public async Task<Registration> RegisterAsync(object information, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(information);
        var body = await RequestAsync("register", w => WriteValue(w, "information", information), null, cancellationToken).ConfigureAwait(false);
        var parameters = Parameters(body);
        return new Registration(parameters.GetProperty("id").GetInt32(), parameters.GetProperty("token").GetString()!);
    }

    /// <summary>
    /// Logs this connection in as the client of <paramref name="token"/>. Its queued responses, then live ones,
    /// come out of <see cref="ReadResponsesAsync"/>. With <paramref name="ack"/>, the gateway keeps each response
    /// until <see cref="AckAsync"/> covers it. After a reconnection the client logs in again with the same arguments.
    /// </summary>
    public async Task<LoginResult> LoginAsync(string token, bool ack = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        var body = await RequestAsync("login", LoginParameters(token, ack), OnLogged(token, ack), cancellationToken).ConfigureAwait(false);
        var parameters = Parameters(body);
        var information = parameters.TryGetProperty("information", out var value) ? value : default;
        return new LoginResult(parameters.GetProperty("id").GetInt32(), information);
    }

    /// <summary>Replaces the stored information of the client of <paramref name="token"/>; needs no login.</summary>
    public async Task UpdateAsync(string token, object information, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        ArgumentNullException.ThrowIfNull(information);
        _ = await RequestAsync("update", w =>
        {
            w.WriteString("token", token);
            WriteValue(w, "information", information);
        }, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends <paramref name="payload"/> (any JSON-serializable object) to client <paramref name="to"/> as the client of <paramref name="token"/>.</summary>
    public async Task<SendResult> SendAsync(string token, int to, object payload, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        ArgumentNullException.ThrowIfNull(payload);
        var body = await RequestAsync("send", w =>
        {
            w.WriteString("token", token);
            w.WriteNumber("to", to);
            WriteValue(w, "payload", payload);
        }, null, cancellationToken).ConfigureAwait(false);
        var parameters = Parameters(body);
        var delivered = parameters.GetProperty("delivered").GetString() == "online" ? DeliveryStatus.Online : DeliveryStatus.Queued;
        return new SendResult(parameters.GetProperty("seq").GetInt64(), delivered);
    }

    /// <summary>Acknowledges every response up to <paramref name="upTo"/> (a seq); needs a login with <c>ack</c>.</summary>
    public async Task AckAsync(long upTo, CancellationToken cancellationToken = default) =>
        _ = await RequestAsync("ack", w => w.WriteNumber("upTo", upTo), null, cancellationToken).ConfigureAwait(false);

    /// <summary>Ends this connection's login; the connection stays open, and a reconnection no longer logs in.</summary>
    public async Task LogoutAsync(CancellationToken cancellationToken = default)
    {
        _ = await RequestAsync("logout", null, static (client, _) => client._login = null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes the client of <paramref name="token"/>, its queue and its sessions; returns its id.</summary>
    public async Task<int> DeleteAsync(string token, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        var body = await RequestAsync("delete", w => w.WriteString("token", token), null, cancellationToken).ConfigureAwait(false);
        return Parameters(body).GetProperty("id").GetInt32();
    }

    /// <summary>
    /// Replaces the token of the client of <paramref name="token"/> with a new one, returned; the old one stops working at once.
    /// A login with the old token stays, and later reconnections use the new one.
    /// </summary>
    public async Task<string> RotateAsync(string token, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(token);
        var body = await RequestAsync("rotate", w => w.WriteString("token", token), (client, reply) =>
        {
            if (client._login is { } login && login.Token == token)
            {
                client._login = login with { Token = Parameters(reply).GetProperty("token").GetString()! };
            }
        }, cancellationToken).ConfigureAwait(false);
        return Parameters(body).GetProperty("token").GetString()!;
    }

    /// <summary>One page of online client ids above <paramref name="after"/>, at most <paramref name="limit"/>; needs a login and a gateway that allows it.</summary>
    public async Task<OnlinePage> OnlineAsync(int? after = null, int? limit = null, CancellationToken cancellationToken = default)
    {
        var body = await RequestAsync("online", w =>
        {
            if (after is { } a)
            {
                w.WriteNumber("after", a);
            }

            if (limit is { } l)
            {
                w.WriteNumber("limit", l);
            }
        }, null, cancellationToken).ConfigureAwait(false);
        var parameters = Parameters(body);
        var clients = parameters.GetProperty("clients").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int? next = parameters.TryGetProperty("next", out var n) && n.ValueKind == JsonValueKind.Number ? n.GetInt32() : null;
        return new OnlinePage(clients, next);
    }

    /// <summary>An application-level keep-alive round trip.</summary>
    public async Task PingAsync(CancellationToken cancellationToken = default) =>
        _ = await RequestAsync("ping", null, null, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// The responses addressed to the logged-in client, in seq order: the queue of each login first, then live pushes.
    /// A response is handed out once, even when a reconnection's login delivers it again. When the gateway ends the
    /// login (<c>loggedOut</c>), the enumeration throws <see cref="LoggedOutException"/> at that point; when a
    /// reconnection's login fails, it throws that error. A later call goes on after it. Ends when the client is disposed.
    /// </summary>
    public async IAsyncEnumerable<PendingResponse> ReadResponsesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _pushes.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_pushes.Reader.TryRead(out var push))
            {
                if (push.Error is { } error)
                {
                    throw error;
                }

                yield return push.Response!;
            }
        }
    }

    /// <summary>Closes the connection, fails the requests in flight and ends <see cref="ReadResponsesAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        Connection? connection;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            connection = _connection;
            _connection = null;
        }

        _ready.TrySetException(new ObjectDisposedException(nameof(GatewayClient)));
        if (connection is not null)
        {
            // The close handshake first: cancelling the receive loop would abort the socket without one.
            await connection.CloseAsync(_options.CloseTimeout, _time).ConfigureAwait(false);
            connection.Fail(new ObjectDisposedException(nameof(GatewayClient)));
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);

        _pushes.Writer.TryComplete();
        SetState(GatewayConnectionState.Disconnected, 0, TimeSpan.Zero, null);
        _lifetime.Dispose();
    }

    private static TaskCompletionSource<Connection> NewReady() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static JsonElement Parameters(JsonElement body) =>
        body.TryGetProperty("parameters", out var parameters) ? parameters : default;

    private static void WriteValue(Utf8JsonWriter writer, string name, object value)
    {
        writer.WritePropertyName(name);
        JsonSerializer.Serialize(writer, value, value.GetType(), SerializerOptions);
    }

    private static Action<Utf8JsonWriter> LoginParameters(string token, bool ack) => w =>
    {
        w.WriteString("token", token);
        if (ack)
        {
            w.WriteBoolean("ack", true);
        }
    };

    /// <summary>Run by the receive loop on the <c>logged</c> reply, before any frame after it: the queue comes first.</summary>
    private static Action<GatewayClient, JsonElement> OnLogged(string token, bool ack) => (client, body) =>
    {
        var parameters = Parameters(body);
        var id = parameters.GetProperty("id").GetInt32();
        if (client._lastClientId != id)
        {
            // Another client's seqs start over; nothing of this one has been handed out yet.
            client._lastClientId = id;
            client._lastSeq = 0;
        }

        client._login = new LoginRequest(token, ack, id);
        if (parameters.TryGetProperty("queue", out var queue) && queue.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in queue.EnumerateArray())
            {
                client.Deliver(item);
            }
        }
    };

    private async Task<JsonElement> RequestAsync(
        string action, Action<Utf8JsonWriter>? parameters, Action<GatewayClient, JsonElement>? onReply, CancellationToken cancellationToken, Connection? on = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var timeout = new CancellationTokenSource(_options.RequestTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token, _lifetime.Token);
        try
        {
            var connection = on ?? await WaitReadyAsync(linked.Token).ConfigureAwait(false);
            var id = Interlocked.Increment(ref _nextRequestId);
            var pending = new PendingRequest(onReply);
            if (!connection.Pending.TryAdd(id, pending))
            {
                throw new InvalidOperationException("Request ids must not repeat.");
            }

            try
            {
                if (connection.IsLost)
                {
                    throw new GatewayConnectionException("The connection was lost before the request was sent.");
                }

                await connection.SendAsync(Envelope(action, id, parameters), linked.Token).ConfigureAwait(false);
                return await pending.Reply.Task.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            finally
            {
                connection.Pending.TryRemove(id, out _);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested && !_lifetime.IsCancellationRequested)
        {
            throw new TimeoutException($"No reply to '{action}' within {_options.RequestTimeout}.");
        }
        catch (OperationCanceledException) when (_lifetime.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(GatewayClient));
        }
    }

    private async Task<Connection> WaitReadyAsync(CancellationToken cancellationToken)
    {
        if (!_connectStarted)
        {
            throw new InvalidOperationException("Call ConnectAsync first.");
        }

        return await _ready.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private byte[] Envelope(string action, long requestId, Action<Utf8JsonWriter>? parameters)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("event", RequestEvent);
            w.WriteStartObject("body");
            w.WriteString("action", action);
            w.WriteNumber("requestId", requestId);
            w.WriteStartObject("parameters");
            parameters?.Invoke(w);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private async Task<Connection> OpenAsync(CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        _options.ConfigureSocket?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(_options.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token, _lifetime.Token);
        try
        {
            await socket.ConnectAsync(_options.Uri!, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or HttpRequestException || (ex is OperationCanceledException && timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested))
        {
            socket.Dispose();
            throw new GatewayConnectionException($"Could not connect to {_options.Uri}: {ex.Message}", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var connection = new Connection(socket);
        connection.Receiving = Task.Run(() => ReceiveLoopAsync(connection), CancellationToken.None);
        return connection;
    }

    private void Publish(Connection connection)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                connection.Abort();
                return;
            }

            _connection = connection;
            _ready.TrySetResult(connection);
        }

        SetState(GatewayConnectionState.Connected, 0, TimeSpan.Zero, null);
    }

    private async Task ReceiveLoopAsync(Connection connection)
    {
        Exception? error = null;
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (!_lifetime.IsCancellationRequested)
            {
                var result = await connection.Socket.ReceiveAsync(buffer, _lifetime.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    error = new GatewayConnectionException($"The gateway closed the connection: {connection.Socket.CloseStatus} {connection.Socket.CloseStatusDescription}");
                    break;
                }

                if (message.Length + result.Count > _options.MaxMessageBytes)
                {
                    error = new GatewayConnectionException($"A message from the gateway was larger than {_options.MaxMessageBytes} bytes.");
                    break;
                }

                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }

                if (result.MessageType == WebSocketMessageType.Text)
                {
                    Dispatch(connection, message.GetBuffer().AsMemory(0, (int)message.Length));
                }

                message.SetLength(0);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            error = new GatewayConnectionException("The connection to the gateway was lost.", ex);
        }

        OnLost(connection, error ?? new GatewayConnectionException("The connection to the gateway was closed."));
    }

    /// <summary>Routes one server message: a reply to its request, a push to the reader; anything unreadable is skipped.</summary>
    private void Dispatch(Connection connection, ReadOnlyMemory<byte> frame)
    {
        JsonElement body;
        try
        {
            using var document = JsonDocument.Parse(frame);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("event", out var name) || name.ValueKind != JsonValueKind.String || name.GetString() != _options.ReplyEvent
                || !root.TryGetProperty("body", out var b) || b.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            body = b.Clone();
        }
        catch (JsonException)
        {
            return;
        }

        var action = body.TryGetProperty("action", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
        if (body.TryGetProperty("requestId", out var idElement) && idElement.ValueKind == JsonValueKind.Number
            && idElement.TryGetInt64(out var id) && connection.Pending.TryRemove(id, out var pending))
        {
            if (action == "error")
            {
                pending.Reply.TrySetException(GatewayException.FromError(Parameters(body)));
                return;
            }

            try
            {
                pending.OnReply?.Invoke(this, body);
                pending.Reply.TrySetResult(body);
            }
            catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException)
            {
                pending.Reply.TrySetException(new GatewayConnectionException($"The gateway's '{action}' reply is not what the protocol says.", ex));
            }

            return;
        }

        switch (action)
        {
            case "response":
                Deliver(Parameters(body));
                break;
            case "loggedOut":
                var reason = Parameters(body).TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : "";
                _login = null;
                _pushes.Writer.TryWrite(new Push(null, new LoggedOutException(reason)));
                break;
            default:
                // An error without a request id answers a frame this client did not send; a ping reply, nothing to do.
                break;
        }
    }

    /// <summary>Hands a response to the reader unless one with its seq or a later one was handed out already.</summary>
    private void Deliver(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("seq", out var s) || s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out var seq))
        {
            // Without a seq a response cannot be ordered or told apart from a copy; the protocol always sends one.
            return;
        }

        if (seq <= _lastSeq)
        {
            return;
        }

        _lastSeq = seq;
        int? from = item.TryGetProperty("from", out var f) && f.ValueKind == JsonValueKind.Number && f.TryGetInt32(out var sender) ? sender : null;
        var at = item.TryGetProperty("at", out var t) && t.ValueKind == JsonValueKind.String && t.TryGetDateTimeOffset(out var when) ? when : default;
        var payload = item.TryGetProperty("payload", out var p) ? p.Clone() : default;
        _pushes.Writer.TryWrite(new Push(new PendingResponse(seq, from, at, payload), null));
    }

    private void OnLost(Connection connection, Exception error)
    {
        lock (_gate)
        {
            connection.IsLost = true;
            if (_disposed || !ReferenceEquals(_connection, connection))
            {
                connection.Fail(error);
                connection.Abort();
                return;
            }

            _connection = null;
            if (_ready.Task.IsCompleted)
            {
                _ready = NewReady();
            }
        }

        connection.Fail(new GatewayConnectionException("The connection was lost before the reply came; the gateway may or may not have carried the request out.", error));
        connection.Abort();
        if (!_options.Reconnect.Enabled)
        {
            GiveUp(error);
            return;
        }

        _ = Task.Run(() => ReconnectAsync(error), CancellationToken.None);
    }

    private async Task ReconnectAsync(Exception cause)
    {
        var policy = _options.Reconnect;
        var last = cause;
        for (var attempt = 0; policy.MaxAttempts is not { } max || attempt < max; attempt++)
        {
            var delay = policy.DelayFor(attempt, _options.Random.NextDouble());
            Task wait;
            try
            {
                // The back-off starts before it is announced, so an observer that moves a fake clock moves this wait.
                wait = Task.Delay(delay, _time, _lifetime.Token);
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            SetState(GatewayConnectionState.Reconnecting, attempt, delay, last);
            try
            {
                await wait.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Connection? connection = null;
            try
            {
                connection = await OpenAsync(_lifetime.Token).ConfigureAwait(false);
                if (_login is { } login)
                {
                    try
                    {
                        await RequestAsync("login", LoginParameters(login.Token, login.Ack), OnLogged(login.Token, login.Ack), CancellationToken.None, connection).ConfigureAwait(false);
                    }
                    catch (GatewayException ex) when (ex is InvalidTokenException or ForbiddenException or BadRequestException)
                    {
                        // The token is gone (revoked, rotated elsewhere, deleted): retrying cannot help; the reader hears why.
                        _login = null;
                        _pushes.Writer.TryWrite(new Push(null, ex));
                    }
                }

                Publish(connection);
                return;
            }
            catch (OperationCanceledException) when (_lifetime.IsCancellationRequested)
            {
                connection?.Abort();
                return;
            }
            catch (Exception ex) when (ex is GatewayException or GatewayConnectionException or TimeoutException or WebSocketException or ObjectDisposedException)
            {
                connection?.Abort();
                last = ex;
            }
        }

        GiveUp(last);
    }

    private void GiveUp(Exception cause)
    {
        var failure = new GatewayConnectionException("The connection to the gateway was lost and not made again.", cause);
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _ready.TrySetException(failure);
        }

        _pushes.Writer.TryComplete(failure);
        SetState(GatewayConnectionState.Failed, 0, TimeSpan.Zero, cause);
    }

    private void SetState(GatewayConnectionState state, int attempt, TimeSpan delay, Exception? error)
    {
        _state = state;
        StateChanged?.Invoke(this, new ConnectionStateChangedEventArgs(state, attempt, delay, error));
    }

    private sealed record LoginRequest(string Token, bool Ack, int ClientId);

    private sealed record Push(PendingResponse? Response, Exception? Error);

    private sealed class PendingRequest(Action<GatewayClient, JsonElement>? onReply)
    {
        public TaskCompletionSource<JsonElement> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Action<GatewayClient, JsonElement>? OnReply { get; } = onReply;
    }

    /// <summary>One WebSocket: its single writer, and the requests waiting for replies on it.</summary>
    private sealed class Connection(ClientWebSocket socket)
    {
        private readonly SemaphoreSlim _sendLock = new(1, 1);

        public ClientWebSocket Socket { get; } = socket;

        public ConcurrentDictionary<long, PendingRequest> Pending { get; } = new();

        public Task? Receiving { get; set; }

        public volatile bool IsLost;

        /// <summary>
        /// Writes one frame. A cancelled caller stops waiting, but the frame, once started, is finished in the
        /// background: cancelling a <see cref="ClientWebSocket"/> write would abort the whole socket.
        /// </summary>
        public async Task SendAsync(byte[] frame, CancellationToken cancellationToken)
        {
            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            Task send;
            try
            {
                send = Socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }
            catch
            {
                _sendLock.Release();
                throw;
            }

            _ = send.ContinueWith(static (_, l) => ((SemaphoreSlim)l!).Release(), _sendLock, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            try
            {
                await send.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException)
            {
                throw new GatewayConnectionException("The connection was lost while the request was sent.", ex);
            }
        }

        public void Fail(Exception error)
        {
            foreach (var id in Pending.Keys)
            {
                if (Pending.TryRemove(id, out var pending))
                {
                    pending.Reply.TrySetException(error);
                }
            }
        }

        public async Task CloseAsync(TimeSpan timeout, TimeProvider time)
        {
            try
            {
                using var bound = new CancellationTokenSource(timeout, time);
                if (Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", bound.Token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The gateway went away first; aborting below is all that is left to do.
            }

            Abort();
        }

        public void Abort()
        {
            Socket.Abort();
            Socket.Dispose();
        }
    }
}
