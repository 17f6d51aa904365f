using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Tests.Infrastructure;

namespace Tests.Transports;

/// <summary>A server message as a client got it: the body, and the acknowledgement id it came through (Socket.IO), if any.</summary>
public readonly record struct Incoming(JsonElement Body, long? AckId);

/// <summary>
/// A protocol client whatever carries it, so that one behaviour test runs over every transport: raw <c>/ws</c>,
/// Socket.IO over WebSocket (requests as events with a request id, or with acknowledgements and no request id),
/// and Socket.IO over HTTP long-polling. Every wait is bounded.
/// </summary>
public abstract class ProtocolClient : IAsyncDisposable
{
    /// <summary>Raw <c>/ws</c> with the JSON envelope.</summary>
    public const string Ws = "ws";

    /// <summary>Socket.IO v4 over WebSocket; replies come as the reply event, matched by request id.</summary>
    public const string SocketIoWebSocket = "socket.io-websocket";

    /// <summary>Socket.IO v4 over WebSocket; every request asks for an acknowledgement and carries no request id.</summary>
    public const string SocketIoAcks = "socket.io-websocket-acks";

    /// <summary>Socket.IO v4 over HTTP long-polling, without an upgrade.</summary>
    public const string SocketIoPolling = "socket.io-polling";

    public const string ReplyEvent = "instace.to.client";

    private readonly Queue<JsonElement> _unsolicited = new();
    private long _next;

    public static TheoryData<string> All => [Ws, SocketIoWebSocket, SocketIoAcks, SocketIoPolling];

    /// <summary>The transport this client speaks.</summary>
    public abstract string Transport { get; }

    /// <summary>Whether requests ask for a Socket.IO acknowledgement (and so carry no request id).</summary>
    protected virtual bool UsesAcks => false;

