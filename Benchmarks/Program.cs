using Benchmarks;
using Benchmarks.Ceiling;

if (!BenchmarkOptions.TryParse(args, out var options, out var problem))
{
    Console.Error.WriteLine(problem);
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };

if (options.Command == "ceiling")
{
    // A child of the tool, or started by hand; SIGTERM or Ctrl+C stops it.
    await CeilingServer.RunAsync(options.Port, stop.Token);
    return 0;
}

var results = new List<ScenarioResult>();
try
{
    await foreach (var result in BenchmarkPlan.RunAsync(options, stop.Token))
    {
        results.Add(result);
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("Interrupted; results so far:");
}

Report.Print(results, Console.Out);

// A broken guarantee, or a scenario that got nothing done, fails the run for scripts.
return stop.IsCancellationRequested ? 130 : results.Any(r => r.Failed || r.Ops == 0) ? 1 : 0;
