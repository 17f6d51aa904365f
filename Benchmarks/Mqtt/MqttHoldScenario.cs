using System.Diagnostics;
using MQTTnet;

namespace Benchmarks.Mqtt;

/// <summary>
/// hold on Mosquitto: memory one idle logged-in session costs the broker. A warm-up of connect cycles on
/// throwaway sessions first, then the broker's resident memory is read; <c>--sessions</c> clients connect
/// with persistent sessions, each subscribed to its own topic at QoS 1, and stay idle; memory is read again
/// once it has settled. Memory per session = (after − before) / held. The broker keeps nothing else per
/// device (no storage tier to load it from), so the figure is the whole cost of a device's session.
/// Every session must still answer a PINGREQ after the reading.
/// </summary>
public sealed class MqttHoldScenario(BenchmarkOptions options, MosquittoProcess broker, int round) : IBenchmarkRun
{
    private const int WarmupClients = 200;
    private const int WarmupCycles = 3;

    private readonly ErrorCounts _errors = new();

    public async Task<ScenarioResult> RunAsync(CancellationToken cancellationToken)
    {
        Log($"warming up: {WarmupClients} clients × {WarmupCycles} connect cycles");
        await Phases.ForEachAsync(WarmupClients * WarmupCycles, Math.Min(options.Concurrency, 50), options.Duration, _errors, "warmup", async (i, phase) =>
        {
            var client = MqttPeer.Create();
            try
            {
                await client.ConnectAsync(MqttPeer.Options(broker, $"hw{round}-{i % WarmupClients}", persistent: false), phase);
            }
            catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
            {
                _errors.Add($"warmup:{code}");
            }
            finally
            {
                await MqttPeer.CloseAsync(client);
            }
        }, cancellationToken);

        var before = await SettledResidentBytesAsync(cancellationToken);
        Log($"resident before: {before / 1048576.0:0.0} MiB; opening {options.Sessions} sessions, {options.Concurrency} at a time");
        var held = new IMqttClient?[options.Sessions];
        var latencies = new long[options.Sessions];
        var started = Stopwatch.GetTimestamp();
        try
        {
            await Phases.ForEachAsync(options.Sessions, options.Concurrency, options.Duration, _errors, "open", async (i, phase) =>
            {
                var client = MqttPeer.Create();
                try
                {
                    var begun = Stopwatch.GetTimestamp();
                    var id = $"h{round}-{i}";
                    await client.ConnectAsync(MqttPeer.Options(broker, id), phase);
                    await MqttPeer.SubscribeAsync(client, $"c/{id}", phase);
                    latencies[i] = Stopwatch.GetTimestamp() - begun;
                    held[i] = client;
                    client = null;
                }
                catch (Exception ex) when (MqttPeer.CodeOf(ex, cancellationToken) is { } code)
                {
                    _errors.Add($"open:{code}");
                }
                finally
                {
                    if (client is not null)
                    {
                        await MqttPeer.CloseAsync(client);
                    }
                }
            }, cancellationToken);
            var opened = Stopwatch.GetTimestamp();
            if (options.Idle > TimeSpan.Zero)
            {
                Log($"idle for {options.Idle.TotalSeconds} s");
                await Task.Delay(options.Idle, cancellationToken);
            }

            var after = await SettledResidentBytesAsync(cancellationToken);
            var reading = new HoldReading(options, _errors, "mosquitto", round, $"hold mosquitto #{round}", before, after, started, opened);
            return await HeldSessions.ReadAsync(reading, held, latencies, (client, phase) => client.PingAsync(phase), MqttPeer.CodeOf, cancellationToken);
        }
        finally
        {
            await HeldSessions.CloseAsync(held, options, _errors, MqttPeer.CloseAsync, cancellationToken);
        }
    }

    /// <summary>Resident memory once two readings half a second apart are within 1%, at most 10 s.</summary>
    private async Task<long> SettledResidentBytesAsync(CancellationToken cancellationToken)
    {
        var last = broker.ResidentBytes();
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(500, cancellationToken);
            var now = broker.ResidentBytes();
            var steady = Math.Abs(now - last) <= last / 100;
            last = now;
            if (steady)
            {
                break;
            }
        }

        return last;
    }

    private void Log(string message) => Phases.Log($"hold mosquitto #{round}", message);
}
