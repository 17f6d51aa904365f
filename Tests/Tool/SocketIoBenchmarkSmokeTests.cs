using Benchmarks;
using Tests.Infrastructure;
using static Tests.Tool.ToolRun;

namespace Tests.Tool;

/// <summary>
/// The load tool's Socket.IO client (Engine.IO v4 over a direct WebSocket at <c>/socket.io/</c>) in the three
/// scenarios that compare it with raw <c>/ws</c>, at a tiny size against the real server. Only behaviour is
/// asserted (every row present and clean, nothing lost); never a speed or a size.
/// </summary>
public sealed class SocketIoBenchmarkSmokeTests
{
    [Fact]
    public async Task ConnectLoginRunsOverBothTransportsAndTheCeilingEachRound()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);

        var results = await RunAsync(
            ["connect-login", "--transport", "both", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "20", "--rounds", "2", "--url", server.WebSocketUri.ToString()]);

        Assert.Equal(["gateway", "socket.io", "ceiling", "gateway", "socket.io", "ceiling"], results.Select(r => r.Server));
        Assert.Equal([1, 1, 1, 2, 2, 2], results.Select(r => r.Round ?? 0));
        AssertClean(results);
    }

    [Fact]
    public async Task OnlineDeliveryOverSocketIoDeliversEveryResponseOnce()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "100000",
            ["Protocol:RequestBurst"] = "100000",
            ["Protocol:ClientSend"] = "any",
            ["Limits:Enabled"] = "false",
        });

        var results = await RunAsync(
            ["online-delivery", "--transport", "both", "--clients", "20", "--senders", "2", "--responses", "200", "--warmup-responses", "100",
             "--window", "8", "--concurrency", "10", "--url", server.WebSocketUri.ToString()]);

        Assert.Equal(["gateway", "socket.io"], results.Select(r => r.Server));
        Assert.All(results, r => Assert.Equal(200, r.Responses));
        AssertClean(results);
    }

    [Fact]
    public async Task HoldKeepsSocketIoSessionsOpenBesideRawOnesAndTheCeiling()
    {
        var results = await RunAsync(
            ["hold", "--transport", "both", "--sessions", "30", "--rounds", "1", "--concurrency", "10", "--server", HostProcess.BuiltDll("WebSocketFrontend")]);

        Assert.Equal(["gateway", "socket.io", "ceiling"], results.Select(r => r.Server));
        Assert.All(results, r =>
        {
            Assert.Equal(30, r.Ops);
            Assert.True(r.RssAfterBytes > 0);
            Assert.NotNull(r.BytesPerSession);
        });
        AssertClean(results);
    }

    [Fact]
    public void AnUnknownTransportIsRefused()
    {
        Assert.False(BenchmarkOptions.TryParse(["connect-login", "--transport", "polling"], out _, out var problem));
        Assert.Contains("--transport", problem);
    }

    [Fact]
    public void TheSocketIoEndpointIsBesideTheRawOne()
    {
        var endpoint = SocketIoFraming.EndpointBeside(new Uri("ws://127.0.0.1:5123/ws"));

        Assert.Equal("ws://127.0.0.1:5123/socket.io/?EIO=4&transport=websocket", endpoint.ToString());
        Assert.True(SocketIoFraming.Speaks(endpoint));
        Assert.False(SocketIoFraming.Speaks(new Uri("ws://127.0.0.1:5123/ws")));
    }

    private static void AssertClean(List<ScenarioResult> results)
    {
        Assert.NotEmpty(results);
        Assert.All(results, r =>
        {
            Assert.False(r.Failed, $"{r.Scenario} {r.Server}: {string.Join(", ", r.Errors.Select(e => $"{e.Key}={e.Value}"))}");
            Assert.True(r.Ops > 0, $"{r.Scenario} {r.Server} got nothing done");
            Assert.Empty(r.Errors);
        });
    }
}
