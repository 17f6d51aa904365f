using System.Diagnostics;

namespace Benchmarks;

/// <summary>
/// The clock of a closed-loop run, shared by its workers: a warm-up, then the measured window, each
/// capped at <see cref="BenchmarkOptions.Count"/> operations, and the window's end taken at the last
/// measured completion rather than at the deadline.
/// </summary>
internal sealed class MeasuredWindow
{
    private readonly long _count;
    private readonly long _warmupEnd;
    private readonly long _deadline;
    private long _warmupIssued;
    private long _measuredIssued;
    private long _lastCompletion;

    /// <summary>Starts the warm-up now.</summary>
    public MeasuredWindow(BenchmarkOptions options)
    {
        Start = Stopwatch.GetTimestamp();
        _count = options.Count;
        _warmupEnd = Start + Ticks(options.Warmup);
        _deadline = _warmupEnd + Ticks(options.Duration);
        _lastCompletion = _warmupEnd;
    }

    /// <summary>When the warm-up began, in timestamp ticks.</summary>
    public long Start { get; }

    /// <summary>From the end of the warm-up to the last measured completion.</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_warmupEnd, Interlocked.Read(ref _lastCompletion));

    /// <summary>
    /// The start of a worker's next operation and whether it is measured, or null once the deadline or the
    /// measured cap is reached. A worker whose warm-up share is used up waits here for the measured window.
    /// </summary>
    public async Task<(long Started, bool Measured)?> NextAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            if (started >= _deadline)
            {
                return null;
            }

            var measured = started >= _warmupEnd;
            if (!measured && Interlocked.Increment(ref _warmupIssued) > _count)
            {
                await Task.Delay(Stopwatch.GetElapsedTime(started, _warmupEnd), cancellationToken);
                continue;
            }

            if (measured && Interlocked.Increment(ref _measuredIssued) > _count)
            {
                return null;
            }

            return (started, measured);
        }

        return null;
    }

    /// <summary>Notes an operation's end (a measured one moves the window's end); returns the timestamp.</summary>
    public long Completed(bool measured)
    {
        var ended = Stopwatch.GetTimestamp();
        if (measured)
        {
            Phases.RaiseTo(ref _lastCompletion, ended);
        }

        return ended;
    }

    /// <summary>Reads <paramref name="read"/> (a server's CPU seconds, say) when the measured window begins.</summary>
    public async Task<double> ReadAtWindowStartAsync(Func<double> read, CancellationToken cancellationToken)
    {
        // Never a negative wait: with no warm-up the window has begun, and -1 ms would mean forever.
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _warmupEnd);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }

        return read();
    }

    public static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);
}
