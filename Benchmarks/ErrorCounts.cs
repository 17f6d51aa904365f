using System.Collections.Concurrent;
using System.Net.WebSockets;

namespace Benchmarks;

/// <summary>Failures by code, counted from many tasks at once.</summary>
public sealed class ErrorCounts
{
    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

    public void Add(string code, long count = 1)
    {
        if (count > 0)
        {
            _counts.AddOrUpdate(code, count, (_, n) => n + count);
        }
    }

    public IReadOnlyDictionary<string, long> Snapshot() => _counts.ToDictionary(StringComparer.Ordinal);

    /// <summary>
    /// The code of a failed request or socket: the server's error code, ours, or the socket error
    /// underneath; null for anything else, and for the run's own cancellation, which must propagate.
    /// </summary>
    public static string? CodeOf(Exception exception, CancellationToken run) => exception switch
    {
        RequestFailedException failed => failed.Code,
        OperationCanceledException when !run.IsCancellationRequested => "timeout",
        WebSocketException socket => LoadRunner.Describe(socket),
        _ => null,
    };

    /// <summary>True when the socket of a failed request can no longer be trusted and must be replaced.</summary>
    public static bool BreaksConnection(Exception exception) => exception is not RequestFailedException { ConnectionBroken: false };
}
