using System.Diagnostics;
using MQTTnet;

namespace Benchmarks.Mqtt;

/// <summary>
/// connect-login on Mosquitto: <c>--clients</c> workers, each with a persistent session of its own made
/// beforehand (connected once and subscribed to its topic, as a registered device), repeat CONNECT with
/// credentials → CONNACK → DISCONNECT on a new WebSocket each time, through the same warm-up and measured
/// window as the gateway's connect-login. Checks that every CONNACK finds the session present, as the
/// gateway's <c>logged</c> must name the client's own id.
/// </summary>
public sealed class MqttConnectLoginScenario(BenchmarkOptions options, MosquittoProcess broker, int round) : IBenchmarkRun
{
    private static readonly TimeSpan _backoff = TimeSpan.FromMilliseconds(100);

    private readonly ErrorCounts _errors = new();

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        var ids = Enumerable.Range(0, options.Clients).Select(i => $"cl{round}-{i}").ToArray();
        Phases.Log("connect-login mosquitto", $"preparing {ids.Length} persistent sessions on {broker.Url}");
        var prepared = new bool[ids.Length];
        await Phases.ForEachAsync(ids.Length, options.Concurrency, options.Duration, _errors, "prepare", async (i, phase) =>
        {
            var client = MqttPeer.Create();
            try
            {
                await client.ConnectAsync(MqttPeer.Options(broker, ids[i]), phase);
                await MqttPeer.SubscribeAsync(client, $"c/{ids[i]}", phase);
                prepared[i] = true;
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"prepare:{code}");
            }
            finally
            {
                await MqttPeer.CloseAsync(client);
            }
        }, cancellationToken);

        Phases.Log("connect-login mosquitto", $"{options.Warmup.TotalSeconds} s warm-up, then {options.Duration.TotalSeconds} s measured");
        var clock = new MeasuredWindow(options);
        var bound = options.Warmup + options.Duration + (LoadRunner.OperationTimeout * 3);
        var cpuAtWindow = clock.ReadAtWindowStartAsync(broker.CpuSeconds, cancellationToken);
        var latencies = await Task.WhenAll(ids.Where((_, i) => prepared[i]).Select(id => LoopAsync(id, clock, cancellationToken)))
            .WaitAsync(bound, cancellationToken);
        var cpu = broker.CpuSeconds() - await cpuAtWindow;

        return ScenarioResult.From("connect-login", options.Clients, clock.Elapsed, [.. latencies.SelectMany(l => l)], _errors.Snapshot()) with
        {
            Server = "mosquitto",
            Round = round,
            ServerCpuSeconds = Math.Round(cpu, 3),
        };
    }

    /// <summary>Sessions of one worker until the deadline or the count cap; the measured latencies in timestamp ticks.</summary>
    private async Task<List<long>> LoopAsync(string id, MeasuredWindow clock, CancellationToken cancellationToken)
    {
        var latencies = new List<long>();
        var options1 = MqttPeer.Options(broker, id);
        while (await clock.NextAsync(cancellationToken) is var (started, measured))
        {
            string? failure = null;
            var client = MqttPeer.Create();
            try
            {
                using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                bound.CancelAfter(LoadRunner.OperationTimeout * 2);
                var connected = await client.ConnectAsync(options1, bound.Token);
                if (!connected.IsSessionPresent)
                {
                    failure = "session_lost";
                }

                await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), bound.Token);
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                failure = code;
            }
            finally
            {
                client.Dispose();
            }

            var ended = clock.Completed(measured);
            if (failure is null)
            {
                if (measured)
                {
                    latencies.Add(ended - started);
                }
            }
            else
            {
                _errors.Add(failure);
                await Task.Delay(_backoff, cancellationToken);
            }
        }

        return latencies;
    }
}
