namespace Benchmarks;

/// <summary>One run that ends in one result row: a looping scenario under <see cref="LoadRunner"/>, or a phased one.</summary>
public interface IBenchmarkRun
{
    /// <summary>The runs of one scenario against the server at <see cref="BenchmarkOptions.Url"/>, in order.</summary>
    static IReadOnlyList<IBenchmarkRun> For(BenchmarkOptions options) => options.Command switch
    {
        "drain" => [new DrainScenario(options)],
        "online-delivery" => [new OnlineDeliveryScenario(options)],
        _ => [.. Scenario.For(options.Command).Select(s => new LoadRunner(s, options))],
    };

    Task<ScenarioResult> RunAsync(CancellationToken cancellationToken);
}