    public static async Task<ProtocolClient> ConnectAsync(string transport, GatewayServer server) => transport switch
    {
        Ws => new WsProtocolClient(await WsClient.ConnectAsync(server.WebSocketUri)),
        SocketIoWebSocket => await SocketIoWebSocketClient.ConnectAsync(server.HttpUri, acks: false),
        SocketIoAcks => await SocketIoWebSocketClient.ConnectAsync(server.HttpUri, acks: true),
        SocketIoPolling => await SocketIoPollingClient.ConnectAsync(server.HttpUri),
        _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, "Unknown transport."),
    };

    /// <summary>The request body <c>{action, requestId?, parameters}</c> as the protocol writes it.</summary>
    public static JsonObject Body(string action, object? parameters, long? requestId)
    {
        var body = new JsonObject { ["action"] = action };
        if (requestId is { } id)
        {
            body["requestId"] = id;
        }

        body["parameters"] = parameters is null ? new JsonObject() : JsonSerializer.SerializeToNode(parameters);
        return body;
    }

    /// <summary>Sends a request and returns the reply's body; messages that arrive first are kept for <see cref="NextPushAsync"/>.</summary>
    public async Task<JsonElement> RequestAsync(string action, object? parameters = null)
    {
        var id = Interlocked.Increment(ref _next);
        if (UsesAcks)
        {
            await SendRequestAsync(Body(action, parameters, null).ToJsonString(), id);
        }
        else
        {
            await SendRequestAsync(Body(action, parameters, id).ToJsonString(), null);
        }

        using var bound = Bound();
        for (var i = 0; i < 10_000; i++)
        {
            var message = await ReceiveAsync(bound.Token) ?? throw new InvalidOperationException($"The server closed the connection before the reply to {action}.");
            if (UsesAcks ? message.AckId == id : message.Body.TryGetProperty("requestId", out var replyId) && replyId.GetInt64() == id)
            {
                if (UsesAcks)
                {
                    Assert.False(message.Body.TryGetProperty("requestId", out _), "A request without a request id gets none back.");
                }

                return message.Body;
            }

            Assert.Null(message.AckId);
            _unsolicited.Enqueue(message.Body);
        }

        throw new InvalidOperationException($"No reply to {action}.");
    }

    /// <summary>Sends requests one after another without waiting, then collects their replies in order.</summary>
    public async Task<List<JsonElement>> PipelineAsync(IReadOnlyList<(string Action, object? Parameters)> requests)
    {
        var ids = new List<long>();
        foreach (var (action, parameters) in requests)
        {
            var id = Interlocked.Increment(ref _next);
            ids.Add(id);
            await SendRequestAsync(Body(action, parameters, UsesAcks ? null : id).ToJsonString(), UsesAcks ? id : null);
        }

        var replies = new List<JsonElement>();
        using var bound = Bound();
        for (var i = 0; i < 10_000 && replies.Count < ids.Count; i++)
        {
            var message = await ReceiveAsync(bound.Token) ?? throw new InvalidOperationException("The server closed the connection during a pipeline.");
            var id = UsesAcks ? message.AckId : message.Body.TryGetProperty("requestId", out var r) ? r.GetInt64() : null;
            if (id is null)
            {
                _unsolicited.Enqueue(message.Body);
                continue;
            }

            Assert.Equal(ids[replies.Count], id);
            replies.Add(message.Body);
        }

        return replies;
    }

    /// <summary>Sends something that is no request in this transport's terms (not JSON on <c>/ws</c>, a string argument on Socket.IO).</summary>
    public abstract Task SendMalformedAsync();

    /// <summary>The next message that answers no request (a <c>response</c> push, a <c>loggedOut</c>), which is never an acknowledgement.</summary>
    public async Task<JsonElement> NextPushAsync()
    {
        if (_unsolicited.TryDequeue(out var kept))
        {
            return kept;
        }

        using var bound = Bound();
        var message = await ReceiveAsync(bound.Token) ?? throw new InvalidOperationException("The server closed the connection.");
        Assert.Null(message.AckId);
        return message.Body;
    }

    /// <summary>Reads until the server closes the connection (at most 50 messages): true when it did.</summary>
    public async Task<bool> ClosedByServerAsync()
    {
        using var bound = Bound();
        for (var i = 0; i < 50; i++)
        {
            if (await ReceiveAsync(bound.Token) is null)
            {
                return true;
            }
        }

        return false;
    }

    public async Task<(string Token, int Id)> RegisterAsync(object information)
    {
        var reply = await RequestAsync("register", new { information });
        Assert.Equal("registered", reply.Action());
        var parameters = reply.GetProperty("parameters");
        return (parameters.GetProperty("token").GetString()!, parameters.GetProperty("id").GetInt32());
    }

    public abstract ValueTask DisposeAsync();

    /// <summary>Sends one request body (JSON text), through an acknowledgement when <paramref name="ackId"/> is set.</summary>
    protected abstract Task SendRequestAsync(string body, long? ackId);

    /// <summary>The next server message; null once the server has closed the connection.</summary>
    protected abstract Task<Incoming?> ReceiveAsync(CancellationToken cancellationToken);

    protected static CancellationTokenSource Bound()
    {
        var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(WsClient.Timeout);
        return bound;
    }

    /// <summary>
    /// Reads a Socket.IO packet (Engine.IO message text) from the server: the reply event or an acknowledgement.
    /// Returns false for a packet that ends the connection (<c>41</c>, <c>1</c>).
    /// </summary>
    protected static bool TryReadPacket(string packet, out Incoming? message)
    {
        message = null;
        if (packet is "41" or "1")
        {
            return false;
        }

        if (packet.StartsWith("42[", StringComparison.Ordinal))
        {
            using var document = JsonDocument.Parse(packet[2..]);
            var array = document.RootElement;
            Assert.Equal(2, array.GetArrayLength());
            Assert.Equal(ReplyEvent, array[0].GetString());
            message = new Incoming(array[1].Clone(), null);
            return true;
        }

        if (packet.StartsWith("43", StringComparison.Ordinal))
        {
            var bracket = packet.IndexOf('[', StringComparison.Ordinal);
            var ackId = long.Parse(packet.AsSpan(2, bracket - 2), CultureInfo.InvariantCulture);
            using var document = JsonDocument.Parse(packet[bracket..]);
            Assert.Equal(1, document.RootElement.GetArrayLength());
            message = new Incoming(document.RootElement[0].Clone(), ackId);
            return true;
        }

        throw new InvalidOperationException($"Unexpected packet from the server: {packet}");
    }

    /// <summary>The Socket.IO EVENT packet of a request: <c>42[id]["client.to.instance",body]</c>.</summary>
    protected static string RequestPacket(string body, long? ackId) =>
        ackId is { } id
            ? string.Create(CultureInfo.InvariantCulture, $"42{id}[\"client.to.instance\",{body}]")
            : $"42[\"client.to.instance\",{body}]";
}

