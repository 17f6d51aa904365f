using Benchmarks;
using Tests.Infrastructure;

namespace Tests.Tool;

/// <summary>
/// Every scenario of the load tool, at a tiny size, against the real server: the benchmark cannot
/// rot unnoticed. Only behaviour is asserted (nothing lost, nothing refused); never a speed.
/// </summary>
public sealed class BenchmarkSmokeTests
{
    public static TheoryData<string[]> Scenarios => new()
    {
        new[] { "register", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "40" },
        new[] { "login", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "40" },
        new[] { "drain", "--clients", "20", "--pending", "5", "--senders", "2", "--concurrency", "10" },
        new[] { "online-delivery", "--clients", "20", "--senders", "2", "--responses", "200", "--window", "8", "--concurrency", "10" },
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task ScenarioRunsCleanAtATinySize(string[] arguments)
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "100000",
            ["Protocol:RequestBurst"] = "100000",
        });
        Assert.True(BenchmarkOptions.TryParse([.. arguments, "--url", server.WebSocketUri.ToString()], out var options, out var problem), problem);

        var results = new List<ScenarioResult>();
        foreach (var run in IBenchmarkRun.For(options))
        {
            results.Add(await run.RunAsync(TestContext.Current.CancellationToken));
        }

        Assert.NotEmpty(results);
        Assert.All(results, r =>
        {
            Assert.False(r.Failed, $"{r.Scenario}: {string.Join(", ", r.Errors.Select(e => $"{e.Key}={e.Value}"))}");
            Assert.True(r.Ops > 0, $"{r.Scenario} got nothing done");
            Assert.Empty(r.Errors);
        });
    }
}
