using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;
using WebSocketFrontend.SocketIo;

namespace Tests.SocketIo;

/// <summary>
/// The handler the Socket.IO tests register: it greets each connection with a <c>welcome</c> event, answers an
/// event through its acknowledgement when the client asked for one and with an <c>echo</c> event otherwise, reports
/// binary events and acknowledgements with a <c>binary</c> event, and disconnects on <c>disconnect-me</c>.
/// </summary>
public sealed class EchoHandler : ISocketIoConnectionHandler
{
    public async Task RunAsync(SocketIoConnection connection, CancellationToken cancellationToken)
    {
        connection.TrySend(SocketIoPackets.Event("welcome", connection, static (w, c) =>
        {
            w.WriteStartObject();
            w.WriteString("transport", c.Transport);
            w.WriteNumber("eio", c.EngineVersion);
            w.WriteString("address", c.RemoteAddress?.ToString());
            w.WriteEndObject();
        }));
        while (await connection.ReceiveAsync(cancellationToken) is { } item)
        {
            if (item.IsBinary)
            {
                connection.TrySend(SocketIoPackets.Event("binary", item, static (w, e) =>
                {
                    w.WriteStartObject();
                    w.WriteString("name", e.Name);
                    if (e.AckId is { } id)
                    {
                        w.WriteNumber("ackId", id);
                    }
                    else
                    {
                        w.WriteNull("ackId");
                    }

                    w.WriteEndObject();
                }));
            }
            else if (item.Name == "disconnect-me")
            {
                connection.Close();
                return;
            }
            else if (item.AckId is { } ack)
            {
                connection.TrySend(SocketIoPackets.Ack(ack, item, WriteArgument));
            }
            else
            {
                connection.TrySend(SocketIoPackets.Event("echo", item, WriteArgument));
            }
        }
    }

    private static void WriteArgument(Utf8JsonWriter writer, SocketIoEvent item)
    {
        if (item.ArgumentCount == 0)
        {
            writer.WriteNullValue();
        }
        else
        {
            writer.WriteRawValue(item.Argument.Span, skipInputValidation: true);
        }
    }
}

/// <summary>One gateway with the echo handler on a fake clock, shared by the raw Socket.IO protocol tests.</summary>
public sealed class SocketIoFixture : IAsyncLifetime
{
    public const int MaxPayload = 4096;
    public const string CorsOrigin = "http://cors.example";
    public const string AdmittedOrigin = "http://admitted.example";

    public TempDatabase Database { get; } = new();

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, new Dictionary<string, string>
        {
            ["Protocol:MaxMessageBytes"] = MaxPayload.ToString(CultureInfo.InvariantCulture),
            ["Protocol:AllowedOrigins:0"] = CorsOrigin,
            ["Protocol:AllowedOrigins:1"] = AdmittedOrigin,
            ["SocketIo:CorsOrigins:0"] = CorsOrigin,
        }, Clock, services => services.AddSingleton<ISocketIoConnectionHandler, EchoHandler>());

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

/// <summary>An Engine.IO client over HTTP long-polling that speaks the payload framing of its version.</summary>
public sealed class PollingClient : IDisposable
{
    private readonly HttpClient _http;

    private PollingClient(HttpClient http, int eio, string sid, JsonElement handshake)
    {
        _http = http;
        Eio = eio;
        Sid = sid;
        Handshake = handshake;
    }

    public int Eio { get; }

    public string Sid { get; }

    public JsonElement Handshake { get; }

    /// <summary>Packets that came with the handshake after the open packet (v3: the implicit <c>40</c>).</summary>
    public List<string> AfterHandshake { get; private set; } = [];

    public static HttpClient NewHttp(Uri server) => new() { BaseAddress = server, Timeout = WsClient.Timeout };

    public static string Query(int eio, string transport, string? sid = null) =>
        $"/socket.io/?EIO={eio}&transport={transport}" + (sid is null ? string.Empty : $"&sid={Uri.EscapeDataString(sid)}");

