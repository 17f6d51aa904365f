namespace Benchmarks;

/// <summary>One run that ends in one result row: a looping scenario under <see cref="LoadRunner"/>, or a phased one.</summary>
public interface IBenchmarkRun
{
    /// <summary>The runs of one scenario against the server at <see cref="BenchmarkOptions.Url"/>, in order.</summary>
    /// <param name="options">The scenario's options; <see cref="BenchmarkOptions.Command"/> names it.</param>
    /// <param name="process">The server's process when the tool started it: drain and online-delivery then read its CPU.</param>
    static IReadOnlyList<IBenchmarkRun> For(BenchmarkOptions options, ServerProcess? process = null) => options.Command switch
    {
        "drain" => [new DrainScenario(options, process)],
        "online-delivery" => [new OnlineDeliveryScenario(options, process)],
        _ => [.. Scenario.For(options.Command).Select(s => new LoadRunner(s, options))],
    };

    Task<ScenarioResult> RunAsync(CancellationToken cancellationToken);
}
