using System.Diagnostics;
using System.Text;
using MQTTnet;

namespace Benchmarks.Mqtt;

/// <summary>
/// online-delivery on Mosquitto: <c>--clients</c> receivers connect with persistent sessions, each
/// subscribed at QoS 1 to its own topic, and stay; <c>--senders</c> clients publish to random receivers'
/// topics at QoS 1, up to <c>--window</c> awaiting PUBACK per sender: <c>--warmup-responses</c> first,
/// checked but not timed, then <c>--responses</c> measured, as the gateway's online-delivery. Measures
/// delivered/s, end-to-end latency, and the broker's CPU over the measured messages; checks none is lost,
/// duplicated or misrouted.
/// </summary>
/// <remarks>
/// A payload is <c>{"k": message index, "t": Stopwatch timestamp when it was published}</c>, as the
/// gateway's. Messages from one sender to one receiver must keep their order; a reordering is counted
/// (<c>reordered</c>) but is not a failure, since MQTT orders per publisher only what one client sends one
/// at a time.
/// </remarks>
public sealed class MqttOnlineDeliveryScenario(BenchmarkOptions options, MosquittoProcess broker) : IBenchmarkRun
{
    private readonly ErrorCounts _errors = new();
    private int[] _target = [];
    private bool[] _acknowledged = [];
    private int[] _arrivals = [];
    private long[] _latency = [];

    /// <summary>By receiver and sender: the last message index that arrived; touched only by that receiver's handler.</summary>
    private int[][] _lastK = [];
    private long _delivered;
    private long _lastArrival;
    private long _firstMeasuredSend;
    private double _cpuAtFirstMeasured = double.NaN;

    private int TotalResponses => options.WarmupResponses + options.Responses;

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var n = options.Clients;
        var m = TotalResponses;
        _target = new int[m];
        _acknowledged = new bool[m];
        _arrivals = new int[m];
        _latency = new long[m];
        _lastK = [.. Enumerable.Range(0, n).Select(_ => Enumerable.Repeat(-1, options.Senders).ToArray())];

