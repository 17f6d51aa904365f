using Benchmarks;
using Tests.Infrastructure;
using static Tests.Tool.ToolRun;

namespace Tests.Tool;

/// <summary>
/// Every scenario of the load tool, at a tiny size, against the real server: the benchmark cannot
/// rot unnoticed. Only behaviour is asserted (nothing lost, nothing refused, every figure present);
/// never a speed or a size.
/// </summary>
public sealed class BenchmarkSmokeTests
{
    public static TheoryData<string[]> Scenarios => new()
    {
        new[] { "register", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "40" },
        new[] { "login", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "40" },
        new[] { "drain", "--clients", "20", "--pending", "5", "--senders", "2", "--concurrency", "10" },
        new[] { "online-delivery", "--clients", "20", "--senders", "2", "--responses", "200", "--warmup-responses", "100", "--window", "8", "--concurrency", "10" },
        new[] { "online-delivery", "--senders-log-in", "no", "--clients", "20", "--senders", "2", "--responses", "200", "--warmup-responses", "100", "--window", "8", "--concurrency", "10" },
    };

    [Theory]
    [InlineData("yes", true)]
    [InlineData("no", false)]
    public void SendersLogInUnlessTold(string given, bool expected)
    {
        Assert.True(BenchmarkOptions.TryParse(["online-delivery"], out var byDefault, out _));
        Assert.True(byDefault.SendersLogIn);
        Assert.True(BenchmarkOptions.TryParse(["online-delivery", "--senders-log-in", given], out var options, out _));
        Assert.Equal(expected, options.SendersLogIn);
    }

    [Fact]
    public async Task AServerThatCannotStartFailsTheRunAfterItsAttempts()
    {
        // The tool's own assembly in the gateway's place: it refuses the gateway's command line and exits at once, every time.
        var notAGateway = typeof(ServerProcess).Assembly.Location;
        var data = Directory.CreateTempSubdirectory("gateway-start-").FullName;
        try
        {
            var failed = await Assert.ThrowsAsync<ServerExitedException>(() => ServerProcess.StartGatewayAsync(notAGateway, data, TestContext.Current.CancellationToken));
            Assert.StartsWith("gateway exited with code ", failed.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public void ASendersLogInOtherThanYesOrNoIsRefused()
    {
        Assert.False(BenchmarkOptions.TryParse(["online-delivery", "--senders-log-in", "maybe"], out _, out var problem));
        Assert.Contains("--senders-log-in", problem);
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task ScenarioRunsCleanAtATinySize(string[] arguments)
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "100000",
            ["Protocol:RequestBurst"] = "100000",
            ["Protocol:ClientSend"] = "any",
            ["Limits:Enabled"] = "false",
        });

        var results = await RunAsync([.. arguments, "--url", server.WebSocketUri.ToString()]);

        Assert.Single(results);
        AssertClean(results);
    }

    [Fact]
    public async Task DrainCountsTheResponsesThatFollowTheLoggedPageAsPushes()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "100000",
            ["Protocol:RequestBurst"] = "100000",

            ["Protocol:ClientSend"] = "any",

            // About eight of the scenario's responses make a page: each queue of 40 comes in five.
            ["Protocol:LoginPageBytes"] = "1024",
        });

        var results = await RunAsync(["drain", "--clients", "10", "--pending", "40", "--senders", "2", "--concurrency", "10", "--url", server.WebSocketUri.ToString()]);

        AssertClean(results);
        Assert.Equal(10 * 40, Assert.Single(results).Responses);
    }

    [Fact]
    public async Task ConnectLoginAlternatesBetweenTheGatewayAndTheCeiling()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);

        var results = await RunAsync(
            ["connect-login", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "20", "--rounds", "2", "--url", server.WebSocketUri.ToString()]);

        Assert.Equal(["gateway", "ceiling", "gateway", "ceiling"], results.Select(r => r.Server));
        Assert.Equal([1, 1, 2, 2], results.Select(r => r.Round ?? 0));
        AssertClean(results);
    }

    [Fact]
    public async Task HoldReadsTheMemoryOfAGatewayItStartsAndOfTheCeiling()
    {
        var results = await RunAsync(
            ["hold", "--sessions", "30", "--rounds", "1", "--concurrency", "10", "--server", HostProcess.BuiltDll("WebSocketFrontend")]);

        Assert.Equal(["gateway", "ceiling"], results.Select(r => r.Server));
        Assert.All(results, r =>
        {
            Assert.Equal(30, r.Ops);
            Assert.NotNull(r.RssBeforeBytes);
            Assert.True(r.RssAfterBytes > 0);
            Assert.NotNull(r.BytesPerSession);
        });
        AssertClean(results);
    }

    [Fact]
    public async Task QueueDepthMeasuresEveryDepthWithTheBytesWritten()
    {
        var results = await RunAsync(
            ["queue-depth", "--clients", "2", "--senders", "2", "--concurrency", "4", "--server", HostProcess.BuiltDll("WebSocketFrontend")]);

        Assert.Equal([10, 100, 1000], results.Select(r => r.Depth ?? 0));
        Assert.All(results, r =>
        {
            Assert.Equal(2, r.Ops);
            Assert.True(r.StorageBytesPerOp > 0, "every enqueue writes to storage");
        });
        AssertClean(results);
    }

    [Fact]
    public void HoldWithoutAServerToStartIsRefused()
    {
        Assert.False(BenchmarkOptions.TryParse(["hold", "--url", "ws://127.0.0.1:5000/ws"], out _, out var problem));
        Assert.Contains("--server", problem);
    }

    private static void AssertClean(List<ScenarioResult> results)
    {
        Assert.NotEmpty(results);
        Assert.All(results, r =>
        {
            Assert.False(r.Failed, $"{r.Scenario}: {string.Join(", ", r.Errors.Select(e => $"{e.Key}={e.Value}"))}");
            Assert.True(r.Ops > 0, $"{r.Scenario} got nothing done");
            Assert.Empty(r.Errors);
        });
    }
}
