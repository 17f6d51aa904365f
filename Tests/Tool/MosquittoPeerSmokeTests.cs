using Benchmarks;
using Benchmarks.Mqtt;
using Tests.Infrastructure;
using static Tests.Tool.ToolRun;

namespace Tests.Tool;

/// <summary>
/// The Mosquitto peer of the load tool at a tiny size: the tool starts the gateway and its own broker, runs
/// a scenario on both, and prints the comparison. Needs Debian's mosquitto package (CI installs it); without
/// it these tests fail and say how to install it. Only behaviour is asserted, never a speed or a size.
/// </summary>
public sealed class MosquittoPeerSmokeTests
{
    public static TheoryData<string[], string[]> Scenarios => new()
    {
        { ["connect-login", "--clients", "4", "--seconds", "1", "--warmup", "0", "--count", "20", "--rounds", "1", "--concurrency", "4"], ["gateway", "ceiling", "mosquitto"] },
        { ["drain", "--clients", "20", "--pending", "5", "--senders", "2", "--concurrency", "10"], ["gateway", "mosquitto"] },
        { ["online-delivery", "--clients", "20", "--senders", "2", "--responses", "200", "--warmup-responses", "100", "--window", "8", "--concurrency", "10"], ["gateway", "mosquitto"] },
        { ["hold", "--sessions", "30", "--rounds", "1", "--concurrency", "10"], ["gateway", "ceiling", "mosquitto"] },
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task ScenarioRunsCleanOnTheGatewayAndOnMosquitto(string[] arguments, string[] servers)
    {
        var results = await RunAsync([.. arguments, "--server", HostProcess.BuiltDll("WebSocketFrontend"), "--mosquitto", "mosquitto"]);

        Assert.Equal(servers, results.Select(r => r.Server));
        Assert.All(results, r =>
        {
            Assert.False(r.Failed, $"{r.Server} {r.Scenario}: {string.Join(", ", r.Errors.Select(e => $"{e.Key}={e.Value}"))}");
            Assert.True(r.Ops > 0, $"{r.Server} {r.Scenario} got nothing done");
            Assert.Empty(r.Errors);
        });

        if (arguments[0] is "drain" or "online-delivery" or "connect-login")
        {
            // Every server is a process the tool started: its CPU over the measured responses (sessions) is read.
            Assert.All(results, r => Assert.True(r.ServerCpuSeconds >= 0 && r.CpuMicrosecondsPerResponse is not null, $"{r.Server}: no server CPU"));
        }

        var report = Print(results);
        Assert.Contains($"| {arguments[0]} | mosquitto |", report);
        Assert.Contains("server CPU µs/response", report);
    }

    [Fact]
    public void AMosquittoThatIsNotInstalledIsRefusedWithHowToInstallIt()
    {
        Assert.False(BenchmarkOptions.TryParse(["drain", "--mosquitto", "/nonexistent/mosquitto"], out _, out var problem));
        Assert.Contains("apt-get install -y mosquitto", problem);
    }

    [Fact]
    public void TheBrokerIsInstalledOnThisMachine()
    {
        // The other tests need it; this one says why they fail when it is missing.
        Assert.True(MosquittoProcess.Find("mosquitto") is not null, MosquittoProcess.NotInstalled("mosquitto"));
    }

    private static string Print(List<ScenarioResult> results)
    {
        using var output = new StringWriter();
        Report.Print(results, output);
        return output.ToString();
    }
}
