using Benchmarks;
using Tests.Cluster;
using Tests.Infrastructure;
using static Tests.Tool.ToolRun;

namespace Tests.Tool;

/// <summary>
/// The load tool's <c>chaos</c> run at a smoke size: 2 silos and 2 frontends as processes on
/// PostgreSQL, a short burst of mixed traffic, one silo and one frontend killed and started again,
/// storage faults on. Its checks must pass; the stall bound is lifted far above the documented
/// one, since a test asserts behaviour and never the machine's speed.
/// </summary>
[Collection(ProcessClusterCollection.Name)]
public sealed class ChaosSmokeTests
{
    [Fact]
    public async Task AShortChaosRunLosesNothingAndRepeatsNothing()
    {
        DatabaseServer.PostgreSql.Require();
        string[] arguments =
        [
            "chaos", "--seconds", "12", "--clients", "20", "--senders", "1", "--stall-bound", "60",
            "--postgres", DatabaseServer.PostgreSql.AdminConnectionString!,
        ];
        var results = await RunAsync(arguments);

        var chaos = Assert.Single(results);
        Assert.False(chaos.Failed, string.Join(", ", chaos.Errors.Select(e => $"{e.Key}={e.Value}")));
        Assert.True(chaos.Errors.GetValueOrDefault("sent") > 0, "no response was acknowledged");
        Assert.True(chaos.Errors.GetValueOrDefault("ws:sent") > 0 && chaos.Errors.GetValueOrDefault("http:sent") > 0, "both kinds of sender must get through");
        Assert.True(chaos.Clients > 20, "the registrations during the run must have added clients");
    }

    [Fact]
    public async Task AScenarioRunsOnAClusterTheToolStarts()
    {
        DatabaseServer.PostgreSql.Require();
        string[] arguments =
        [
            "online-delivery", "--cluster", "1", "--clients", "10", "--senders", "1", "--responses", "20",
            "--warmup-responses", "0", "--concurrency", "10", "--seconds", "60",
            "--postgres", DatabaseServer.PostgreSql.AdminConnectionString!,
        ];
        var results = await RunAsync(arguments);

        var delivery = Assert.Single(results);
        Assert.False(delivery.Failed, string.Join(", ", delivery.Errors.Select(e => $"{e.Key}={e.Value}")));
        Assert.Equal(20, delivery.Ops);
    }

    [Theory]
    [InlineData("hold", "--cluster", "2", "--postgres", "Host=127.0.0.1;Username=u;Password=p")]
    [InlineData("register", "--cluster", "2", "--server", "WebSocketFrontend.dll", "--postgres", "Host=127.0.0.1;Username=u;Password=p")]
    [InlineData("register", "--cluster", "5", "--postgres", "Host=127.0.0.1;Username=u;Password=p")]
    [InlineData("register", "--cluster", "2", "--postgres", "Host=db.example.com;Username=u;Password=p")]
    public void AClusterRunThatCannotBeMadeIsRefused(params string[] arguments)
    {
        Assert.False(BenchmarkOptions.TryParse(arguments, out _, out var problem));
        Assert.False(string.IsNullOrWhiteSpace(problem));
    }

    [Fact]
    public void ChaosWithoutADatabaseOrWithARemoteOneIsRefused()
    {
        Assert.False(BenchmarkOptions.TryParse(["chaos", "--postgres", "Host=db.example.com;Username=u;Password=p"], out _, out var remote));
        Assert.Contains("this machine", remote);
    }
}
