using System.Diagnostics;
using System.Text.Json;

namespace Benchmarks;

/// <summary>
/// Responses to clients that are online. <c>--clients</c> recipients log in and stay; <c>--senders</c>
/// sockets push <c>--responses</c> responses in all to random recipients with the <c>send</c> action,
/// up to <c>--window</c> outstanding per socket, each socket logged in with its sender's token first unless
/// <c>--senders-log-in no</c>. Measures delivered/s and the end-to-end latency of each
/// response; checks none is lost, duplicated, misaddressed or overtaken on its recipient's socket.
/// Before them the senders push <c>--warmup-responses</c> more the same way, checked alike but not
/// timed, so that the figures are the server's steady state rather than its first seconds (a freshly
/// started gateway delivers about half as fast for its first few seconds of load).
/// </summary>
/// <remarks>
/// A payload is <c>{"k": message index, "t": Stopwatch timestamp when it was sent}</c>: sender and
/// recipients share this process's clock, so latency is arrival time minus <c>t</c>.
/// </remarks>
public sealed class OnlineDeliveryScenario(BenchmarkOptions options, ServerProcess? process = null) : IBenchmarkRun
{
    /// <summary>The state of message k's send, from its reply.</summary>
    private const int NotSent = 0, Online = 1, Queued = 2, Refused = 3, NoReply = 4;

    private readonly ErrorCounts _errors = new();

    /// <summary>By message index: the recipient it went to, its send state, the seq its reply named, and what arrived.</summary>
    private int[] _target = [];
    private long[] _sentAt = [];
    private int[] _state = [];
    private long[] _sentSeq = [];
    private long[] _repliedAt = [];
    private long[] _arrivedSeq = [];
    private int[] _arrivals = [];
    private long[] _latency = [];

    /// <summary>The client id of each recipient, by index.</summary>
    private int[] _recipientIds = [];

    /// <summary>The last seq each recipient's socket received; each is touched only by that socket's receive loop.</summary>
    private long[] _lastSeq = [];
    private long _delivered;
    private long _lastArrival;

    /// <summary>The server's CPU seconds when the first measured send was made, once it was (the tool owns the process).</summary>
    private double? _cpuAtFirstMeasured;
    private int _firstMeasured;

    public string Name => "online-delivery";

    /// <summary>Messages below this index are the warm-up.</summary>
    private int WarmupResponses => options.WarmupResponses;

    /// <summary>Warm-up and measured messages together.</summary>
    private int TotalResponses => WarmupResponses + options.Responses;

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var n = options.Clients;
        var m = TotalResponses;
        _target = new int[m];
        _sentAt = new long[m];
        _state = new int[m];
        _sentSeq = new long[m];
        _repliedAt = new long[m];
        _arrivedSeq = new long[m];
        _arrivals = new int[m];
        _latency = new long[m];
        _lastSeq = new long[n];

