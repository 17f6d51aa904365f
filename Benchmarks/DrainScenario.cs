using System.Diagnostics;
using System.Text.Json;

namespace Benchmarks;

/// <summary>
/// Offline clients drain their queues at once. Each of <c>--clients</c> recipients gets <c>--pending</c>
/// responses while offline (the <c>send</c> action, pipelined on <c>--senders</c> sockets), then all of
/// them log in, <c>--concurrency</c> at a time. Measures logins/s, responses/s and login latency over the
/// login phase; checks that each response arrives exactly once, in order, with the seq its <c>sent</c>
/// reply named, and that a later login finds the queue empty.
/// </summary>
/// <remarks>
/// A payload is <c>{"r": recipient index, "k": counter}</c>. All responses for one recipient go out on one
/// sender socket, in counter order; the server answers a socket's requests one at a time, so the queue
/// must hold them in that order.
/// </remarks>
public sealed class DrainScenario(BenchmarkOptions options, ServerProcess? process = null) : IBenchmarkRun
{
    /// <summary>Recipients logged in again at the end, to check their queues were emptied.</summary>
    private const int RecheckSample = 200;

    /// <summary>How long pushes may still arrive after the last login before the sockets close.</summary>
    private static readonly TimeSpan _settle = TimeSpan.FromSeconds(1);

    private readonly ErrorCounts _errors = new();

    /// <summary>The seq each queued response got from its <c>sent</c> reply, by recipient and counter; 0 not sent, -1 refused, -2 no reply.</summary>
    private long[][] _seqs = [];

    /// <summary>How often each response arrived, by recipient and counter.</summary>
    private int[][] _arrivals = [];

    /// <summary>The last seq and counter each recipient received, for the order check; guarded by the array of that recipient.</summary>
    private (long Seq, int K)[] _last = [];

    /// <summary>
    /// Pushes that reached a recipient before its <c>logged</c> reply was read (the rest of a long queue follows
    /// that reply at once, and the reply is handed over on another thread); null once the reply was read.
    /// Guarded by the array of that recipient.
    /// </summary>
    private List<JsonElement>?[] _early = [];

    public string Name => "drain";

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var n = options.Clients;
        var pending = options.Pending;
        _seqs = [.. Enumerable.Range(0, n).Select(_ => new long[pending])];
        _arrivals = [.. Enumerable.Range(0, n).Select(_ => new int[pending])];
        _last = [.. Enumerable.Range(0, n).Select(_ => (0L, -1))];
        _early = [.. Enumerable.Range(0, n).Select(_ => new List<JsonElement>())];

        Log($"registering {n} recipients and {options.Senders} senders on {options.Url}");
        var registered = await Phases.RegisterAsync(options.Url, n + options.Senders, options.Concurrency, "drain", _errors, options.Duration, cancellationToken);
        var recipients = registered[..n];
        var senders = registered[n..].OfType<BenchClient>().ToArray();
        if (senders.Length == 0)
        {
            Log("no sender could register; nothing to measure");
            return ScenarioResult.From(Name, n, TimeSpan.Zero, [], _errors.Snapshot(), responses: 0);
        }

