using System.Diagnostics;

namespace Benchmarks;

/// <summary>
/// What one enqueue costs as a queue grows. Three groups of <c>--clients</c> offline recipients have
/// their queues filled to 9, 99 and 999 responses; then one sender socket, one request at a time,
/// sends each recipient one more response (so each lands as the 10th, 100th or 1,000th), taking the
/// groups in turn so that a noisy moment on the machine falls on all three alike. Each send is timed,
/// and, when the tool started the server, the bytes the server wrote to storage meanwhile are read
/// from /proc. A row per depth; the summary compares the deepest with the shallowest.
/// </summary>
public sealed class QueueDepthScenario(BenchmarkOptions options, ServerProcess? process) : IBenchmarkRun
{
    /// <summary>The depths measured: the measured response is the queue's 10th, 100th, 1,000th.</summary>
    public static readonly int[] Depths = [10, 100, 1000];

    private readonly ErrorCounts _errors = new();

    public string Name => "queue-depth";

    /// <summary>One row per depth, shallowest first.</summary>
    public async Task<IReadOnlyList<ScenarioResult>> RunAllAsync(CancellationToken cancellationToken)
    {
        var k = options.Clients;
        Log($"registering {Depths.Length} × {k} recipients and {options.Senders} senders on {options.Url}");
        var registered = await Phases.RegisterAsync(options.Url, (Depths.Length * k) + options.Senders, options.Concurrency, "queue-depth", _errors, options.Duration, cancellationToken);
        var senders = registered[(Depths.Length * k)..].OfType<BenchClient>().ToArray();
        if (senders.Length == 0)
        {
            Log("no sender could register; nothing to measure");
            return [.. Depths.Select(d => Row(d, [], []))];
        }

        // Group g is recipients g*k .. g*k+k-1.
        BenchClient? Recipient(int group, int i) => registered[(group * k) + i];
        await FillAsync(k, Recipient, senders, cancellationToken);

        var latencies = Depths.Select(_ => new List<long>()).ToArray();
        var bytes = Depths.Select(_ => new List<long>()).ToArray();
        Log($"measuring: {k} sends per depth, one at a time, the depths in turn");
        await using var connection = await PipelinedConnection.OpenAsync(options.Url, LoadRunner.OperationTimeout, 1, (Depths.Length * k) + 16, null, cancellationToken);
        var deadline = Stopwatch.GetTimestamp() + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
        for (var i = 0; i < k && Stopwatch.GetTimestamp() < deadline; i++)
        {
            for (var turn = 0; turn < Depths.Length; turn++)
            {
                // Rotate which depth goes first, so none always follows another.
                var g = (i + turn) % Depths.Length;
                if (Recipient(g, i) is not { } recipient)
                {
                    continue;
                }

                var written = process?.StorageBytesWritten();
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var (parameters, _) = await SendAsync(connection, senders[0].Token, recipient.Id, Depths[g], cancellationToken);
                    var ended = Stopwatch.GetTimestamp();
                    if (parameters.GetProperty("delivered").GetString() != "queued")
                    {
                        _errors.Add("delivered_online");
                    }

                    latencies[g].Add(ended - started);
                    if (written is { } from && process?.StorageBytesWritten() is { } to)
                    {
                        bytes[g].Add(to - from);
                    }
                }
                catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
                {
                    _errors.Add($"measure:{code}");
                    if (ErrorCounts.BreaksConnection(ex))
                    {
                        return [.. Depths.Select((d, g) => Row(d, latencies[g], bytes[g]))];
                    }
                }
            }
        }

        return [.. Depths.Select((d, g) => Row(d, latencies[g], bytes[g]))];
    }

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken) => (await RunAllAsync(cancellationToken))[^1];

    /// <summary>Fills each recipient of group g to Depths[g] − 1 responses, pipelined over the sender sockets.</summary>
    private async Task FillAsync(int k, Func<int, int, BenchClient?> recipient, BenchClient[] senders, CancellationToken cancellationToken)
    {
        var targets = Enumerable.Range(0, Depths.Length)
            .SelectMany(g => Enumerable.Range(0, k).Select(i => (Recipient: recipient(g, i), Count: Depths[g] - 1)))
            .Where(t => t.Recipient is not null)
            .ToArray();
        var sends = targets.Sum(t => (long)t.Count);
        Log($"filling {targets.Length} queues ({sends} sends) from {senders.Length} sender sockets, window {options.Window}");
        var started = Stopwatch.GetTimestamp();
        await Phases.ForEachAsync(senders.Length, senders.Length, options.Duration, _errors, "fill", async (s, phase) =>
        {
            var mine = targets.Where((_, t) => t % senders.Length == s).ToArray();
            try
            {
                await using var connection = await PipelinedConnection.OpenAsync(
                    options.Url, LoadRunner.OperationTimeout, options.Window, mine.Sum(t => (long)t.Count) + 16, null, phase);

                // Round by round, so consecutive sends go to different queues.
                for (var n = 0; n < Depths[^1] && !phase.IsCancellationRequested; n++)
                {
                    foreach (var (to, count) in mine)
                    {
                        if (n < count)
                        {
                            await connection.SendAsync("send", (Token: senders[s].Token, To: to!.Id, K: n), static (w, q) => WriteSend(w, q.Token, q.To, q.K), reply =>
                            {
                                if (reply.Code is not null || reply.Action != "sent")
                                {
                                    _errors.Add($"fill:{reply.Code ?? $"unexpected_{reply.Action}"}");
                                }
                            }, phase);
                        }
                    }
                }

                if (!await connection.WhenIdleAsync(LoadRunner.OperationTimeout, phase))
                {
                    _errors.Add("fill:reply_timeout");
                }
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"fill:{code}");
            }
        }, cancellationToken);
        var seconds = Phases.Seconds(started, Stopwatch.GetTimestamp());
        Log(FormattableString.Invariant($"filled in {seconds:0.0} s ({sends / Math.Max(seconds, 1e-9):0} sends/s)"));
    }

    private static Task<(System.Text.Json.JsonElement Parameters, long ReceivedAt)> SendAsync(
        PipelinedConnection connection, string token, int to, int k, CancellationToken cancellationToken) =>
        connection.RequestAsync("send", "sent", (token, to, k), static (w, q) => WriteSend(w, q.token, q.to, q.k), cancellationToken);

    /// <summary>A <c>send</c> with a small payload, the same size at every depth.</summary>
    private static void WriteSend(System.Text.Json.Utf8JsonWriter writer, string token, int to, int k)
    {
        writer.WriteString("token"u8, token);
        writer.WriteNumber("to"u8, to);
        writer.WriteStartObject("payload"u8);
        writer.WriteNumber("k"u8, k);
        writer.WriteString("note"u8, "queue-depth");
        writer.WriteEndObject();
    }

    private ScenarioResult Row(int depth, List<long> latencies, List<long> bytes) =>
        ScenarioResult.From(Name, options.Clients, Stopwatch.GetElapsedTime(0, latencies.Sum()), [.. latencies], _errors.Snapshot()) with
        {
            Depth = depth,
            StorageBytesPerOp = bytes.Count == 0 ? null : bytes.Order().ElementAt(bytes.Count / 2),
        };

    private void Log(string message) => Phases.Log(Name, message);
}