/// <summary>Raw <c>/ws</c>.</summary>
public sealed class WsProtocolClient(WsClient client) : ProtocolClient
{
    public override string Transport => Ws;

    public WsClient Client => client;

    public override Task SendMalformedAsync() => client.SendTextAsync("this is not JSON");

    public override ValueTask DisposeAsync() => client.DisposeAsync();

    protected override Task SendRequestAsync(string body, long? ackId) =>
        client.SendTextAsync($"{{\"event\":\"client.to.instance\",\"body\":{body}}}");

    protected override async Task<Incoming?> ReceiveAsync(CancellationToken cancellationToken)
    {
        string? text;
        try
        {
            text = await client.ReceiveTextUntilAsync(cancellationToken);
        }
        catch (WebSocketException)
        {
            return null;
        }

        if (text is null)
        {
            return null;
        }

        using var document = JsonDocument.Parse(text);
        Assert.Equal(ReplyEvent, document.RootElement.GetProperty("event").GetString());
        return new Incoming(document.RootElement.GetProperty("body").Clone(), null);
    }
}

/// <summary>Socket.IO v4 over a WebSocket, speaking Engine.IO packets itself; answers the server's pings.</summary>
public sealed class SocketIoWebSocketClient : ProtocolClient
{
    private readonly ClientWebSocket _socket;
    private readonly bool _acks;

    private SocketIoWebSocketClient(ClientWebSocket socket, bool acks)
    {
        _socket = socket;
        _acks = acks;
    }

    public override string Transport => _acks ? SocketIoAcks : SocketIoWebSocket;

    protected override bool UsesAcks => _acks;

    public static async Task<SocketIoWebSocketClient> ConnectAsync(Uri server, bool acks)
    {
        var socket = new ClientWebSocket();
        var uri = new UriBuilder(server) { Scheme = "ws", Path = "/socket.io/", Query = "EIO=4&transport=websocket" }.Uri;
        using var bound = Bound();
        await socket.ConnectAsync(uri, bound.Token);
        var client = new SocketIoWebSocketClient(socket, acks);
        Assert.StartsWith("0{", await client.ReceiveTextAsync(bound.Token));
        await client.SendTextAsync("40");
        Assert.StartsWith("40{\"sid\":", await client.ReceiveTextAsync(bound.Token));
        return client;
    }

    public override Task SendMalformedAsync() => SendTextAsync("42[\"client.to.instance\",\"not an object\"]");

    /// <summary>The next Engine.IO packet that is no ping (pings are answered); null once the server closed the socket.</summary>
    public async Task<string?> ReceivePacketAsync()
    {
        using var bound = Bound();
        for (var i = 0; i < 1000; i++)
        {
            var packet = await ReceiveTextAsync(bound.Token);
            if (packet != "2")
            {
                return packet;
            }

            await SendTextAsync("3");
        }

        throw new InvalidOperationException("Only pings came.");
    }

    /// <summary>Sends one binary WebSocket message (a binary packet's attachment).</summary>
    public async Task SendBinaryAsync(byte[] data)
    {
        using var bound = Bound();
        await _socket.SendAsync(data, WebSocketMessageType.Binary, true, bound.Token);
    }

    /// <summary>Sends one Engine.IO text packet as it stands.</summary>
    public async Task SendTextAsync(string packet)
    {
        using var bound = Bound();
        await _socket.SendAsync(Encoding.UTF8.GetBytes(packet), WebSocketMessageType.Text, true, bound.Token);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, bound.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                // The server went away first.
            }
        }

        _socket.Dispose();
    }

    protected override Task SendRequestAsync(string body, long? ackId) => SendTextAsync(RequestPacket(body, ackId));

    protected override async Task<Incoming?> ReceiveAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < 1000; i++)
        {
            string? packet;
            try
            {
                packet = await ReceiveTextAsync(cancellationToken);
            }
            catch (WebSocketException)
            {
                return null;
            }

            if (packet is null)
            {
                return null;
            }

            if (packet == "2")
            {
                await SendTextAsync("3");
                continue;
            }

            return TryReadPacket(packet, out var message) ? message : null;
        }

        throw new InvalidOperationException("Only pings came.");
    }

    private async Task<string?> ReceiveTextAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        using var text = new MemoryStream();
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            text.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(text.ToArray());
            }
        }
    }
}

