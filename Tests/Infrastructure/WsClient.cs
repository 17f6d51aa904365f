using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tests.Infrastructure;

/// <summary>A protocol client over a real <see cref="ClientWebSocket"/>, every wait bounded.</summary>
public sealed class WsClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly ClientWebSocket _socket;
    private readonly Queue<JsonElement> _unsolicited = new();
    private int _nextRequestId;

    private WsClient(ClientWebSocket socket) => _socket = socket;

    public ClientWebSocket Socket => _socket;

    public static async Task<WsClient> ConnectAsync(Uri uri)
    {
        var socket = new ClientWebSocket();
        using var bound = Bound();
        await socket.ConnectAsync(uri, bound.Token);
        return new WsClient(socket);
    }

    /// <summary>
    /// A client whose TCP receive buffer is as small as the system allows: a peer that stops reading
    /// fills it, and the server's writes to it stall, after a few frames instead of megabytes.
    /// </summary>
    public static async Task<WsClient> ConnectWithSmallReceiveBufferAsync(Uri uri)
    {
        var socket = new ClientWebSocket();
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var tcp = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp)
                {
                    NoDelay = true,
                    ReceiveBufferSize = 4096,
                };
                try
                {
                    await tcp.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new System.Net.Sockets.NetworkStream(tcp, ownsSocket: true);
                }
                catch
                {
                    tcp.Dispose();
                    throw;
                }
            },
        };
        using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);
        using var bound = Bound();
        await socket.ConnectAsync(uri, invoker, bound.Token);
        return new WsClient(socket);
    }

    /// <summary>A request envelope as the protocol writes it.</summary>
    public static string Envelope(string action, object? parameters = null, object? requestId = null)
    {
        var body = new JsonObject { ["action"] = action };
        if (requestId is not null)
        {
            body["requestId"] = JsonValue.Create(requestId);
        }

        body["parameters"] = parameters is null ? new JsonObject() : JsonSerializer.SerializeToNode(parameters);
        return new JsonObject { ["event"] = "client.to.instance", ["body"] = body }.ToJsonString();
    }

    public Task SendTextAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public async Task SendAsync(byte[] bytes, WebSocketMessageType type, bool endOfMessage = true)
    {
        using var bound = Bound();
        await _socket.SendAsync(bytes, type, endOfMessage, bound.Token);
    }

    /// <summary>Sends a request and returns the reply's body; pushes that arrive first are kept for <see cref="NextPushAsync"/>.</summary>
    public Task<JsonElement> RequestAsync(string action, object? parameters = null) => RequestAsync(action, parameters, Timeout);

    /// <summary>As <see cref="RequestAsync(string, object?)"/>, waiting up to <paramref name="timeout"/> for the reply instead of <see cref="Timeout"/>.</summary>
    public async Task<JsonElement> RequestAsync(string action, object? parameters, TimeSpan timeout)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        await SendTextAsync(Envelope(action, parameters, id));
        using var bound = Bound(timeout);
        for (var i = 0; i < 10_000; i++)
        {
            var message = await ReceiveBodyAsync(bound.Token);
            if (message.TryGetProperty("requestId", out var replyId))
            {
                Assert.Equal(id, replyId.GetInt32());
                return message;
            }

            _unsolicited.Enqueue(message);
        }

        throw new InvalidOperationException($"No reply to request {id}.");
    }

    /// <summary>Takes the messages that arrived before a reply and were kept, for a reader that goes on with <see cref="ReceiveTextUntilAsync"/>.</summary>
    public IReadOnlyList<JsonElement> TakeKeptPushes()
    {
        var kept = _unsolicited.ToArray();
        _unsolicited.Clear();
        return kept;
    }

    /// <summary>The next message that answers no request (a <c>response</c> push, a <c>loggedOut</c>).</summary>
    public async Task<JsonElement> NextPushAsync() =>
        _unsolicited.TryDequeue(out var kept) ? kept : await ReceiveAsync();

    /// <summary>The next server message's body, after checking its event.</summary>
    public async Task<JsonElement> ReceiveAsync()
    {
        using var bound = Bound();
        return await ReceiveBodyAsync(bound.Token);
    }

    private async Task<JsonElement> ReceiveBodyAsync(CancellationToken cancellationToken)
    {
        var text = await ReceiveTextUntilAsync(cancellationToken) ?? throw new InvalidOperationException($"The server closed the socket: {_socket.CloseStatus} {_socket.CloseStatusDescription}");
        using var document = JsonDocument.Parse(text);
        Assert.Equal("instace.to.client", document.RootElement.GetProperty("event").GetString());
        return document.RootElement.GetProperty("body").Clone();
    }

    /// <summary>The next text message, or null when the server closed the socket.</summary>
    public async Task<string?> ReceiveTextAsync()
    {
        using var bound = Bound();
        return await ReceiveTextUntilAsync(bound.Token);
    }

    /// <summary>
    /// The next text message, or null when the server closed the socket, waiting as long as
    /// <paramref name="cancellationToken"/> lets it: for a reader that listens to a quiet socket
    /// longer than <see cref="Timeout"/>. Cancelling aborts the socket, as it does for any receive.
    /// </summary>
    public async Task<string?> ReceiveTextUntilAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(message.ToArray());
            }
        }
    }

    /// <summary>Registers a client and returns its token and id.</summary>
    public async Task<(string Token, int Id)> RegisterAsync(object information)
    {
        var reply = await RequestAsync("register", new { information });
        Assert.Equal("registered", reply.GetProperty("action").GetString());
        var parameters = reply.GetProperty("parameters");
        return (parameters.GetProperty("token").GetString()!, parameters.GetProperty("id").GetInt32());
    }

    public async Task CloseAsync()
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var bound = Bound();
            await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", bound.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await CloseAsync();
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The server side already went away; nothing to close.
        }

        _socket.Dispose();
    }

    private static CancellationTokenSource Bound() => Bound(Timeout);

    private static CancellationTokenSource Bound(TimeSpan timeout)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout);
        return cts;
    }
}

/// <summary>Reading reply bodies in assertions.</summary>
public static class Reply
{
    public static string Action(this JsonElement body) => body.GetProperty("action").GetString()!;

    public static JsonElement Parameters(this JsonElement body) => body.GetProperty("parameters");

    public static string? ErrorCode(this JsonElement body) =>
        body.Action() == "error" ? body.Parameters().GetProperty("code").GetString() : null;
}
