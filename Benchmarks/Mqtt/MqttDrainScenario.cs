using System.Diagnostics;
using System.Text;
using MQTTnet;

namespace Benchmarks.Mqtt;

/// <summary>
/// drain on Mosquitto: each of <c>--clients</c> recipients has a persistent session subscribed at QoS 1 to
/// its own topic, made and left beforehand; <c>--senders</c> clients publish <c>--pending</c> messages to each
/// (QoS 1, up to <c>--window</c> awaiting PUBACK per sender) while it is offline, so the broker queues them in
/// the session; then the recipients reconnect, <c>--concurrency</c> at a time, and each waits for all of its
/// messages. Measures logins/s and messages/s over the reconnect phase, CONNACK latency, and the broker's CPU
/// in that phase; checks every message arrived once, in order.
/// </summary>
/// <remarks>A payload is <c>{"r": recipient index, "k": counter}</c>, the shape of the gateway's drain payloads.</remarks>
public sealed class MqttDrainScenario(BenchmarkOptions options, MosquittoProcess broker) : IBenchmarkRun
{
    private readonly ErrorCounts _errors = new();

    /// <summary>Arrivals by recipient and counter, the last counter each recipient got, and its count; guarded by the recipient's array.</summary>
    private int[][] _arrivals = [];
    private int[] _lastK = [];
    private int[] _received = [];
    private TaskCompletionSource[] _complete = [];

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var n = options.Clients;
        _arrivals = [.. Enumerable.Range(0, n).Select(_ => new int[options.Pending])];
        _lastK = [.. Enumerable.Range(0, n).Select(_ => -1)];
        _received = new int[n];
        _complete = [.. Enumerable.Range(0, n).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))];

        Log($"making {n} persistent sessions on {broker.Url}");
        var made = new bool[n];
        await Phases.ForEachAsync(n, options.Concurrency, options.Duration, _errors, "session", async (r, phase) =>
        {
            var client = MqttPeer.Create();
            try
            {
                await client.ConnectAsync(MqttPeer.Options(broker, Id(r)), phase);
                await MqttPeer.SubscribeAsync(client, Topic(r), phase);
                made[r] = true;
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"session:{code}");
            }
            finally
            {
                await MqttPeer.CloseAsync(client);
            }
        }, cancellationToken);

        var queued = await QueueAsync(made, cancellationToken);
        var (window, latencies, responses, cpu) = await ReconnectAllAsync(made, queued, cancellationToken);
        Verify(queued);
        return ScenarioResult.From("drain", n, window, latencies, _errors.Snapshot(), responses) with
        {
            Server = "mosquitto",
            ServerCpuSeconds = Math.Round(cpu, 3),
        };
    }

    /// <summary>Publishes every message while the recipients are offline; recipient r goes to sender r mod senders. Returns what was acknowledged, by recipient and counter.</summary>
    private async Task<bool[][]> QueueAsync(bool[] made, CancellationToken cancellationToken)
    {
        var n = made.Length;
        var acknowledged = Enumerable.Range(0, n).Select(_ => new bool[options.Pending]).ToArray();
        Log($"queueing {options.Pending} messages for each of {made.Count(m => m)} offline recipients from {options.Senders} senders, window {options.Window}");
        var started = Stopwatch.GetTimestamp();
        long accepted = 0;
        await Phases.ForEachAsync(options.Senders, options.Senders, options.Duration, _errors, "queue", async (s, phase) =>
        {
            var mine = Enumerable.Range(0, n).Where(r => r % options.Senders == s && made[r]).ToArray();
            var client = MqttPeer.Create();
            try
            {
                await client.ConnectAsync(MqttPeer.Options(broker, $"ds-{s}", persistent: false), phase);
                using var window = new SemaphoreSlim(options.Window);
                var publishes = new List<Task>(mine.Length * options.Pending);

                // Counter-major, as the gateway's drain; Pending × |mine| passes at most.
                for (var k = 0; k < options.Pending && !phase.IsCancellationRequested; k++)
                {
                    foreach (var r in mine)
                    {
                        await window.WaitAsync(phase);
                        var (recipient, counter) = (r, k);
                        publishes.Add(PublishAsync(client, recipient, counter, window, () =>
                        {
                            acknowledged[recipient][counter] = true;
                            Interlocked.Increment(ref accepted);
                        }, phase));
                    }
                }

                await Task.WhenAll(publishes);
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"queue:{code}");
            }
            finally
            {
                await MqttPeer.CloseAsync(client);
            }
        }, cancellationToken);

        var seconds = Phases.Seconds(started, Stopwatch.GetTimestamp());
        Log(FormattableString.Invariant($"queued {accepted} messages in {seconds:0.0} s ({accepted / Math.Max(seconds, 1e-9):0} publishes/s)"));
        return acknowledged;
    }

    private async Task PublishAsync(IMqttClient client, int r, int k, SemaphoreSlim window, Action acknowledged, CancellationToken phase)
    {
        try
        {
            await MqttPeer.PublishAsync(client, Topic(r), Encoding.UTF8.GetBytes($$"""{"r":{{r}},"k":{{k}}}"""), phase);
            acknowledged();
        }
        catch (Exception ex) when (MqttPeer.CodeOf(ex, CancellationToken.None) is { } code)
        {
            // Not acknowledged, so not expected at reconnect (one that arrives is counted).
            _errors.Add($"queue:{code}");
        }
        finally
        {
            window.Release();
        }
    }

    /// <summary>Every recipient reconnects, bounded concurrency, and waits for its queue; the clients stay connected until all are done.</summary>
    private async Task<(TimeSpan Window, long[] Latencies, long Responses, double Cpu)> ReconnectAllAsync(
        bool[] made, bool[][] queued, CancellationToken cancellationToken)
    {
        var n = made.Length;
        var clients = new IMqttClient?[n];
        var latencies = new long[n];
        long responses = 0;
        long lastArrival = 0;
        Log($"reconnecting {made.Count(m => m)} recipients, {options.Concurrency} at a time");
        var cpuBefore = broker.CpuSeconds();
        var started = Stopwatch.GetTimestamp();
        try
        {
            await Phases.ForEachAsync(n, options.Concurrency, options.Duration, _errors, "login", async (r, phase) =>
            {
                if (!made[r])
                {
                    return;
                }

                var expected = queued[r].Count(q => q);
                if (expected == 0)
                {
                    _complete[r].TrySetResult();
                }

                var client = clients[r] = MqttPeer.Create();
                client.ApplicationMessageReceivedAsync += e =>
                {
                    var at = Stopwatch.GetTimestamp();
                    var (recipient, k) = MqttPeer.ReadPair(e.ApplicationMessage.Payload, "r"u8, "k"u8);
                    OnArrival(r, (int)recipient, (int)k, expected);
                    Interlocked.Increment(ref responses);
                    Phases.RaiseTo(ref lastArrival, at);
                    return Task.CompletedTask;
                };

                try
                {
                    var sent = Stopwatch.GetTimestamp();
                    var connected = await client.ConnectAsync(MqttPeer.Options(broker, Id(r)), phase);
                    latencies[r] = Stopwatch.GetTimestamp() - sent;
                    if (!connected.IsSessionPresent)
                    {
                        _errors.Add("session_lost");
                    }

                    await _complete[r].Task.WaitAsync(LoadRunner.OperationTimeout, phase);
                }
                catch (TimeoutException)
                {
                    _errors.Add("login:drain_timeout");
                }
                catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
                {
                    _errors.Add($"login:{code}");
                }
            }, cancellationToken);

            var cpu = broker.CpuSeconds() - cpuBefore;
            var end = Math.Max(started, Interlocked.Read(ref lastArrival));
            var window = Stopwatch.GetElapsedTime(started, end);
            Log(FormattableString.Invariant($"{Interlocked.Read(ref responses)} messages in {window.TotalSeconds:0.00} s; broker CPU {cpu:0.00} s"));
            return (window, [.. latencies.Where(l => l > 0)], Interlocked.Read(ref responses), cpu);
        }
        finally
        {
            await Phases.ForEachAsync(n, options.Concurrency, options.Duration, _errors, "close", async (i, _) =>
            {
                if (clients[i] is { } client)
                {
                    clients[i] = null;
                    await MqttPeer.CloseAsync(client);
                }
            }, cancellationToken);
        }
    }

    private void OnArrival(int r, int recipient, int k, int expected)
    {
        if (recipient != r || k < 0 || k >= options.Pending)
        {
            _errors.Add("wrong_recipient");
            return;
        }

        lock (_arrivals[r])
        {
            if (k <= _lastK[r])
            {
                _errors.Add("out_of_order");
            }

            _lastK[r] = Math.Max(_lastK[r], k);
            if (++_arrivals[r][k] == 1 && ++_received[r] == expected)
            {
                _complete[r].TrySetResult();
            }
        }
    }

    /// <summary>Each acknowledged message arrived exactly once; none arrived that the broker did not take.</summary>
    private void Verify(bool[][] queued)
    {
        for (var r = 0; r < queued.Length; r++)
        {
            for (var k = 0; k < options.Pending; k++)
            {
                var arrivals = _arrivals[r][k];
                if (queued[r][k])
                {
                    _errors.Add("lost", arrivals == 0 ? 1 : 0);
                    _errors.Add("duplicate", arrivals - 1);
                }
                else
                {
                    _errors.Add("arrived_without_ack", arrivals);
                }
            }
        }
    }

    private static string Id(int r) => $"d-{r}";

    private static string Topic(int r) => $"d/{r}";

    private static void Log(string message) => Phases.Log("drain mosquitto", message);
}