        var receivers = new IMqttClient?[n];
        try
        {
            var live = await ConnectAllAsync(receivers, cancellationToken);
            if (live.Length == 0)
            {
                Log("no receiver connected; nothing to measure");
                return ScenarioResult.From("online-delivery", n, TimeSpan.Zero, [], _errors.Snapshot(), responses: 0) with { Server = "mosquitto" };
            }

            await PublishAllAsync(live, cancellationToken);
            var expected = _acknowledged.Count(a => a);
            for (var waited = 0; Interlocked.Read(ref _delivered) < expected && waited < 500; waited++)
            {
                await Task.Delay(20, cancellationToken);
            }

            var cpu = broker.CpuSeconds() - _cpuAtFirstMeasured;
            var measured = Enumerable.Range(options.WarmupResponses, options.Responses).ToArray();
            var started = Interlocked.Read(ref _firstMeasuredSend);
            var window = started == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(started, Math.Max(started, Interlocked.Read(ref _lastArrival)));
            Verify();
            var latencies = measured.Where(k => _latency[k] > 0 && _acknowledged[k]).Select(k => _latency[k]).ToArray();
            Log(FormattableString.Invariant($"{options.WarmupResponses} warm-up messages, then {options.Responses} measured in {window.TotalSeconds:0.00} s; broker CPU {cpu:0.00} s"));
            return ScenarioResult.From("online-delivery", n, window, latencies, _errors.Snapshot(), latencies.Length) with
            {
                Server = "mosquitto",
                ServerCpuSeconds = double.IsNaN(cpu) ? null : Math.Round(cpu, 3),
            };
        }
        finally
        {
            await Phases.ForEachAsync(n, options.Concurrency, options.Duration, _errors, "close", async (i, _) =>
            {
                if (receivers[i] is { } client)
                {
                    receivers[i] = null;
                    await MqttPeer.CloseAsync(client);
                }
            }, cancellationToken);
        }
    }

    private async Task<int[]> ConnectAllAsync(IMqttClient?[] receivers, CancellationToken cancellationToken)
    {
        Log($"connecting {receivers.Length} receivers on {broker.Url}, {options.Concurrency} at a time");
        var connected = new bool[receivers.Length];
        await Phases.ForEachAsync(receivers.Length, options.Concurrency, options.Duration, _errors, "login", async (r, phase) =>
        {
            var client = receivers[r] = MqttPeer.Create();
            client.ApplicationMessageReceivedAsync += e =>
            {
                OnArrival(r, MqttPeer.ReadPair(e.ApplicationMessage.Payload, "k"u8, "t"u8), Stopwatch.GetTimestamp());
                return Task.CompletedTask;
            };

            try
            {
                await client.ConnectAsync(MqttPeer.Options(broker, $"o-{r}"), phase);
                await MqttPeer.SubscribeAsync(client, Topic(r), phase);
                connected[r] = true;
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"login:{code}");
            }
        }, cancellationToken);
        return [.. Enumerable.Range(0, receivers.Length).Where(r => connected[r])];
    }

    /// <summary>Sender s publishes messages s, s + S, s + 2S, … to random live receivers, up to the window awaiting PUBACK.</summary>
    private async Task PublishAllAsync(int[] live, CancellationToken cancellationToken)
    {
        Log($"publishing {TotalResponses} messages from {options.Senders} senders, window {options.Window}");
        await Phases.ForEachAsync(options.Senders, options.Senders, options.Duration, _errors, "send", async (s, phase) =>
        {
            var random = new Random(s);
            var client = MqttPeer.Create();
            try
            {
                await client.ConnectAsync(MqttPeer.Options(broker, $"os-{s}", persistent: false), phase);
                using var window = new SemaphoreSlim(options.Window);
                var publishes = new List<Task>((TotalResponses / options.Senders) + 1);
                for (var k = s; k < TotalResponses && !phase.IsCancellationRequested; k += options.Senders)
                {
                    await window.WaitAsync(phase);
                    var r = live[random.Next(live.Length)];
                    Volatile.Write(ref _target[k], r);
                    publishes.Add(PublishAsync(client, k, r, window, phase));
                }

                await Task.WhenAll(publishes);
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"send:{code}");
            }
            finally
            {
                await MqttPeer.CloseAsync(client);
            }
        }, cancellationToken);
    }

    private async Task PublishAsync(IMqttClient client, int k, int r, SemaphoreSlim window, CancellationToken phase)
    {
        try
        {
            var now = Stopwatch.GetTimestamp();
            if (k >= options.WarmupResponses && Interlocked.CompareExchange(ref _firstMeasuredSend, now, 0) == 0)
            {
                // The broker's CPU is counted from the first measured message on.
                _cpuAtFirstMeasured = broker.CpuSeconds();
            }

            await MqttPeer.PublishAsync(client, Topic(r), Encoding.UTF8.GetBytes($$"""{"k":{{k}},"t":{{now}}}"""), phase);
            Volatile.Write(ref _acknowledged[k], true);
        }
        catch (Exception ex) when (MqttPeer.CodeOf(ex, CancellationToken.None) is { } code)
        {
            _errors.Add($"send:{code}");
        }
        finally
        {
            window.Release();
        }
    }

    private void OnArrival(int r, (long K, long T) payload, long at)
    {
        var k = (int)payload.K;
        if (k < 0 || k >= _target.Length || Volatile.Read(ref _target[k]) != r)
        {
            _errors.Add("wrong_recipient");
            return;
        }

        var sender = k % options.Senders;
        if (k <= _lastK[r][sender])
        {
            _errors.Add("reordered");
        }

        _lastK[r][sender] = Math.Max(k, _lastK[r][sender]);
        if (Interlocked.Increment(ref _arrivals[k]) == 1)
        {
            Volatile.Write(ref _latency[k], Math.Max(at - payload.T, 1));
            Interlocked.Increment(ref _delivered);
            if (k >= options.WarmupResponses)
            {
                Phases.RaiseTo(ref _lastArrival, at);
            }
        }
    }

    /// <summary>Each acknowledged message arrived once; none arrived that was not acknowledged.</summary>
    private void Verify()
    {
        for (var k = 0; k < _acknowledged.Length; k++)
        {
            if (_acknowledged[k])
            {
                _errors.Add("lost", _arrivals[k] == 0 ? 1 : 0);
                _errors.Add("duplicate", _arrivals[k] - 1);
            }
            else
            {
                _errors.Add("arrived_without_ack", _arrivals[k]);
            }
        }
    }

    private static string Topic(int r) => $"o/{r}";

    private static void Log(string message) => Phases.Log("online-delivery mosquitto", message);
}
