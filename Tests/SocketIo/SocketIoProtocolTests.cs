using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Tests.Infrastructure;
using WebSocketFrontend.Edge;
using Microsoft.Extensions.DependencyInjection;

namespace Tests.SocketIo;

/// <summary>The Engine.IO and Socket.IO protocols, raw, over real HTTP long-polling and WebSocket on 127.0.0.1.</summary>
public sealed class SocketIoProtocolTests(SocketIoFixture fixture) : IClassFixture<SocketIoFixture>
{
    private Uri Server => fixture.Server.HttpUri;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(4)]
    [InlineData(3)]
    public async Task APollingHandshakeReportsTheSessionItsUpgradesHeartbeatsAndMaxPayload(int eio)
    {
        using var client = await PollingClient.OpenAsync(Server, eio);
        var handshake = client.Handshake;
        Assert.Equal(20, client.Sid.Length);
        Assert.Equal(["websocket"], handshake.GetProperty("upgrades").EnumerateArray().Select(u => u.GetString()));
        Assert.Equal(25000, handshake.GetProperty("pingInterval").GetInt32());
        Assert.Equal(20000, handshake.GetProperty("pingTimeout").GetInt32());
        Assert.Equal(SocketIoFixture.MaxPayload, handshake.GetProperty("maxPayload").GetInt32());
        if (eio == 3)
        {
            // Socket.IO v2 clients are connected to "/" without asking.
            var packets = client.AfterHandshake.Count > 0 ? client.AfterHandshake : await client.PollForAsync(1);
            Assert.Equal("40", packets[0]);
        }

        await client.PostAsync("1");
    }

    [Fact]
    public async Task AWebSocketHandshakeOffersNoUpgrade()
    {
        await using var socket = await EioSocket.ConnectAsync(Server);
        var open = await socket.ReceiveAsync();
        var handshake = JsonDocument.Parse(open![1..]).RootElement;
        Assert.Empty(handshake.GetProperty("upgrades").EnumerateArray());
        Assert.Equal(SocketIoFixture.MaxPayload, handshake.GetProperty("maxPayload").GetInt32());
    }

    [Theory]
    [InlineData("/socket.io/?EIO=4&transport=carrier-pigeon", "GET", 0, "Transport unknown")]
    [InlineData("/socket.io/?EIO=4", "GET", 0, "Transport unknown")]
    [InlineData("/socket.io/?EIO=5&transport=polling", "GET", 5, "Unsupported protocol version")]
    [InlineData("/socket.io/?transport=polling", "GET", 5, "Unsupported protocol version")]
    [InlineData("/socket.io/?EIO=4&transport=polling&sid=nosuchsession", "GET", 1, "Session ID unknown")]
    [InlineData("/socket.io/?EIO=4&transport=polling", "POST", 2, "Bad handshake method")]
    [InlineData("/socket.io/?EIO=4&transport=websocket", "GET", 3, "Bad request")]
    public async Task ABadRequestGetsFourHundredWithTheEngineIoErrorBody(string path, string method, int code, string message)
    {
        using var http = PollingClient.NewHttp(Server);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST")
        {
            request.Content = new StringContent("1:1");
        }

        var response = await http.SendAsync(request, Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal(code, body.GetProperty("code").GetInt32());
        Assert.Equal(message, body.GetProperty("message").GetString());
    }

    [Fact]
    public async Task AnUnsupportedMethodOnASessionIsABadRequestAndTheSessionGoesOn()
    {
        using var client = await PollingClient.OpenAsync(Server);
        using var http = PollingClient.NewHttp(Server);
        var response = await http.PutAsync(client.Path, new StringContent("x"), Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(3, JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("code").GetInt32());

        await client.PostAsync("40");
        Assert.StartsWith("40{\"sid\":", (await client.PollForAsync(1))[0]);
        await client.PostAsync("1");
    }

    [Fact]
    public async Task APollingBodyOverMaxPayloadGetsFourHundredThirteenAndEndsTheSession()
    {
        using var client = await PollingClient.OpenAsync(Server);
        var response = await client.PostRawAsync("4" + new string('x', SocketIoFixture.MaxPayload));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);

        var next = await client.GetAsync(Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, next.StatusCode);
        Assert.Equal(1, JsonDocument.Parse(await next.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task ASecondConcurrentPollGetsFourHundredAndClosesTheSession()
    {
        using var client = await PollingClient.OpenAsync(Server);
        var first = client.GetAsync(Cancel);
        // The first poll waits for packets; a second one alongside it is refused and ends the session.
        HttpResponseMessage? second = null;
        for (var i = 0; i < 50 && second is null; i++)
        {
            var attempt = await client.GetAsync(Cancel);
            if (attempt.StatusCode == HttpStatusCode.BadRequest)
            {
                second = attempt;
            }
            else
            {
                // The attempt ran before the first poll was parked; it took its place, so poll again.
                Assert.Equal(HttpStatusCode.OK, attempt.StatusCode);
            }
        }

        Assert.NotNull(second);
        var firstResponse = await first.WaitAsync(WsClient.Timeout, Cancel);
        Assert.Equal(HttpStatusCode.OK, firstResponse.StatusCode);
        Assert.Contains("1", PollingClient.Decode(4, await firstResponse.Content.ReadAsStringAsync(Cancel)));
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync(Cancel)).StatusCode);
    }

    [Fact]
    public async Task EngineIoV4PayloadsAreJoinedByTheRecordSeparator()
    {
        using var client = await PollingClient.OpenAsync(Server);
        await client.PostAsync("40", "42[\"hello\",{\"n\":1}]", "42[\"hello\",\"é😀\"]");
        var packets = await client.PollForAsync(4);
        Assert.StartsWith("40{\"sid\":", packets[0]);
        Assert.StartsWith("42[\"welcome\",{\"transport\":\"polling\",\"eio\":4", packets[1]);
        Assert.Equal("42[\"echo\",{\"n\":1}]", packets[2]);
        Assert.Equal("42[\"echo\",\"é😀\"]", packets[3]);
        await client.PostAsync("1");
    }

    [Fact]
    public async Task EngineIoV3PayloadsCarryLengthsInUtf16CodeUnits()
    {
        using var client = await PollingClient.OpenAsync(Server, eio: 3);
        await client.PostAsync("42[\"hello\",\"é😀\"]");
        const string Echo = "42[\"echo\",\"é😀\"]";
        using var http = PollingClient.NewHttp(Server);
        var raw = new StringBuilder();
        for (var i = 0; i < 10 && !raw.ToString().Contains("echo", StringComparison.Ordinal); i++)
        {
            raw.Append(await http.GetStringAsync(client.Path, Cancel));
        }

        // "😀" is two UTF-16 code units and four UTF-8 bytes; "é" one and two.
        Assert.Equal(16, Echo.Length);
        Assert.Contains("16:" + Echo, raw.ToString(), StringComparison.Ordinal);
        await client.PostAsync("1");
    }

    [Fact]
    public async Task AnEngineIoV3ClientPingsAndTheServerAnswersPongEvenWithProbeData()
    {
        using var client = await PollingClient.OpenAsync(Server, eio: 3);
        await client.PostAsync("2probe");
        await client.PostAsync("2");
        var packets = new List<string>();
        for (var i = 0; i < 10 && !packets.Contains("3"); i++)
        {
            packets.AddRange(await client.PollAsync());
        }

        Assert.Equal(["3probe", "3"], packets.Where(p => p.StartsWith('3')));
        await client.PostAsync("1");
    }

    [Fact]
    public async Task PollingUpgradesToWebSocketWithProbeUpgradeAndANoopToThePendingPoll()
    {
        using var client = await PollingClient.OpenAsync(Server);
        await client.PostAsync("40");
        Assert.StartsWith("40{\"sid\":", (await client.PollForAsync(2))[0]);

        var pending = client.GetAsync(Cancel);
        await using var socket = await EioSocket.ConnectAsync(Server, 4, client.Sid);
        await socket.SendAsync("2probe");
        Assert.Equal("3probe", await socket.ReceiveAsync());

        // The probe answers the poll that was waiting, with a noop, so that the client can pause polling.
        var flushed = await pending.WaitAsync(WsClient.Timeout, Cancel);
        Assert.Equal(HttpStatusCode.OK, flushed.StatusCode);
        Assert.Equal("6", await flushed.Content.ReadAsStringAsync(Cancel));

        await socket.SendAsync("5");
        await socket.SendAsync("421[\"hello\",\"over websocket\"]");
        Assert.Equal("431[\"over websocket\"]", await socket.ReceiveAsync());

        // Once upgraded, polling is over for this session.
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync(Cancel)).StatusCode);
    }

    [Fact]
    public async Task PacketsQueuedDuringTheProbeComeOverTheWebSocketInOrder()
    {
        using var client = await PollingClient.OpenAsync(Server);
        await client.PostAsync("40");
        await client.PollForAsync(2);
        await using var socket = await EioSocket.ConnectAsync(Server, 4, client.Sid);
        await socket.SendAsync("2probe");
        Assert.Equal("3probe", await socket.ReceiveAsync());

        // Sent by polling before the upgrade packet: their echoes wait in the session's queue.
        await client.PostAsync("42[\"order\",1]", "42[\"order\",2]", "42[\"order\",3]");
        await socket.SendAsync("5");
        await socket.SendAsync("42[\"order\",4]");
        var echoes = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            echoes.Add((await socket.ReceiveAsync())!);
        }

        Assert.Equal(["42[\"echo\",1]", "42[\"echo\",2]", "42[\"echo\",3]", "42[\"echo\",4]"], echoes);
    }

    [Fact]
    public async Task TheServerPingsAndAClientThatStopsAnsweringIsClosedAfterThePingTimeout()
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server);
        await using var _socket = socket;
        fixture.Clock.Advance(TimeSpan.FromSeconds(25));
        Assert.Equal("2", await socket.ReceiveAsync());
        await socket.SendAsync("3");
        await socket.SendAsync("42[\"still\",\"here\"]");
        Assert.Equal("42[\"echo\",\"here\"]", await socket.ReceiveAsync());

        // A pong put the next ping an interval later; the next ping goes unanswered.
        fixture.Clock.Advance(TimeSpan.FromSeconds(20));
        fixture.Clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("2", await socket.ReceiveAsync());
        fixture.Clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Empty(await socket.ReceiveUntilClosedAsync());
    }

    [Fact]
    public async Task AnEngineIoV3ClientThatStopsPingingIsClosed()
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server, eio: 3);
        await using var _socket = socket;
        fixture.Clock.Advance(TimeSpan.FromSeconds(40));
        await socket.SendAsync("2");
        Assert.Equal("3", await socket.ReceiveAsync());
        fixture.Clock.Advance(TimeSpan.FromSeconds(40));
        await socket.SendAsync("42[\"alive\",1]");
        Assert.Equal("42[\"echo\",1]", await socket.ReceiveAsync());
        fixture.Clock.Advance(TimeSpan.FromSeconds(6));
        Assert.Empty(await socket.ReceiveUntilClosedAsync());
    }

    [Fact]
    public async Task WithoutASocketIoConnectTheSessionIsClosedAfterTheConnectTimeout()
    {
        await using var socket = await EioSocket.ConnectAsync(Server);
        Assert.StartsWith("0{", await socket.ReceiveAsync());
        fixture.Clock.Advance(TimeSpan.FromSeconds(25));
        Assert.Equal("2", await socket.ReceiveAsync());
        await socket.SendAsync("3");
        fixture.Clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(["1"], await socket.ReceiveUntilClosedAsync());
    }

    [Theory]
    [InlineData(4, "44/admin,{\"message\":\"Invalid namespace\"}")]
    [InlineData(3, "44/admin,\"Invalid namespace\"")]
    public async Task AnUnknownNamespaceIsRefusedAndTheConnectionGoesOn(int eio, string refusal)
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server, eio);
        await using var _socket = socket;
        await socket.SendAsync("40/admin,");
        Assert.Equal(refusal, await socket.ReceiveAsync());
        await socket.SendAsync("42[\"after\",\"refusal\"]");
        Assert.Equal("42[\"echo\",\"refusal\"]", await socket.ReceiveAsync());
    }

    [Theory]
    [InlineData("42not json")]
    [InlineData("42{\"event\":1}")]
    [InlineData("42[]")]
    [InlineData("42[1]")]
    [InlineData("42[\"a\"] trailing")]
    [InlineData("47")]
    [InlineData("4")]
    [InlineData("9")]
    [InlineData("")]
    [InlineData("44{\"message\":\"no\"}")]
    [InlineData("42/other,[\"a\"]")]
    [InlineData("40\"not an object\"")]
    [InlineData("43[1]")]
    public async Task AMalformedPacketClosesTheConnection(string packet)
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server);
        await using var _socket = socket;
        await socket.SendAsync(packet);
        var before = await socket.ReceiveUntilClosedAsync();
        Assert.All(before, p => Assert.Equal("1", p));
    }

    [Fact]
    public async Task AnEventBeforeTheConnectClosesTheConnection()
    {
        await using var socket = await EioSocket.ConnectAsync(Server);
        Assert.StartsWith("0{", await socket.ReceiveAsync());
        await socket.SendAsync("42[\"early\"]");
        Assert.Equal(["1"], await socket.ReceiveUntilClosedAsync());
    }

    [Theory]
    [InlineData(4)]
    [InlineData(3)]
    public async Task AnEventWithAnAckIdIsAnsweredThroughTheAcknowledgement(int eio)
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server, eio);
        await using var _socket = socket;
        await socket.SendAsync("4212[\"client.to.instance\",{\"action\":\"x\",\"parameters\":{}},\"extra\"]");
        Assert.Equal("4312[{\"action\":\"x\",\"parameters\":{}}]", await socket.ReceiveAsync());
        await socket.SendAsync("42[\"no-ack\"]");
        Assert.Equal("42[\"echo\",null]", await socket.ReceiveAsync());
    }

    [Fact]
    public async Task ABinaryEventIsDeliveredFlaggedAfterItsAttachments()
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server);
        await using var _socket = socket;
        await socket.SendAsync("452-7[\"upload\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
        await socket.SendAsync([1, 2, 3], WebSocketMessageType.Binary);
        await socket.SendAsync([4], WebSocketMessageType.Binary);
        Assert.Equal("42[\"binary\",{\"name\":\"upload\",\"ackId\":7}]", await socket.ReceiveAsync());

        // A binary acknowledgement is flagged too; the connection goes on.
        await socket.SendAsync("460-3[\"plain\"]");
        Assert.Equal("42[\"binary\",{\"name\":\"\",\"ackId\":null}]", await socket.ReceiveAsync());
        await socket.SendAsync("42[\"then\",true]");
        Assert.Equal("42[\"echo\",true]", await socket.ReceiveAsync());
    }

    [Fact]
    public async Task ABinaryEventOverPollingComesAsBase64()
    {
        using var client = await PollingClient.OpenAsync(Server);
        await client.PostAsync("40");
        await client.PollForAsync(2);
        await client.PostAsync("451-[\"upload\",{\"_placeholder\":true,\"num\":0}]", "b" + Convert.ToBase64String([1, 2, 3]));
        Assert.Equal("42[\"binary\",{\"name\":\"upload\",\"ackId\":null}]", (await client.PollForAsync(1))[0]);
        await client.PostAsync("1");
    }

    [Fact]
    public async Task AWebSocketMessageOverMaxPayloadClosesTheConnection()
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server);
        await using var _socket = socket;
        await socket.SendAsync("42[\"big\",\"" + new string('x', SocketIoFixture.MaxPayload) + "\"]");
        await socket.ReceiveUntilClosedAsync();
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, socket.Socket.CloseStatus);
    }

    [Fact]
    public async Task TheServerDisconnectsWithADisconnectPacketThenTheEngineIoClose()
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server);
        await using var _socket = socket;
        await socket.SendAsync("42[\"disconnect-me\"]");
        Assert.Equal(["41", "1"], await socket.ReceiveUntilClosedAsync());
    }

    [Fact]
    public async Task PollingAcrossOriginsIsGrantedToTheCorsOriginsOnly()
    {
        using var http = PollingClient.NewHttp(Server);
        using var allowed = new HttpRequestMessage(HttpMethod.Get, PollingClient.Query(4, "polling"));
        allowed.Headers.Add("Origin", SocketIoFixture.CorsOrigin);
        var granted = await http.SendAsync(allowed, Cancel);
        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        Assert.Equal(SocketIoFixture.CorsOrigin, granted.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("true", granted.Headers.GetValues("Access-Control-Allow-Credentials").Single());

        // Admitted (Protocol:AllowedOrigins) but not a CORS origin: served, without the headers a browser needs.
        using var other = new HttpRequestMessage(HttpMethod.Get, PollingClient.Query(4, "polling"));
        other.Headers.Add("Origin", SocketIoFixture.AdmittedOrigin);
        var plain = await http.SendAsync(other, Cancel);
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.False(plain.Headers.Contains("Access-Control-Allow-Origin"));

        using var preflight = new HttpRequestMessage(HttpMethod.Options, PollingClient.Query(4, "polling"));
        preflight.Headers.Add("Origin", SocketIoFixture.CorsOrigin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type");
        var answer = await http.SendAsync(preflight, Cancel);
        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
        Assert.Equal(SocketIoFixture.CorsOrigin, answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("POST", answer.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);
        Assert.Equal("content-type", answer.Headers.GetValues("Access-Control-Allow-Headers").Single());
    }

    [Fact]
    public async Task AdmissionRefusesAForeignOriginAsOnTheRawWebSocket()
    {
        using var http = PollingClient.NewHttp(Server);
        using var request = new HttpRequestMessage(HttpMethod.Get, PollingClient.Query(4, "polling"));
        request.Headers.Add("Origin", "http://evil.example");
        var refused = await http.SendAsync(request, Cancel);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("forbidden", JsonDocument.Parse(await refused.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("code").GetString());

        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", "http://evil.example");
        var failure = await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(EioSocket.Uri(Server, 4), Cancel));
        Assert.Contains("403", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APollingSessionHoldsOneAdmissionSlotFromHandshakeToClose()
    {
        var admission = fixture.Server.Services.GetRequiredService<EdgeAdmission>();
        var baseline = await SettledOpenAsync(admission);
        using var client = await PollingClient.OpenAsync(Server);
        Assert.Equal(baseline + 1, admission.Open);
        await client.PostAsync("40");
        await client.PollForAsync(2);
        await client.PostAsync("42[\"a\",1]");
        await client.PollForAsync(1);
        Assert.Equal(baseline + 1, admission.Open);

        await client.PostAsync("1");
        Assert.Equal(baseline, admission.Open);
    }

    /// <summary>The count of open connections once earlier tests' sockets have finished closing (bounded wait).</summary>
    private static async Task<int> SettledOpenAsync(EdgeAdmission admission)
    {
        for (var i = 0; i < 100 && admission.Open != 0; i++)
        {
            await Task.Delay(50, Cancel);
        }

        return admission.Open;
    }
}
