using Benchmarks;

namespace Tests.Tool;

/// <summary>Runs the load tool's plan for a command line, as its <c>Main</c> does, and collects the rows.</summary>
internal static class ToolRun
{
    public static async Task<List<ScenarioResult>> RunAsync(string[] arguments)
    {
        Assert.True(BenchmarkOptions.TryParse(arguments, out var options, out var problem), problem);
        var results = new List<ScenarioResult>();
        await foreach (var result in BenchmarkPlan.RunAsync(options, TestContext.Current.CancellationToken))
        {
            results.Add(result);
        }

        return results;
    }
}
