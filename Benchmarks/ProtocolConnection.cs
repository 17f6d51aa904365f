using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;

namespace Benchmarks;

/// <summary>
/// One client socket speaking PROTOCOL.md with one request outstanding at a time; every wait is
/// bounded by the operation timeout. A URL on <c>/socket.io/</c> speaks Socket.IO (<see cref="SocketIoFraming"/>);
/// its heartbeats are answered while a reply is awaited.
/// </summary>
public sealed class ProtocolConnection : IAsyncDisposable
{
    /// <summary>Replies here are a few hundred bytes; anything this large means something is wrong.</summary>
    private const int MaxReplyBytes = 1024 * 1024;

    private static readonly TimeSpan _disposeCloseTimeout = TimeSpan.FromSeconds(2);

    private readonly ClientWebSocket _socket;
    private readonly TimeSpan _timeout;
    private readonly bool _socketIo;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private int _nextRequestId;

    private ProtocolConnection(ClientWebSocket socket, TimeSpan timeout, bool socketIo)
    {
        _socket = socket;
        _timeout = timeout;
        _socketIo = socketIo;
    }

    public static async Task<ProtocolConnection> OpenAsync(Uri url, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // No proxy, even one named by the environment: the traffic goes to the loopback URL and nowhere else.
        var socket = new ClientWebSocket { Options = { Proxy = null } };
        try
        {
            using var bound = Bound(timeout, cancellationToken);
            await socket.ConnectAsync(url, bound.Token);
            var socketIo = SocketIoFraming.Speaks(url);
            if (socketIo)
            {
                await SocketIoFraming.HandshakeAsync(socket, bound.Token);
            }

            return new ProtocolConnection(socket, timeout, socketIo);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Registers a new client; returns its token and id.</summary>
    public async Task<(string Token, int Id)> RegisterAsync(string name, CancellationToken cancellationToken)
    {
        var parameters = await RequestAsync("register", "registered", name, static (w, name) =>
        {
            w.WriteStartObject("information"u8);
            w.WriteString("name"u8, name);
            w.WriteString("location"u8, "loopback");
            w.WriteEndObject();
        }, cancellationToken);
        var token = parameters.GetProperty("token").GetString();
        return string.IsNullOrEmpty(token)
            ? throw new RequestFailedException("no_token", connectionBroken: false)
            : (token, parameters.GetProperty("id").GetInt32());
    }

    /// <summary>Logs this socket in; returns the client id the server answered with.</summary>
    public async Task<int> LoginAsync(string token, CancellationToken cancellationToken)
    {
        var parameters = await RequestAsync("login", "logged", token, static (w, token) => w.WriteString("token"u8, token), cancellationToken);
        return parameters.GetProperty("id").GetInt32();
    }

    /// <summary>An application-level round trip: proves the session is still open and served.</summary>
    public Task PingAsync(CancellationToken cancellationToken) =>
        RequestAsync("ping", "pinged", 0, static (_, _) => { }, cancellationToken);

    /// <summary>The close handshake, bounded; the socket is unusable afterwards.</summary>
    public async Task CloseAsync(CancellationToken cancellationToken)
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var bound = Bound(_timeout, cancellationToken);
            await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", bound.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var bound = new CancellationTokenSource(_disposeCloseTimeout);
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", bound.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The server went away or did not answer the close in time; disposing aborts what is left.
        }

        _socket.Dispose();
    }

    /// <summary>Sends one request and returns the parameters of its reply, which must be <paramref name="expected"/>.</summary>
    private async Task<JsonElement> RequestAsync<TState>(
        string action, string expected, TState state, Action<Utf8JsonWriter, TState> parameters, CancellationToken cancellationToken)
    {
        var requestId = ++_nextRequestId;
        using var bound = Bound(_timeout, cancellationToken);
        await _socket.SendAsync(Envelope(action, requestId, state, parameters), WebSocketMessageType.Text, endOfMessage: true, bound.Token);
        var reply = await ReceiveAsync(bound.Token);
        try
        {
            return Read(reply, requestId, expected, _socketIo);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new RequestFailedException("malformed_reply", connectionBroken: true);
        }
    }

