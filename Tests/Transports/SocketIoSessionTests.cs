using System.Text;
using System.Text.Json;
using SocketIOClient;
using Tests.Infrastructure;

namespace Tests.Transports;

/// <summary>What only Socket.IO clients do: events other than the request event, binary events, clients written to the specification, the .NET client, shutdown.</summary>
public sealed class SocketIoSessionTests(DefaultGatewayFixture fixture) : IClassFixture<DefaultGatewayFixture>
{
    [Fact]
    public async Task AClientWrittenToTheSpecificationEmitsTheBodyWithoutARequestIdAndHearsTheReplyEvent()
    {
        await using var client = await SocketIoWebSocketClient.ConnectAsync(fixture.Server.HttpUri, acks: false);

        await client.SendTextAsync("42[\"client.to.instance\",{\"action\":\"register\",\"parameters\":{\"information\":{\"name\":\"spec\"}}}]");
        var registered = Body(await client.ReceivePacketAsync(), expectedAck: null);
        Assert.Equal("registered", registered.Action());
        Assert.False(registered.TryGetProperty("requestId", out _));
        var token = registered.Parameters().GetProperty("token").GetString();

        await client.SendTextAsync($"42[\"client.to.instance\",{{\"action\":\"login\",\"parameters\":{{\"Token\":\"{token}\"}}}}]");
        var logged = Body(await client.ReceivePacketAsync(), expectedAck: null);
        Assert.Equal("logged", logged.Action());
        Assert.Empty(logged.Parameters().GetProperty("queue").EnumerateArray());
    }

    [Fact]
    public async Task OtherEventsWrongArgumentsAndBinaryEventsGetBadRequestThroughTheirAckAndTheConnectionGoesOn()
    {
        await using var client = await SocketIoWebSocketClient.ConnectAsync(fixture.Server.HttpUri, acks: true);

        await client.SendTextAsync("421[\"hello\",{\"action\":\"ping\"}]");
        Assert.Equal("bad_request", Code(Body(await client.ReceivePacketAsync(), expectedAck: 1)));

        await client.SendTextAsync("422[\"client.to.instance\",{\"action\":\"ping\"},{\"action\":\"ping\"}]");
        Assert.Equal("bad_request", Code(Body(await client.ReceivePacketAsync(), expectedAck: 2)));

        await client.SendTextAsync("423[\"client.to.instance\"]");
        Assert.Equal("bad_request", Code(Body(await client.ReceivePacketAsync(), expectedAck: 3)));

        await client.SendTextAsync("424[\"client.to.instance\",[\"action\",\"ping\"]]");
        Assert.Equal("bad_request", Code(Body(await client.ReceivePacketAsync(), expectedAck: 4)));

        await client.SendTextAsync("451-5[\"client.to.instance\",{\"_placeholder\":true,\"num\":0}]");
        await client.SendBinaryAsync([1, 2, 3]);
        Assert.Equal("bad_request", Code(Body(await client.ReceivePacketAsync(), expectedAck: 5)));

        // Without an ack, an error is the reply event.
        await client.SendTextAsync("42[\"hello\"]");
        Assert.Equal("bad_request", Code(Body(await client.ReceivePacketAsync(), expectedAck: null)));

        await client.SendTextAsync("426[\"client.to.instance\",{\"action\":\"ping\"}]");
        Assert.Equal("pinged", Body(await client.ReceivePacketAsync(), expectedAck: 6).Action());
    }

    [Fact]
    public async Task TheDotNetSocketIoClientRegistersLogsInThroughAcksAndHearsALivePush()
    {
        var ct = TestContext.Current.CancellationToken;
        using var io = new SocketIO(fixture.Server.HttpUri, new SocketIOOptions
        {
            Transport = SocketIOClient.Transport.TransportProtocol.WebSocket,
            Reconnection = false,
            ConnectionTimeout = WsClient.Timeout,
        });
        var pushes = System.Threading.Channels.Channel.CreateUnbounded<JsonElement>();
        io.On(ProtocolClient.ReplyEvent, response => pushes.Writer.TryWrite(response.GetValue<JsonElement>(0)));
        // ConnectAsync of this client returns before the namespace is connected; emits before that are lost.
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        io.OnConnected += (_, _) => connected.TrySetResult();
        await io.ConnectAsync().WaitAsync(WsClient.Timeout, ct);
        await connected.Task.WaitAsync(WsClient.Timeout, ct);

        async Task<JsonElement> RequestAsync(object body)
        {
            var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
            await io.EmitAsync("client.to.instance", response => reply.TrySetResult(response.GetValue<JsonElement>(0)), body).WaitAsync(WsClient.Timeout, ct);
            return await reply.Task.WaitAsync(WsClient.Timeout, ct);
        }

        var registered = await RequestAsync(new { action = "register", parameters = new { information = new { name = "dotnet" } } });
        Assert.Equal("registered", registered.Action());
        var token = registered.Parameters().GetProperty("token").GetString();
        var id = registered.Parameters().GetProperty("id").GetInt32();
        Assert.Equal("logged", (await RequestAsync(new { action = "login", parameters = new { token } })).Action());

        using var api = new ApiClient(fixture.Server.HttpUri);
        await api.PostResponseAsync(id, "{\"hello\":\"dotnet\"}");
        var push = await pushes.Reader.ReadAsync(ct).AsTask().WaitAsync(WsClient.Timeout, ct);
        Assert.Equal("response", push.Action());
        Assert.Equal("dotnet", push.Parameters().GetProperty("payload").GetProperty("hello").GetString());

        await io.DisconnectAsync().WaitAsync(WsClient.Timeout, ct);
    }

