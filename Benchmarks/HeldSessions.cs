using System.Diagnostics;

namespace Benchmarks;

/// <summary>
/// The end of a <c>hold</c> round, whatever server holds the sessions: every held session must still be
/// served once memory has been read, the row is built from the sessions that were, and all are closed.
/// </summary>
internal static class HeldSessions
{
    /// <summary>
    /// Pings every held session; one that fails counts as <c>dropped:&lt;code&gt;</c>. Logs the reading and
    /// returns the round's row: memory per session = (after − before) / sessions still served.
    /// </summary>
    public static async Task<ScenarioResult> ReadAsync<T>(
        HoldReading reading,
        T?[] held,
        long[] latencies,
        Func<T, CancellationToken, Task> ping,
        Func<Exception, CancellationToken, string?> codeOf,
        CancellationToken cancellationToken)
        where T : class
    {
        var open = 0;
        await Phases.ForEachAsync(held.Length, reading.Options.Concurrency, reading.Options.Duration, reading.Errors, "ping", async (i, phase) =>
        {
            if (held[i] is not { } session)
            {
                return;
            }

            try
            {
                await ping(session, phase);
                Interlocked.Increment(ref open);
            }
            catch (Exception ex) when (codeOf(ex, cancellationToken) is { } code)
            {
                reading.Errors.Add($"dropped:{code}");
            }
        }, cancellationToken);

        var (before, after) = (reading.Before, reading.After);
        Phases.Log(reading.LogName, $"resident after: {after / 1048576.0:0.0} MiB with {open} sessions open: {(after - before) / (double)Math.Max(open, 1) / 1024:0.0} KiB per session");
        var measured = latencies.Where((_, i) => held[i] is not null).ToArray();
        return ScenarioResult.From("hold", open, Stopwatch.GetElapsedTime(reading.Started, reading.Opened), measured, reading.Errors.Snapshot()) with
        {
            Server = reading.Server,
            Round = reading.Round,
            RssBeforeBytes = before,
            RssAfterBytes = after,
            BytesPerSession = open == 0 ? null : Math.Round((after - before) / (double)open, 0),
        };
    }

    /// <summary>Closes every session still held.</summary>
    public static Task CloseAsync<T>(T?[] held, BenchmarkOptions options, ErrorCounts errors, Func<T, Task> close, CancellationToken cancellationToken)
        where T : class =>
        Phases.ForEachAsync(held.Length, options.Concurrency, options.Duration, errors, "close", async (i, _) =>
        {
            if (held[i] is { } session)
            {
                held[i] = null;
                await close(session);
            }
        }, cancellationToken);
}

/// <summary>What a <c>hold</c> round measured before its sessions are checked: the two memory readings and when the sessions opened.</summary>
internal sealed record HoldReading(
    BenchmarkOptions Options,
    ErrorCounts Errors,
    string Server,
    int Round,
    string LogName,
    long Before,
    long After,
    long Started,
    long Opened);