    /// <summary>The parameters of a reply to <paramref name="requestId"/> with action <paramref name="expected"/>; throws otherwise.</summary>
    private static JsonElement Read(ReadOnlyMemory<byte> reply, int requestId, string expected, bool socketIo)
    {
        if (socketIo && !SocketIoFraming.TryBody(reply, out reply))
        {
            throw new RequestFailedException("unexpected_event", connectionBroken: true);
        }

        using var document = JsonDocument.Parse(reply);
        var root = document.RootElement;
        if (!socketIo && root.GetProperty("event").GetString() is not ("instace.to.client" or "instance.to.client"))
        {
            throw new RequestFailedException("unexpected_event", connectionBroken: true);
        }

        var body = socketIo ? root : root.GetProperty("body");
        var action = body.GetProperty("action").GetString();
        var parameters = body.GetProperty("parameters");
        var echoed = body.TryGetProperty("requestId", out var id) ? id : default;

        // The server answers every frame once, in order, but errors it raises before reading the
        // envelope (rate_limited, say) carry no requestId: with one request outstanding, that is ours.
        var ours = echoed.ValueKind == JsonValueKind.Undefined
            ? action == "error"
            : echoed.ValueKind == JsonValueKind.Number && echoed.GetInt32() == requestId;
        if (!ours)
        {
            // A push, or a late reply to a request that timed out: the stream is out of step.
            throw new RequestFailedException("unexpected_reply", connectionBroken: true);
        }

        if (action == "error")
        {
            throw new RequestFailedException(parameters.GetProperty("code").GetString() ?? "error", connectionBroken: false);
        }

        return action == expected
            ? parameters.Clone()
            : throw new RequestFailedException($"unexpected_{action}", connectionBroken: false);
    }

    private ReadOnlyMemory<byte> Envelope<TState>(string action, int requestId, TState state, Action<Utf8JsonWriter, TState> parameters) =>
        RequestEnvelope.Write(_buffer, action, requestId, state, parameters, _socketIo);

    /// <summary>
    /// One whole text message, in the same buffer the request was written to (it has been sent by now);
    /// on Socket.IO, heartbeats that come first are answered and skipped.
    /// </summary>
    private async Task<ReadOnlyMemory<byte>> ReceiveAsync(CancellationToken cancellationToken)
    {
        for (var heartbeats = 0; heartbeats < 16; heartbeats++)
        {
            var message = await ReceiveMessageAsync(cancellationToken);
            if (!_socketIo || !SocketIoFraming.IsPing(message.Span))
            {
                return message;
            }

            await _socket.SendAsync(SocketIoFraming.Pong, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }

        throw new RequestFailedException("no_reply_between_heartbeats", connectionBroken: true);
    }

    private async Task<ReadOnlyMemory<byte>> ReceiveMessageAsync(CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        while (true)
        {
            var result = await _socket.ReceiveAsync(_buffer.GetMemory(4096), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new RequestFailedException("closed_by_server", connectionBroken: true);
            }

            _buffer.Advance(result.Count);
            if (_buffer.WrittenCount > MaxReplyBytes)
            {
                throw new RequestFailedException("reply_too_large", connectionBroken: true);
            }

            if (result.EndOfMessage)
            {
                return _buffer.WrittenMemory;
            }
        }
    }

    private static CancellationTokenSource Bound(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(timeout);
        return bound;
    }
}

/// <summary>A request that did not get the reply it should have; <see cref="Code"/> is the server's error code or ours.</summary>
public sealed class RequestFailedException(string code, bool connectionBroken)
    : Exception($"Request failed: {code}")
{
    public string Code { get; } = code;

    /// <summary>The socket can no longer be trusted to pair requests with replies and must be replaced.</summary>
    public bool ConnectionBroken { get; } = connectionBroken;
}
