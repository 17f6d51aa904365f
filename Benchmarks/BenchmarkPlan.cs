using System.Runtime.CompilerServices;
using Benchmarks.Mqtt;

namespace Benchmarks;

/// <summary>
/// What a command runs, and on which servers: each scenario on a gateway of its own (started from
/// <c>--server</c> with fresh data, or the one at <c>--url</c>), and connect-login and hold also on the
/// ceiling, alternating with the gateway round by round so that both see the same machine. With
/// <c>--mosquitto</c>, connect-login, drain, online-delivery and hold run on Mosquitto too, in the same
/// run: after the gateway (and the ceiling) of each round. With <c>--transport</c>, the gateway's rows of
/// connect-login, online-delivery and hold run over raw <c>/ws</c>, Socket.IO, or both (rows named
/// <c>gateway</c> and <c>socket.io</c>), on the same gateway build and machine.
/// </summary>
public static class BenchmarkPlan
{
    /// <summary>The server name of a row that measured the gateway over Socket.IO.</summary>
    public const string SocketIoRow = "socket.io";

    public static async IAsyncEnumerable<ScenarioResult> RunAsync(BenchmarkOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var scenarios = options.Command == "all" ? BenchmarkOptions.Scenarios : [options.Command];
        foreach (var scenario in scenarios)
        {
            var scenarioOptions = options.Command == "all" ? options.For(scenario) : options;
            if (scenario == "hold" && scenarioOptions.Server is null)
            {
                Phases.Log("hold", "skipped: it reads the server's memory, so it needs --server");
                continue;
            }

            if (scenarioOptions.Cluster > 0)
            {
                // A fresh cluster and database for each scenario, as the single gateway gets fresh data.
                await using var cluster = await StartClusterAsync(scenarioOptions, cancellationToken);
                await foreach (var result in RunScenarioAsync(scenario, scenarioOptions with { Url = cluster.Url }, cancellationToken))
                {
                    yield return result;
                }

                continue;
            }

            await foreach (var result in RunScenarioAsync(scenario, scenarioOptions, cancellationToken))
            {
                yield return result;
            }
        }
    }

