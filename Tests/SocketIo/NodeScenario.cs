using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tests.Infrastructure;
using WebSocketFrontend.SocketIo;

namespace Tests.SocketIo;

/// <summary>
/// Runs a scenario of Tests/SocketIo/node/scenario.js (real npm Socket.IO clients) against a server and turns its
/// exit code and output into a test result. Installs the locked packages with <c>npm ci</c> once per run when
/// they are missing; fails, with the reason, when node or npm is missing.
/// </summary>
public static class NodeScenario
{
    private static readonly TimeSpan ScenarioTimeout = TimeSpan.FromSeconds(60);
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private static bool _installed;

    public static Task RunAsync(string scenario, Uri server) => RunScriptAsync("scenario.js", scenario, server);

    /// <summary>Runs <paramref name="scenario"/> of <paramref name="script"/>, a script in Tests/SocketIo/node.</summary>
    public static async Task RunScriptAsync(string script, string scenario, Uri server)
    {
        var directory = FindNodeDirectory();
        await EnsureInstalledAsync(directory);
        var (exitCode, output) = await ExecAsync("node", [script, scenario, server.ToString()], directory, ScenarioTimeout);
        Assert.True(exitCode == 0, $"The node scenario '{scenario}' of {script} failed with exit code {exitCode}:\n{output}");
    }

    private static async Task EnsureInstalledAsync(string directory)
    {
        await InstallLock.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (_installed || Directory.Exists(Path.Combine(directory, "node_modules", "socket.io-client-v2")))
            {
                _installed = true;
                return;
            }

            var (exitCode, output) = await ExecAsync("npm", ["ci", "--no-audit", "--no-fund"], directory, TimeSpan.FromMinutes(5));
            Assert.True(exitCode == 0, $"npm ci in {directory} failed with exit code {exitCode}:\n{output}");
            _installed = true;
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static string FindNodeDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "Tests", "SocketIo", "node");
            if (File.Exists(Path.Combine(candidate, "package-lock.json")))
            {
                return candidate;
            }
        }

        Assert.Fail($"Tests/SocketIo/node was not found above {AppContext.BaseDirectory}.");
        return string.Empty;
    }

    private static async Task<(int ExitCode, string Output)> ExecAsync(string file, string[] arguments, string directory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Fail($"'{file}' is not installed or not on PATH ({ex.Message}); the Socket.IO client tests need Node.js and npm.");
            throw;
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            bound.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(bound.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
                return (-1, $"timed out after {timeout}\n{await stdout}{await stderr}");
            }

            return (process.ExitCode, await stdout + await stderr);
        }
    }
}

/// <summary>A gateway on the real clock with the echo handler, for the npm clients.</summary>
public sealed class NodeScenarioFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, services: services => services.AddSingleton<ISocketIoConnectionHandler, EchoHandler>());

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

/// <summary>The npm Socket.IO clients, 4.8.4 and 2.5.0 (Engine.IO v3), against the echo handler: connect, emit with an ack, receive an event.</summary>
public sealed class NodeClientTests(NodeScenarioFixture fixture) : IClassFixture<NodeScenarioFixture>
{
    [Fact]
    public Task TheV4ClientOverWebSocketOnlyConnectsAndExchangesEventsAndAcks() => NodeScenario.RunAsync("v4-websocket", fixture.Server.HttpUri);

    [Fact]
    public Task TheV4ClientOverPollingOnlyConnectsAndExchangesEventsAndAcks() => NodeScenario.RunAsync("v4-polling", fixture.Server.HttpUri);

    [Fact]
    public Task TheV4ClientUpgradesFromPollingToWebSocketAndExchangesOnBoth() => NodeScenario.RunAsync("v4-upgrade", fixture.Server.HttpUri);

    [Fact]
    public Task TheV2ClientOnEngineIoV3UpgradesAndExchangesEventsAndAcks() => NodeScenario.RunAsync("v2-default", fixture.Server.HttpUri);
}
