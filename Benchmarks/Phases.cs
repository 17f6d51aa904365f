using System.Diagnostics;

namespace Benchmarks;

/// <summary>A client the tool registered: the token it logs in or sends with, and its id.</summary>
public sealed record BenchClient(string Token, int Id);

/// <summary>
/// The steps the phased scenarios share: registering many clients and fanning work out over a bounded
/// number of lanes. Every phase stops taking work at its time limit, and its wait is bounded beyond that.
/// </summary>
public static class Phases
{
    /// <summary>How long a lane may still take once the phase limit has passed: one operation of three steps.</summary>
    private static readonly TimeSpan _overrun = LoadRunner.OperationTimeout * 3;

    /// <summary>
    /// Registers <paramref name="count"/> clients over <paramref name="lanes"/> sockets; an entry stays
    /// null when its registration failed (counted as <c>register:code</c>).
    /// </summary>
    public static async Task<BenchClient?[]> RegisterAsync(
        Uri url, int count, int lanes, string prefix, ErrorCounts errors, TimeSpan limit, CancellationToken cancellationToken)
    {
        var clients = new BenchClient?[count];
        await ForEachLaneAsync(count, lanes, limit, errors, "register", async (next, phase) =>
        {
            ProtocolConnection? connection = null;
            try
            {
                // Each pass takes a new index, so all lanes together make at most `count` passes.
                for (var i = next(); i >= 0 && !phase.IsCancellationRequested; i = next())
                {
                    try
                    {
                        connection ??= await ProtocolConnection.OpenAsync(url, LoadRunner.OperationTimeout, phase);
                        var (token, id) = await connection.RegisterAsync($"{prefix}-{i}", phase);
                        clients[i] = new BenchClient(token, id);
                    }
                    catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
                    {
                        errors.Add($"register:{code}");
                        if (ErrorCounts.BreaksConnection(ex) && connection is not null)
                        {
                            await connection.DisposeAsync();
                            connection = null;
                        }
                    }
                }
            }
            finally
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync();
                }
            }
        }, cancellationToken);
        return clients;
    }

    /// <summary>
    /// Runs <paramref name="body"/> once for each index below <paramref name="count"/>, at most
    /// <paramref name="lanes"/> at a time; the body counts its own failures. False when the phase ran
    /// out of time before every index was taken.
    /// </summary>
    public static Task<bool> ForEachAsync(
        int count, int lanes, TimeSpan limit, ErrorCounts errors, string phaseName,
        Func<int, CancellationToken, Task> body, CancellationToken cancellationToken) =>
        ForEachLaneAsync(count, lanes, limit, errors, phaseName, async (next, phase) =>
        {
            for (var i = next(); i >= 0 && !phase.IsCancellationRequested; i = next())
            {
                await body(i, phase);
            }
        }, cancellationToken);

    /// <summary>Closes every connection still open, <see cref="BenchmarkOptions.Concurrency"/> at a time.</summary>
    public static Task CloseAllAsync(PipelinedConnection?[] connections, BenchmarkOptions options, ErrorCounts errors, CancellationToken cancellationToken) =>
        ForEachAsync(connections.Length, options.Concurrency, options.Duration, errors, "close", async (i, _) =>
        {
            if (connections[i] is { } connection)
            {
                connections[i] = null;
                await connection.DisposeAsync();
            }
        }, cancellationToken);

    /// <summary>A progress line on standard error, in wall-clock time to line the phases up with the server's log.</summary>
    public static void Log(string scenario, string message) =>
        Console.Error.WriteLine(FormattableString.Invariant($"{DateTime.Now:HH:mm:ss.fff} {scenario}: {message}"));

    /// <summary>Raises <paramref name="target"/> to <paramref name="value"/> unless it is already higher.</summary>
    public static void RaiseTo(ref long target, long value)
    {
        var seen = Interlocked.Read(ref target);
        while (value > seen)
        {
            var previous = Interlocked.CompareExchange(ref target, value, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

    /// <summary>The seconds between two stopwatch timestamps.</summary>
    public static double Seconds(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    /// <summary>Milliseconds of stopwatch ticks, rounded for a log line.</summary>
    public static double Ms(long ticks) => Math.Round(ticks * 1000.0 / Stopwatch.Frequency, 2);

    /// <summary>Nearest-rank percentile of unsorted stopwatch ticks, in milliseconds (0 for none).</summary>
    public static double PercentileMs(IReadOnlyCollection<long> ticks, double fraction)
    {
        if (ticks.Count == 0)
        {
            return 0;
        }

        var sorted = ticks.Order().ToArray();
        return Ms(sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)]);
    }

    /// <summary>Lanes that share one index counter: <c>next()</c> hands out each index once, then -1.</summary>
    private static async Task<bool> ForEachLaneAsync(
        int count, int lanes, TimeSpan limit, ErrorCounts errors, string phaseName,
        Func<Func<int>, CancellationToken, Task> lane, CancellationToken cancellationToken)
    {
        using var phase = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        phase.CancelAfter(limit);
        var taken = -1;
        var cutShort = 0;
        int Next()
        {
            var i = Interlocked.Increment(ref taken);
            return i < count ? i : -1;
        }

        async Task RunLaneAsync()
        {
            try
            {
                await lane(Next, phase.Token);
            }
            catch (OperationCanceledException) when (phase.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // The phase limit passed: the lane stops, and the phase reports the timeout below.
                Volatile.Write(ref cutShort, 1);
            }
        }

        var running = Task.WhenAll(Enumerable.Range(0, Math.Clamp(lanes, 1, Math.Max(count, 1))).Select(_ => RunLaneAsync()));
        try
        {
            await running.WaitAsync(limit + _overrun, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Every step inside is bounded, so this means a bug; the run goes on with what is done.
            errors.Add($"{phaseName}:hung");
            return false;
        }

        // Every lane stops on the first index past the end, so a phase that finished took them all.
        var complete = Volatile.Read(ref taken) >= count && Volatile.Read(ref cutShort) == 0;
        if (!complete)
        {
            errors.Add($"{phaseName}:phase_timeout");
        }

        return complete;
    }
}
