using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;
using WebSocketFrontend.SocketIo;

namespace Tests.SocketIo;

/// <summary>
/// A gateway whose ping interval (5 s) is shorter than its ping timeout (20 s) and connect timeout (30 s), on a
/// fake clock: one timer serves a connection's heartbeat and connect timeout, and each must still come at its time.
/// </summary>
public sealed class ShortPingIntervalFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, new Dictionary<string, string>
        {
            ["SocketIo:PingInterval"] = "00:00:05",
            ["SocketIo:PingTimeout"] = "00:00:20",
            ["SocketIo:ConnectTimeout"] = "00:00:30",
        }, Clock, services => services.AddSingleton<ISocketIoConnectionHandler, EchoHandler>());

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

/// <summary>The heartbeat and the connect timeout when the ping interval is the shortest of the three times.</summary>
public sealed class SocketIoHeartbeatTests(ShortPingIntervalFixture fixture) : IClassFixture<ShortPingIntervalFixture>
{
    private Uri Server => fixture.Server.HttpUri;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task APongBringsTheNextPingAnIntervalLaterThoughThePingTimeoutIsLonger()
    {
        var (socket, _) = await EioSocket.OpenConnectedAsync(Server);
        await using var _socket = socket;
        for (var ping = 0; ping < 3; ping++)
        {
            fixture.Clock.Advance(TimeSpan.FromSeconds(5));
            Assert.Equal("2", await socket.ReceiveAsync());
            await socket.SendAsync("3");

            // The echo comes after the pong was handled: the connection reads in order.
            await socket.SendAsync($"42[\"beat\",{ping}]");
            Assert.Equal($"42[\"echo\",{ping}]", await socket.ReceiveAsync());
        }

        // Unanswered, the next ping closes the connection its timeout later, and not before.
        fixture.Clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("2", await socket.ReceiveAsync());
        fixture.Clock.Advance(TimeSpan.FromSeconds(19));
        await socket.SendAsync("42[\"still\",\"open\"]");
        Assert.Equal("42[\"echo\",\"open\"]", await socket.ReceiveAsync());
        fixture.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(await socket.ReceiveUntilClosedAsync());
    }

    [Fact]
    public async Task ASessionThatAnswersEveryPingIsStillClosedWithoutAConnectAtTheConnectTimeout()
    {
        await using var socket = await EioSocket.ConnectAsync(Server);
        Assert.StartsWith("0{", await socket.ReceiveAsync());
        for (var ping = 0; ping < 5; ping++)
        {
            fixture.Clock.Advance(TimeSpan.FromSeconds(5));
            Assert.Equal("2", await socket.ReceiveAsync());
            await socket.SendAsync("3");

            // Refused at once, after the pong was handled: the connection reads in order.
            await socket.SendAsync("40/admin,");
            Assert.Equal("44/admin,{\"message\":\"Invalid namespace\"}", await socket.ReceiveAsync());
        }

        fixture.Clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(["1"], await socket.ReceiveUntilClosedAsync());
    }

    [Fact]
    public async Task QueryParametersAreReadIgnoringCaseAndEscapesAsBefore()
    {
        using var http = PollingClient.NewHttp(Server);
        var open = await http.GetAsync("/socket.io/?eio=4&Transport=%70olling", Cancel);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        Assert.StartsWith("0{\"sid\":", await open.Content.ReadAsStringAsync(Cancel));

        // A parameter given twice is both values joined, which no version is.
        var doubled = await http.GetAsync("/socket.io/?EIO=4&EIO=4&transport=polling", Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, doubled.StatusCode);
        var body = JsonDocument.Parse(await doubled.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal(5, body.GetProperty("code").GetInt32());
    }
}