        await QueueAsync(recipients, senders, cancellationToken);
        var (window, latencies, responses, cpu) = await LoginAllAsync(recipients, cancellationToken);
        await RecheckAsync(recipients, cancellationToken);
        Verify();
        return ScenarioResult.From(Name, n, window, latencies, _errors.Snapshot(), responses) with { ServerCpuSeconds = cpu };
    }

    /// <summary>Queues the responses while every recipient is offline; recipient r goes to sender r mod senders.</summary>
    private async Task QueueAsync(BenchClient?[] recipients, BenchClient[] senders, CancellationToken cancellationToken)
    {
        Log($"queueing {options.Pending} responses for each of {recipients.Count(r => r is not null)} offline recipients from {senders.Length} sender sockets, window {options.Window}");
        var started = Stopwatch.GetTimestamp();
        long accepted = 0;
        await Phases.ForEachAsync(senders.Length, senders.Length, options.Duration, _errors, "queue", async (s, phase) =>
        {
            var mine = Enumerable.Range(0, recipients.Length).Where(r => r % senders.Length == s && recipients[r] is not null).ToArray();
            var sender = senders[s];

            // One reply per send: the frame cap is this sender's sends, and some room.
            await using var connection = await OpenAsync(options.Window, ((long)mine.Length * options.Pending) + 16, null, "queue", phase);
            if (connection is null)
            {
                return;
            }

            try
            {
                // Counter-major, so that consecutive sends go to different mailboxes; P × |mine| passes at most.
                for (var k = 0; k < options.Pending && !phase.IsCancellationRequested; k++)
                {
                    foreach (var r in mine)
                    {
                        var request = (sender.Token, To: recipients[r]!.Id, R: r, K: k);
                        await connection.SendAsync("send", request, static (w, q) =>
                        {
                            w.WriteString("token"u8, q.Token);
                            w.WriteNumber("to"u8, q.To);
                            w.WriteStartObject("payload"u8);
                            w.WriteNumber("r"u8, q.R);
                            w.WriteNumber("k"u8, q.K);
                            w.WriteEndObject();
                        }, reply =>
                        {
                            if (OnQueued(r, request.K, reply))
                            {
                                Interlocked.Increment(ref accepted);
                            }
                        }, phase);
                    }
                }

                if (!await connection.WhenIdleAsync(LoadRunner.OperationTimeout, phase))
                {
                    _errors.Add("queue:reply_timeout");
                }
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                // The socket broke: what it had not sent stays unsent, and is not expected at login.
                _errors.Add($"queue:{code}");
            }
        }, cancellationToken);

        var seconds = Phases.Seconds(started, Stopwatch.GetTimestamp());
        Log(FormattableString.Invariant($"queued {accepted} responses in {seconds:0.0} s ({accepted / Math.Max(seconds, 1e-9):0} sends/s)"));
    }

    /// <summary>Records the seq of a queued response; true when the server took it.</summary>
    private bool OnQueued(int r, int k, PipelinedReply reply)
    {
        if (reply.Code is not null || reply.Action != "sent")
        {
            // Refused, or no reply at all: either way not expected at login (one that arrives is counted).
            Volatile.Write(ref _seqs[r][k], reply.Action is null ? -2 : -1);
            _errors.Add($"queue:{reply.Code ?? $"unexpected_{reply.Action}"}");
            return false;
        }

        if (reply.Parameters.GetProperty("delivered").GetString() != "queued")
        {
            // The recipient has never logged in, so nothing can have been pushed to it.
            _errors.Add("queue:delivered_online");
        }

        Volatile.Write(ref _seqs[r][k], reply.Parameters.GetProperty("seq").GetInt64());
        return true;
    }

    /// <summary>Every recipient opens a socket and logs in, bounded concurrency; the sockets stay open until all are done.</summary>
    private async Task<(TimeSpan Window, long[] Latencies, long Responses, double? Cpu)> LoginAllAsync(BenchClient?[] recipients, CancellationToken cancellationToken)
    {
        var n = recipients.Length;
        var connections = new PipelinedConnection?[n];
        var latencies = new long[n];
        var connects = new long[n];
        long responses = 0;
        long lastReply = 0;
        Log($"logging {recipients.Count(r => r is not null)} recipients in, {options.Concurrency} at a time");
        var cpuBefore = process?.CpuSeconds();
        var started = Stopwatch.GetTimestamp();
        await Phases.ForEachAsync(n, options.Concurrency, options.Duration, _errors, "login", async (r, phase) =>
        {
            if (recipients[r] is not { } recipient)
            {
                return;
            }

            var opening = Stopwatch.GetTimestamp();
            var connection = connections[r] = await OpenAsync(1, options.Pending + 16, (action, parameters, at) =>
            {
                // The pages of the queue that 'logged' did not carry: part of the drain, so its window covers them.
                Phases.RaiseTo(ref lastReply, at);
                if (action == "response")
                {
                    Interlocked.Increment(ref responses);
                }

                OnPush(r, action, parameters);
            }, "login", phase);
            if (connection is null)
            {
                return;
            }

            try
            {
                var sent = Stopwatch.GetTimestamp();
                var (logged, at) = await connection.RequestAsync("login", "logged", recipient.Token, static (w, t) => w.WriteString("token"u8, t), phase);
                connects[r] = sent - opening;
                latencies[r] = at - sent;
                Phases.RaiseTo(ref lastReply, at);
                var queue = logged.GetProperty("queue");
                Interlocked.Add(ref responses, queue.GetArrayLength());
                lock (_arrivals[r])
                {
                    foreach (var item in queue.EnumerateArray())
                    {
                        OnArrival(r, "response", item, "queue");
                    }

                    foreach (var item in _early[r]!)
                    {
                        OnArrival(r, "response", item, "push");
                    }

                    _early[r] = null;
                }
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"login:{code}");
            }
        }, cancellationToken);

        var cpu = process?.CpuSeconds() - cpuBefore;
        var window = Stopwatch.GetElapsedTime(started, Math.Max(Interlocked.Read(ref lastReply), started));
        var done = latencies.Where(l => l > 0).ToArray();
        Log(FormattableString.Invariant(
            $"{done.Length} logins, {responses} responses in {window.TotalSeconds:0.00} s; connect p50 {Phases.PercentileMs([.. connects.Where(c => c > 0)], 0.5)} ms p99 {Phases.PercentileMs([.. connects.Where(c => c > 0)], 0.99)} ms"));

        // The pages behind 'logged' may still be arriving; anything else pushed now would be a response delivered twice.
        await Task.Delay(_settle, cancellationToken);
        await CloseAllAsync(connections, cancellationToken);
        return (window, done, responses, cpu is { } c ? Math.Round(c, 3) : null);
    }

    /// <summary>Logs a sample of recipients in again: their queues were delivered, so they must be empty.</summary>
    private async Task RecheckAsync(BenchClient?[] recipients, CancellationToken cancellationToken)
    {
        var sample = recipients.Where((c, r) => c is not null && _arrivals[r].Any(a => a > 0)).Take(RecheckSample).ToArray();
        await Phases.ForEachAsync(sample.Length, options.Concurrency, options.Duration, _errors, "recheck", async (i, phase) =>
        {
            // A queue that was not emptied shows in 'logged', and its pages behind it as pushes.
            await using var connection = await OpenAsync(1, options.Pending + 16, (action, _, _) => _errors.Add(action == "response" ? "redelivered" : $"recheck:{action}"), "recheck", phase);
            if (connection is null)
            {
                return;
            }

            try
            {
                var (logged, _) = await connection.RequestAsync("login", "logged", sample[i]!.Token, static (w, t) => w.WriteString("token"u8, t), phase);
                _errors.Add("redelivered", logged.GetProperty("queue").GetArrayLength());
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"recheck:{code}");
            }
        }, cancellationToken);
        Log($"logged {sample.Length} recipients in again to check their queues are empty");
    }

    /// <summary>A push to recipient <paramref name="r"/>: held until its <c>logged</c> reply is read, so the order check sees the queue first.</summary>
    private void OnPush(int r, string action, JsonElement parameters)
    {
        if (action != "response")
        {
            _errors.Add($"push:{action}");
            return;
        }

        lock (_arrivals[r])
        {
            if (_early[r] is { } early)
            {
                early.Add(parameters.Clone());
            }
            else
            {
                OnArrival(r, action, parameters, "push");
            }
        }
    }

    /// <summary>Counts one response that reached recipient <paramref name="r"/> and checks its order and seq.</summary>
    private void OnArrival(int r, string action, JsonElement response, string via)
    {
        if (action != "response")
        {
            _errors.Add($"{via}:{action}");
            return;
        }

        var seq = response.GetProperty("seq").GetInt64();
        var payload = response.GetProperty("payload");
        var k = payload.GetProperty("k").GetInt32();
        if (payload.GetProperty("r").GetInt32() != r || k < 0 || k >= options.Pending)
        {
            _errors.Add("wrong_recipient");
            return;
        }

        lock (_arrivals[r])
        {
            _arrivals[r][k]++;
            var (lastSeq, lastK) = _last[r];
            if (seq <= lastSeq || k <= lastK)
            {
                _errors.Add("out_of_order");
            }

            _last[r] = (Math.Max(seq, lastSeq), Math.Max(k, lastK));
            var expected = Volatile.Read(ref _seqs[r][k]);
            if (expected > 0 && seq != expected)
            {
                _errors.Add("wrong_seq");
            }
        }
    }

    /// <summary>Every accepted response arrived once; none that was refused or never sent arrived at all.</summary>
    private void Verify()
    {
        for (var r = 0; r < _seqs.Length; r++)
        {
            for (var k = 0; k < options.Pending; k++)
            {
                var arrivals = _arrivals[r][k];
                if (_seqs[r][k] > 0)
                {
                    _errors.Add("lost", arrivals == 0 ? 1 : 0);
                    _errors.Add("duplicate", arrivals - 1);
                }
                else if (_seqs[r][k] == -2)
                {
                    // The reply never came (a timeout, a broken socket): the server may have taken it.
                    _errors.Add("arrived_without_reply", arrivals);
                }
                else
                {
                    // A send refused by the server changed nothing, says the protocol; an unsent one cannot arrive.
                    _errors.Add("delivered_unsent", arrivals);
                }
            }
        }
    }

    private async Task<PipelinedConnection?> OpenAsync(
        int window, long maxFrames, Action<string, JsonElement, long>? onPush, string phaseName, CancellationToken phase)
    {
        try
        {
            return await PipelinedConnection.OpenAsync(options.Url, LoadRunner.OperationTimeout, window, maxFrames, onPush, phase);
        }
        catch (Exception ex) when (ErrorCounts.CodeOf(ex, phase) is { } code)
        {
            _errors.Add($"{phaseName}:connect_{code}");
            return null;
        }
    }

    private Task CloseAllAsync(PipelinedConnection?[] connections, CancellationToken cancellationToken) =>
        Phases.CloseAllAsync(connections, options, _errors, cancellationToken);

    private void Log(string message) => Phases.Log(Name, message);
}