/// <summary>
/// Socket.IO v4 over HTTP long-polling: one GET at a time runs in the background and feeds what it gets to the
/// reader; packets go out in POSTs, one at a time. Answers the server's pings.
/// </summary>
public sealed class SocketIoPollingClient : ProtocolClient
{
    private const int MaxPolls = 10_000;

    private readonly HttpClient _http;
    private readonly string _path;
    private readonly Channel<string> _packets = Channel.CreateUnbounded<string>();
    private readonly SemaphoreSlim _posting = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _polling = Task.CompletedTask;

    private SocketIoPollingClient(HttpClient http, string sid)
    {
        _http = http;
        _path = $"/socket.io/?EIO=4&transport=polling&sid={Uri.EscapeDataString(sid)}";
    }

    public override string Transport => SocketIoPolling;

    public static async Task<SocketIoPollingClient> ConnectAsync(Uri server)
    {
        // Polls wait as long as the server holds them; the client's bound is the reader's, and disposal.
        var http = new HttpClient { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        using var bound = Bound();
        var open = await http.GetStringAsync("/socket.io/?EIO=4&transport=polling", bound.Token);
        Assert.StartsWith("0{", open);
        var sid = JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString()!;
        var client = new SocketIoPollingClient(http, sid);
        await client.PostAsync("40");
        client._polling = Task.Run(client.PollAsync, CancellationToken.None);
        var connected = await client._packets.Reader.ReadAsync(bound.Token);
        Assert.StartsWith("40{\"sid\":", connected);
        return client;
    }

    public override Task SendMalformedAsync() => PostAsync("42[\"client.to.instance\",\"not an object\"]");

    public override async ValueTask DisposeAsync()
    {
        try
        {
            // Engine.IO's close packet ends the session on the server at once; a session that has ended answers 400.
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            using var closing = await _http.PostAsync(_path, new StringContent("1"), bound.Token);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            // The server went away first.
        }

        await _stop.CancelAsync();
        await _polling;
        _http.Dispose();
        _stop.Dispose();
        _posting.Dispose();
    }

    protected override Task SendRequestAsync(string body, long? ackId) => PostAsync(RequestPacket(body, ackId));

    protected override async Task<Incoming?> ReceiveAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < 1000; i++)
        {
            if (!await _packets.Reader.WaitToReadAsync(cancellationToken))
            {
                return null;
            }

            var packet = await _packets.Reader.ReadAsync(cancellationToken);
            if (packet is "6")
            {
                continue;
            }

            return TryReadPacket(packet, out var message) ? message : null;
        }

        throw new InvalidOperationException("Only noops came.");
    }

    private async Task PostAsync(string packet)
    {
        using var bound = Bound();
        await _posting.WaitAsync(bound.Token);
        try
        {
            using var response = await _http.PostAsync(_path, new StringContent(packet, new MediaTypeHeaderValue("text/plain") { CharSet = "UTF-8" }), bound.Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        finally
        {
            _posting.Release();
        }
    }

    private async Task PollAsync()
    {
        try
        {
            for (var i = 0; i < MaxPolls && !_stop.IsCancellationRequested; i++)
            {
                using var response = await _http.GetAsync(_path, _stop.Token);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    // The session is gone (400 "Session ID unknown").
                    return;
                }

                var payload = await response.Content.ReadAsStringAsync(_stop.Token);
                foreach (var packet in payload.Split('\u001e'))
                {
                    if (packet == "2")
                    {
                        await PostAsync("3");
                    }
                    else if (packet == "1")
                    {
                        return;
                    }
                    else
                    {
                        _packets.Writer.TryWrite(packet);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            // Stopped, or the server went away.
        }
        finally
        {
            _packets.Writer.TryComplete();
        }
    }
}