    public static async Task<PollingClient> OpenAsync(Uri server, int eio = 4)
    {
        var http = NewHttp(server);
        var response = await http.GetAsync(Query(eio, "polling"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var packets = Decode(eio, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.StartsWith("0", packets[0]);
        var handshake = JsonDocument.Parse(packets[0][1..]).RootElement.Clone();
        return new PollingClient(http, eio, handshake.GetProperty("sid").GetString()!, handshake) { AfterHandshake = packets[1..] };
    }

    public string Path => Query(Eio, "polling", Sid);

    public Task<HttpResponseMessage> GetAsync(CancellationToken cancellationToken) => _http.GetAsync(Path, cancellationToken);

    public async Task<List<string>> PollAsync()
    {
        var response = await GetAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Decode(Eio, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    /// <summary>Polls until <paramref name="count"/> packets have come (at most ten polls).</summary>
    public async Task<List<string>> PollForAsync(int count)
    {
        var packets = new List<string>();
        for (var i = 0; i < 10 && packets.Count < count; i++)
        {
            packets.AddRange((await PollAsync()).Where(p => p != "6"));
        }

        return packets;
    }

    public Task<HttpResponseMessage> PostRawAsync(string body) =>
        _http.PostAsync(Path, new StringContent(body, new MediaTypeHeaderValue("text/plain") { CharSet = "UTF-8" }), TestContext.Current.CancellationToken);

    public async Task PostAsync(params string[] packets)
    {
        var response = await PostRawAsync(Encode(Eio, packets));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    public static string Encode(int eio, IEnumerable<string> packets) => eio == 4
        ? string.Join('\u001e', packets)
        : string.Concat(packets.Select(p => $"{p.Length}:{p}"));

    public static List<string> Decode(int eio, string payload)
    {
        if (eio == 4)
        {
            return [.. payload.Split('\u001e')];
        }

        var packets = new List<string>();
        var position = 0;
        while (position < payload.Length)
        {
            var colon = payload.IndexOf(':', position);
            Assert.True(colon > position, $"A v3 payload has a length before each packet: {payload}");
            var length = int.Parse(payload.AsSpan(position, colon - position), CultureInfo.InvariantCulture);
            packets.Add(payload.Substring(colon + 1, length));
            position = colon + 1 + length;
        }

        return packets;
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>An Engine.IO client over a raw WebSocket: text packets in, text packets out, every wait bounded.</summary>
public sealed class EioSocket : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;

    private EioSocket(ClientWebSocket socket) => _socket = socket;

    public ClientWebSocket Socket => _socket;

    public static Uri Uri(Uri server, int eio, string? sid = null) =>
        new(new Uri(server.ToString().Replace("http://", "ws://", StringComparison.Ordinal)), PollingClient.Query(eio, "websocket", sid));

    public static async Task<EioSocket> ConnectAsync(Uri server, int eio = 4, string? sid = null)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(Uri(server, eio, sid), TestContext.Current.CancellationToken);
        return new EioSocket(socket);
    }

    /// <summary>Opens a session over WebSocket and connects to <c>/</c>: returns the handshake.</summary>
    public static async Task<(EioSocket Socket, JsonElement Handshake)> OpenConnectedAsync(Uri server, int eio = 4)
    {
        var socket = await ConnectAsync(server, eio);
        var open = await socket.ReceiveAsync();
        Assert.StartsWith("0", open);
        if (eio == 4)
        {
            await socket.SendAsync("40");
            Assert.StartsWith("40{\"sid\":", await socket.ReceiveAsync());
        }
        else
        {
            Assert.Equal("40", await socket.ReceiveAsync());
        }

        Assert.StartsWith("42[\"welcome\",", await socket.ReceiveAsync());
        return (socket, JsonDocument.Parse(open![1..]).RootElement.Clone());
    }

    public Task SendAsync(string packet) => SendAsync(Encoding.UTF8.GetBytes(packet), WebSocketMessageType.Text);

    public async Task SendAsync(byte[] data, WebSocketMessageType type)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(WsClient.Timeout);
        await _socket.SendAsync(data, type, true, bound.Token);
    }

    /// <summary>The next text packet; null when the server closed the socket.</summary>
    public async Task<string?> ReceiveAsync()
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(WsClient.Timeout);
        var buffer = new byte[64 * 1024];
        var length = 0;
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer.AsMemory(length), bound.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(buffer, 0, length);
            }
        }
    }

    /// <summary>Reads until the server closes the socket (at most 20 packets): the packets that came before.</summary>
    public async Task<List<string>> ReceiveUntilClosedAsync()
    {
        var packets = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            string? packet;
            try
            {
                packet = await ReceiveAsync();
            }
            catch (WebSocketException)
            {
                return packets;
            }

            if (packet is null)
            {
                return packets;
            }

            packets.Add(packet);
        }

        Assert.Fail($"The socket was not closed: {string.Join(" | ", packets)}");
        return packets;
    }

    public async ValueTask DisposeAsync()
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
            }
        }

        _socket.Dispose();
    }
}