    /// <summary>
    /// <see cref="BenchmarkOptions.Cluster"/> silos, then as many frontends, on a database of their own; the
    /// clients use the first frontend, whose grain calls reach both silos.
    /// </summary>
    private static async Task<StartedCluster> StartClusterAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var cluster = await ChaosCluster.CreateAsync(options.Postgres!, storageFaults: false, cancellationToken, chaos: false);
        try
        {
            var silos = Enumerable.Range(1, options.Cluster).Select(i => cluster.StartSilo($"silo-{i}")).ToArray();
            foreach (var silo in silos)
            {
                await cluster.WaitReadyAsync(silo, cancellationToken);
            }

            var frontends = Enumerable.Range(1, options.Cluster).Select(i => cluster.StartFrontend($"frontend-{i}")).ToArray();
            foreach (var frontend in frontends)
            {
                await cluster.WaitReadyAsync(frontend, cancellationToken);
            }

            Phases.Log("cluster", $"{silos.Length} silos and {frontends.Length} frontends on PostgreSQL; clients on {frontends[0].WebSocket} (logs in {cluster.LogFolder})");
            return new StartedCluster(cluster, frontends[0].WebSocket);
        }
        catch
        {
            cluster.KeepLogs = true;
            await cluster.DisposeAsync();
            throw;
        }
    }

    private sealed class StartedCluster(ChaosCluster cluster, Uri url) : IAsyncDisposable
    {
        public Uri Url { get; } = url;

        public ValueTask DisposeAsync() => cluster.DisposeAsync();
    }

    private static async IAsyncEnumerable<ScenarioResult> RunScenarioAsync(
        string scenario, BenchmarkOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var gateway = ServerTarget.Gateway(options);
        switch (scenario)
        {
            case "chaos":
                // Its own cluster of processes, on its own database.
                yield return await new ChaosScenario(options).RunAsync(cancellationToken);
                break;

            case "hold":
                await using (var ceiling = ServerTarget.Ceiling())
                {
                    for (var round = 1; round <= options.Rounds; round++)
                    {
                        if (options.OverWs)
                        {
                            yield return await new HoldScenario(options, gateway, round).RunAsync(cancellationToken);
                        }

                        if (options.OverSocketIo)
                        {
                            yield return await new HoldScenario(options, gateway, round, socketIo: true).RunAsync(cancellationToken);
                        }

                        yield return await new HoldScenario(options, ceiling, round).RunAsync(cancellationToken);
                        if (options.Mosquitto is { } executable)
                        {
                            // A fresh broker each round, as each gateway round starts a fresh process.
                            await using var fresh = await MosquittoProcess.StartAsync(executable, cancellationToken);
                            yield return await new MqttHoldScenario(options, fresh, round).RunAsync(cancellationToken);
                        }
                    }
                }

                break;

            case "connect-login":
                await using (var ceiling = ServerTarget.Ceiling())
                await using (var onGateway = await gateway.StartAsync(cancellationToken))
                await using (var onCeiling = await ceiling.StartAsync(cancellationToken))
                await using (var broker = options.Mosquitto is { } broker1 ? await MosquittoProcess.StartAsync(broker1, cancellationToken) : null)
                {
                    for (var round = 1; round <= options.Rounds; round++)
                    {
                        List<(string Name, Uri Url, ServerProcess? Process)> runs = [];
                        if (options.OverWs)
                        {
                            runs.Add((gateway.Name, onGateway.Url, onGateway.Process));
                        }

                        if (options.OverSocketIo)
                        {
                            runs.Add((SocketIoRow, SocketIoFraming.EndpointBeside(onGateway.Url), onGateway.Process));
                        }

                        runs.Add((ceiling.Name, onCeiling.Url, onCeiling.Process));
                        foreach (var (name, url, process) in runs)
                        {
                            var run = new LoadRunner(new ConnectLoginScenario(), options with { Url = url }, process);
                            yield return await run.RunAsync(cancellationToken) with { Server = name, Round = round };
                        }

                        if (broker is not null)
                        {
                            yield return await new MqttConnectLoginScenario(options, broker, round).RunAsync(cancellationToken);
                        }
                    }
                }

                break;

            case "online-delivery" when options.Transport != "ws":
                // A fresh gateway process for each transport, raw /ws first.
                foreach (var socketIo in new[] { false, true }.Where(s => s ? options.OverSocketIo : options.OverWs))
                {
                    await using var server = await gateway.StartAsync(cancellationToken);
                    var url = socketIo ? SocketIoFraming.EndpointBeside(server.Url) : server.Url;
                    var result = await new OnlineDeliveryScenario(options with { Url = url }, server.Process).RunAsync(cancellationToken);
                    yield return socketIo ? result with { Server = SocketIoRow } : result;
                }

                if (options.Mosquitto is { } broker2)
                {
                    await using var mosquitto = await MosquittoProcess.StartAsync(broker2, cancellationToken);
                    yield return await new MqttOnlineDeliveryScenario(options, mosquitto).RunAsync(cancellationToken);
                }

                break;

            default:
                await using (var server = await gateway.StartAsync(cancellationToken))
                {
                    var onServer = options with { Url = server.Url };
                    if (scenario == "queue-depth")
                    {
                        foreach (var row in await new QueueDepthScenario(onServer, server.Process).RunAllAsync(cancellationToken))
                        {
                            yield return row;
                        }
                    }
                    else
                    {
                        foreach (var run in IBenchmarkRun.For(onServer with { Command = scenario }, server.Process))
                        {
                            yield return await run.RunAsync(cancellationToken);
                        }
                    }
                }

                if (options.Mosquitto is { } path && scenario is "drain" or "online-delivery")
                {
                    await using var mosquitto = await MosquittoProcess.StartAsync(path, cancellationToken);
                    IBenchmarkRun run = scenario == "drain"
                        ? new MqttDrainScenario(options, mosquitto)
                        : new MqttOnlineDeliveryScenario(options, mosquitto);
                    yield return await run.RunAsync(cancellationToken);
                }

                break;
        }
    }
}