    [Fact]
    public async Task AClientThatStopsPollingIsClosedAsASlowReaderAndWhatItDidNotTakeStaysQueued()
    {
        const int maxPosts = 200;
        await using var sender = await ProtocolClient.ConnectAsync(ProtocolClient.Ws, fixture.Server);
        var (token, id) = await sender.RegisterAsync(new { name = "stalled poller" });

        // A polling client that connects and logs in, then never polls again: its frames wait on the server.
        using var poller = await Tests.SocketIo.PollingClient.OpenAsync(fixture.Server.HttpUri);
        await poller.PostAsync("40");
        await poller.PostAsync($"42[\"client.to.instance\",{{\"action\":\"login\",\"parameters\":{{\"token\":\"{token}\"}}}}]");
        using var api = new ApiClient(fixture.Server.HttpUri);
        for (var i = 0; i < 100 && !(await api.GetAsync($"/api/clients/{id}")).Body.GetProperty("online").GetBoolean(); i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), TestContext.Current.CancellationToken);
        }

        // A back end pushes until the gateway gives up on the client and queues instead.
        var payload = $"{{\"blob\":\"{new string('x', 8000)}\"}}";
        var seqs = new List<long>();
        var online = 0;
        string delivered;
        do
        {
            var (status, body) = await api.PostResponseAsync(id, payload);
            Assert.Equal(System.Net.HttpStatusCode.Accepted, status);
            seqs.Add(body.GetProperty("seq").GetInt64());
            delivered = body.GetProperty("delivered").GetString()!;
            online += delivered == "online" ? 1 : 0;
        }
        while (delivered == "online" && seqs.Count < maxPosts);

        Assert.Equal("queued", delivered);
        Assert.True(online > 0, "The first pushes went to the online session.");

        // The stalled session ends, and what it had not been handed is still queued, the newest included, in order.
        var offline = false;
        for (var i = 0; i < 400 && !offline; i++)
        {
            offline = !(await api.GetAsync($"/api/clients/{id}")).Body.GetProperty("online").GetBoolean();
            if (!offline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), TestContext.Current.CancellationToken);
            }
        }

        Assert.True(offline, "The stalled session was closed.");
        await using var again = await ProtocolClient.ConnectAsync(ProtocolClient.SocketIoWebSocket, fixture.Server);
        var queue = (await again.RequestAsync("login", new { token })).Parameters().GetProperty("queue").EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()).ToList();
        Assert.NotEmpty(queue);
        for (var i = 0; i < maxPosts && queue[^1] != seqs[^1]; i++)
        {
            // The rest of a paged queue follows the login as pushes.
            var push = await again.NextPushAsync();
            Assert.Equal("response", push.Action());
            queue.Add(push.Parameters().GetProperty("seq").GetInt64());
        }

        Assert.NotEmpty(queue);
        Assert.Equal(seqs[^queue.Count..], queue);
    }

    [Fact]
    public async Task ShutdownClosesSocketIoSessionsAsItClosesWsOnes()
    {
        using var database = new TempDatabase();
        var server = await GatewayServer.StartAsync(database.Path);
        try
        {
            await using var overWebSocket = await ProtocolClient.ConnectAsync(ProtocolClient.SocketIoWebSocket, server);
            await using var overPolling = await ProtocolClient.ConnectAsync(ProtocolClient.SocketIoPolling, server);
            foreach (var client in new[] { overWebSocket, overPolling })
            {
                var (token, _) = await client.RegisterAsync(new { name = client.Transport });
                Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());
            }

            var closed = new[] { overWebSocket.ClosedByServerAsync(), overPolling.ClosedByServerAsync() };
            await server.StopAsync();

            Assert.All(await Task.WhenAll(closed), Assert.True);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static JsonElement Body(string? packet, long? expectedAck)
    {
        Assert.NotNull(packet);
        if (expectedAck is { } ack)
        {
            Assert.StartsWith($"43{ack}[", packet);
            using var acknowledgement = JsonDocument.Parse(packet[packet.IndexOf('[', StringComparison.Ordinal)..]);
            return acknowledgement.RootElement[0].Clone();
        }

        Assert.StartsWith($"42[\"{ProtocolClient.ReplyEvent}\",", packet);
        using var document = JsonDocument.Parse(packet[2..]);
        return document.RootElement[1].Clone();
    }

    private static string? Code(JsonElement reply)
    {
        Assert.Equal("error", reply.Action());
        return reply.Parameters().GetProperty("code").GetString();
    }
}