        Log($"registering {n} recipients and {options.Senders} senders on {options.Url}");
        var registered = await Phases.RegisterAsync(options.Url, n + options.Senders, options.Concurrency, "online", _errors, options.Duration, cancellationToken);
        var senders = registered[n..].OfType<BenchClient>().ToArray();
        _recipientIds = [.. registered[..n].Select(c => c?.Id ?? 0)];
        var connections = new PipelinedConnection?[n];
        try
        {
            var live = await LoginAllAsync(registered[..n], connections, cancellationToken);
            if (live.Length == 0 || senders.Length == 0)
            {
                Log("no recipient logged in or no sender registered; nothing to measure");
                return ScenarioResult.From(Name, n, TimeSpan.Zero, [], _errors.Snapshot(), responses: 0);
            }

            await SendAllAsync(live, senders, cancellationToken);
            await AwaitDeliveriesAsync(cancellationToken);
            var cpu = process?.CpuSeconds() - _cpuAtFirstMeasured;

            // The measured window: from the first measured send to the last measured arrival.
            var measured = Enumerable.Range(WarmupResponses, options.Responses).Where(k => _sentAt[k] > 0).ToArray();
            var started = measured.Length == 0 ? 0 : measured.Min(k => _sentAt[k]);
            var window = measured.Length == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(started, Math.Max(started, Interlocked.Read(ref _lastArrival)));
            Log(FormattableString.Invariant($"{WarmupResponses} warm-up responses, then {options.Responses} measured: first measured send to last arrival {window.TotalSeconds:0.00} s"));
            await CloseAllAsync(connections, cancellationToken);
            Verify();

            // One latency per measured response that arrived for a send the server took: the first arrival.
            var latencies = measured.Where(k => _latency[k] > 0 && _state[k] == Online).Select(k => _latency[k]).ToArray();
            return ScenarioResult.From(Name, n, window, latencies, _errors.Snapshot(), latencies.Length) with
            {
                ServerCpuSeconds = cpu is { } c ? Math.Round(c, 3) : null,
            };
        }
        finally
        {
            await CloseAllAsync(connections, cancellationToken);
        }
    }

    /// <summary>Every recipient opens a socket and logs in, bounded concurrency; returns the indexes that did.</summary>
    private async Task<int[]> LoginAllAsync(BenchClient?[] recipients, PipelinedConnection?[] connections, CancellationToken cancellationToken)
    {
        Log($"logging {recipients.Count(r => r is not null)} recipients in, {options.Concurrency} at a time");
        var logged = new bool[recipients.Length];
        var started = Stopwatch.GetTimestamp();
        await Phases.ForEachAsync(recipients.Length, options.Concurrency, options.Duration, _errors, "login", async (r, phase) =>
        {
            if (recipients[r] is not { } recipient)
            {
                return;
            }

            try
            {
                // Every frame but the login's reply is a push; the cap leaves room for all of them to come to one socket.
                var connection = connections[r] = await PipelinedConnection.OpenAsync(
                    options.Url, LoadRunner.OperationTimeout, 1, TotalResponses + 16, (action, parameters, at) => OnArrival(r, action, parameters, at), phase);
                var (reply, _) = await connection.RequestAsync("login", "logged", recipient.Token, static (w, t) => w.WriteString("token"u8, t), phase);
                _errors.Add("login:queued_responses", reply.GetProperty("queue").GetArrayLength());
                logged[r] = true;
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"login:{code}");
            }
        }, cancellationToken);

        var live = Enumerable.Range(0, recipients.Length).Where(r => logged[r]).ToArray();
        Log(FormattableString.Invariant($"{live.Length} recipients online after {Phases.Seconds(started, Stopwatch.GetTimestamp()):0.0} s"));
        return live;
    }

    /// <summary>Sender s sends messages s, s + S, s + 2S, … to random live recipients, pipelined up to the window.</summary>
    private async Task SendAllAsync(int[] live, BenchClient[] senders, CancellationToken cancellationToken)
    {
        Log($"sending {TotalResponses} responses from {senders.Length} sender sockets, window {options.Window}");
        await Phases.ForEachAsync(senders.Length, senders.Length, options.Duration, _errors, "send", async (s, phase) =>
        {
            var sender = senders[s];
            var random = new Random(s);
            try
            {
                // One reply per send: the frame cap is this sender's share of the messages, and some room.
                var share = (TotalResponses + senders.Length - 1) / senders.Length;
                await using var connection = await PipelinedConnection.OpenAsync(options.Url, LoadRunner.OperationTimeout, options.Window, share + 16, null, phase);
                if (options.SendersLogIn)
                {
                    // Once per socket, as an MQTT publisher's CONNECT: the sends then ride on the login.
                    _ = await connection.RequestAsync("login", "logged", sender.Token, static (w, t) => w.WriteString("token"u8, t), phase);
                }

                // Responses / senders passes at most, each bounded by the window wait and the phase.
                for (var k = s; k < TotalResponses && !phase.IsCancellationRequested; k += senders.Length)
                {
                    var r = live[random.Next(live.Length)];
                    Volatile.Write(ref _target[k], r);
                    if (k >= WarmupResponses && process is not null && Interlocked.Exchange(ref _firstMeasured, 1) == 0)
                    {
                        // The server's CPU is counted from the first measured send on.
                        _cpuAtFirstMeasured = process.CpuSeconds();
                    }

                    var message = k;
                    await connection.SendAsync("send", (sender.Token, To: _recipientIds[r], K: k, SentAt: _sentAt), static (w, q) =>
                    {
                        // Taken as the frame is built, after the wait for room in the window.
                        var now = Stopwatch.GetTimestamp();
                        Volatile.Write(ref q.SentAt[q.K], now);
                        w.WriteString("token"u8, q.Token);
                        w.WriteNumber("to"u8, q.To);
                        w.WriteStartObject("payload"u8);
                        w.WriteNumber("k"u8, q.K);
                        w.WriteNumber("t"u8, now);
                        w.WriteEndObject();
                    }, reply => OnSent(message, reply), phase);
                }

                if (!await connection.WhenIdleAsync(LoadRunner.OperationTimeout, phase))
                {
                    _errors.Add("send:reply_timeout");
                }
            }
            catch (Exception ex) when (ErrorCounts.CodeOf(ex, cancellationToken) is { } code)
            {
                // The socket broke: the messages it had not sent stay unsent and are not expected.
                _errors.Add($"send:{code}");
            }
        }, cancellationToken);
    }

    private void OnSent(int k, PipelinedReply reply)
    {
        if (reply.Code is not null || reply.Action != "sent")
        {
            // No reply at all (a timeout, a broken socket) leaves open whether the server took it.
            Volatile.Write(ref _state[k], reply.Action is null ? NoReply : Refused);
            _errors.Add($"send:{reply.Code ?? $"unexpected_{reply.Action}"}");
            return;
        }

        Volatile.Write(ref _sentSeq[k], reply.Parameters.GetProperty("seq").GetInt64());
        Volatile.Write(ref _repliedAt[k], reply.ReceivedAt);
        var online = reply.Parameters.GetProperty("delivered").GetString() == "online";
        Volatile.Write(ref _state[k], online ? Online : Queued);
        if (!online)
        {
            // Durably queued for a recipient the server thought was gone: it comes at the next login, not here.
            _errors.Add("send:queued");
        }
    }

    /// <summary>One frame pushed to recipient <paramref name="r"/>'s socket; runs on that socket's receive loop.</summary>
    private void OnArrival(int r, string action, JsonElement parameters, long at)
    {
        if (action != "response")
        {
            _errors.Add($"push:{action}");
            return;
        }

        var seq = parameters.GetProperty("seq").GetInt64();
        var payload = parameters.GetProperty("payload");
        var k = payload.GetProperty("k").GetInt32();
        if (k < 0 || k >= _target.Length || Volatile.Read(ref _target[k]) != r)
        {
            _errors.Add("wrong_recipient");
            return;
        }

        // One mailbox pushes one response at a time and waits until it is written, so a socket sees its seqs rise.
        if (seq <= _lastSeq[r])
        {
            _errors.Add("out_of_order");
        }

        _lastSeq[r] = Math.Max(seq, _lastSeq[r]);
        if (Interlocked.Increment(ref _arrivals[k]) == 1)
        {
            Volatile.Write(ref _arrivedSeq[k], seq);
            Volatile.Write(ref _latency[k], Math.Max(at - payload.GetProperty("t").GetInt64(), 1));
            Interlocked.Increment(ref _delivered);
            if (k >= WarmupResponses)
            {
                Phases.RaiseTo(ref _lastArrival, at);
            }
        }
    }

    /// <summary>Waits, bounded, until every response the server called delivered online has arrived.</summary>
    private async Task AwaitDeliveriesAsync(CancellationToken cancellationToken)
    {
        var expected = _state.Count(s => s == Online);
        var poll = TimeSpan.FromMilliseconds(20);
        for (var waited = TimeSpan.Zero; Interlocked.Read(ref _delivered) < expected && waited < LoadRunner.OperationTimeout; waited += poll)
        {
            await Task.Delay(poll, cancellationToken);
        }
    }

    /// <summary>Each response the server took for an online recipient arrived once, with the seq its reply named.</summary>
    private void Verify()
    {
        for (var k = 0; k < _state.Length; k++)
        {
            var arrivals = _arrivals[k];
            switch (_state[k])
            {
                case Online:
                    _errors.Add("lost", arrivals == 0 ? 1 : 0);
                    _errors.Add("duplicate", arrivals - 1);
                    _errors.Add("wrong_seq", arrivals > 0 && _arrivedSeq[k] != _sentSeq[k] ? 1 : 0);
                    break;
                case Queued:
                    // Stays in the queue for the next login; arriving here as well would be delivery twice.
                    _errors.Add("duplicate", arrivals);
                    break;
                case NoReply:
                    _errors.Add("arrived_without_reply", arrivals);
                    break;
                default:
                    // A refused send changed nothing, says the protocol; an unsent one cannot arrive.
                    _errors.Add("delivered_unsent", arrivals);
                    break;
            }
        }

        var answered = Enumerable.Range(0, _state.Length).Where(k => _state[k] is Online or Queued).ToArray();
        long[] roundTrips = [.. answered.Select(k => _repliedAt[k] - _sentAt[k])];
        Log(FormattableString.Invariant(
            $"{answered.Length} sends taken ({_state.Count(s => s == Online)} online), {Interlocked.Read(ref _delivered)} arrived; send reply p50 {Phases.PercentileMs(roundTrips, 0.5)} ms p99 {Phases.PercentileMs(roundTrips, 0.99)} ms"));
    }

    private Task CloseAllAsync(PipelinedConnection?[] connections, CancellationToken cancellationToken) =>
        Phases.CloseAllAsync(connections, options, _errors, cancellationToken);

    private void Log(string message) => Phases.Log(Name, message);
}
