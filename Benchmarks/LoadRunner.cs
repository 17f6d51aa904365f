using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Net.WebSockets;

namespace Benchmarks;

/// <summary>
/// Runs one scenario: prepares every worker, then each worker repeats the operation (one outstanding
/// at a time) through the warm-up and the measured window, stopping at the deadline or at the count cap.
/// </summary>
/// With the server's process, the CPU it used from the end of the warm-up until the last operation ended is
/// reported per measured operation.
public sealed class LoadRunner(Scenario scenario, BenchmarkOptions options, ServerProcess? server = null) : IBenchmarkRun
{
    /// <summary>The bound on every single wait: connect, request, reply, close.</summary>
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The pause of a worker after a failed operation.</summary>
    private static readonly TimeSpan _backoff = TimeSpan.FromMilliseconds(100);

    /// <summary>The most one operation can wait: open, request and close each take up to <see cref="OperationTimeout"/>.</summary>
    private static readonly TimeSpan _operationBound = OperationTimeout * 3 + _backoff;

    private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);

    /// <summary>The end of the first seconds of load (<see cref="ScenarioResult.StartSeconds"/>), and the operations that succeeded in them.</summary>
    private long _startWindowEnd;
    private long _startOps;

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var workers = Enumerable.Range(0, options.Clients).Select(i => new Worker(i, options.Url, OperationTimeout)).ToArray();
        try
        {
            Console.Error.WriteLine($"{scenario.Name}: preparing {workers.Length} clients on {options.Url}");
            var prepared = await Task.WhenAll(workers.Select(w => PrepareAsync(w, cancellationToken)))
                .WaitAsync(_operationBound * 2, cancellationToken);

            Console.Error.WriteLine($"{scenario.Name}: {options.Warmup.TotalSeconds} s warm-up, then {options.Duration.TotalSeconds} s measured");
            var clock = new MeasuredWindow(options);
            _startWindowEnd = clock.Start + MeasuredWindow.Ticks(TimeSpan.FromSeconds(ScenarioResult.StartSeconds));
            var cpuAtWindow = server is null ? null : clock.ReadAtWindowStartAsync(server.CpuSeconds, cancellationToken);
            var latencies = await Task.WhenAll(workers.Where((_, i) => prepared[i]).Select(w => LoopAsync(w, clock, cancellationToken)))
                .WaitAsync(options.Warmup + options.Duration + _operationBound * 2, cancellationToken);
            var cpu = cpuAtWindow is null ? (double?)null : server!.CpuSeconds() - await cpuAtWindow;

            foreach (var (code, count) in scenario.Verify())
            {
                _errors.AddOrUpdate(code, count, (_, n) => n + count);
            }

            var result = ScenarioResult.From(scenario.Name, options.Clients, clock.Elapsed, [.. latencies.SelectMany(l => l)], _errors) with
            {
                ServerCpuSeconds = cpu is { } c ? Math.Round(c, 3) : null,
            };

            // The first seconds count only when the load lasted that long: warm-up and measured window together.
            return options.Warmup + options.Duration >= TimeSpan.FromSeconds(ScenarioResult.StartSeconds)
                ? result with { StartOpsPerSecond = Math.Round(Interlocked.Read(ref _startOps) / ScenarioResult.StartSeconds, 1) }
                : result;
        }
        finally
        {
            await Task.WhenAll(workers.Select(w => w.DisposeAsync().AsTask()));
        }
    }

    /// <summary>False when the worker could not be set up; it then sits the run out.</summary>
    private async Task<bool> PrepareAsync(Worker worker, CancellationToken cancellationToken)
    {
        var failure = await AttemptAsync(worker, scenario.PrepareAsync, cancellationToken);
        if (failure is not null)
        {
            CountError($"prepare:{failure}");
        }

        return failure is null;
    }

    /// <summary>Repeats the operation until the deadline or the count cap; returns the measured latencies in timestamp ticks.</summary>
    private async Task<List<long>> LoopAsync(Worker worker, MeasuredWindow clock, CancellationToken cancellationToken)
    {
        var latencies = new List<long>();
        while (await clock.NextAsync(cancellationToken) is var (started, measured))
        {
            var failure = await AttemptAsync(worker, scenario.RunOnceAsync, cancellationToken);
            var ended = clock.Completed(measured);
            if (failure is null)
            {
                if (ended < _startWindowEnd)
                {
                    Interlocked.Increment(ref _startOps);
                }

                if (measured)
                {
                    latencies.Add(ended - started);
                }
            }
            else
            {
                // Whatever failed, a server in trouble is not hammered in a tight loop.
                CountError(failure);
                await Task.Delay(_backoff, cancellationToken);
            }
        }

        return latencies;
    }

    /// <summary>Runs one step; returns null on success or the code of the failure.</summary>
    private static async Task<string?> AttemptAsync(Worker worker, Func<Worker, CancellationToken, Task> step, CancellationToken cancellationToken)
    {
        string failure;
        try
        {
            await step(worker, cancellationToken);
            return null;
        }
        catch (RequestFailedException ex) when (!ex.ConnectionBroken)
        {
            // The server answered with an error: the socket is still in step and is kept.
            return ex.Code;
        }
        catch (RequestFailedException ex)
        {
            failure = ex.Code;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            failure = "timeout";
        }
        catch (WebSocketException ex)
        {
            failure = Describe(ex);
        }

        await worker.DropConnectionAsync();
        return failure;
    }

    /// <summary>The socket error underneath when there is one (connection refused, reset), which says more than "Faulted".</summary>
    internal static string Describe(WebSocketException exception)
    {
        for (Exception? inner = exception; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return $"socket:{socket.SocketErrorCode}";
            }
        }

        return $"websocket:{exception.WebSocketErrorCode}";
    }

    private void CountError(string code) => _errors.AddOrUpdate(code, 1, static (_, n) => n + 1);
}
