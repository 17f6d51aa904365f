using Benchmarks;

if (!BenchmarkOptions.TryParse(args, out var options, out var problem))
{
    Console.Error.WriteLine(problem);
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };

var results = new List<ScenarioResult>();
try
{
    foreach (var run in IBenchmarkRun.For(options))
    {
        results.Add(await run.RunAsync(stop.Token));
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("Interrupted; results so far:");
}

Report.Print(results, Console.Out);

// A broken guarantee, or a scenario that got nothing done, fails the run for scripts.
return stop.IsCancellationRequested ? 130 : results.Any(r => r.Failed || r.Ops == 0) ? 1 : 0;
