using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using WebSocketFrontend.Hosting;

namespace Tests.Infrastructure;

/// <summary>
/// The real gateway (Kestrel on 127.0.0.1, a co-hosted silo, SQLite storage) started in this
/// process on free ports, the way <c>dotnet run</c> starts it.
/// </summary>
public sealed class GatewayServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _stopped;

    private GatewayServer(WebApplication app, Uri webSocketUri, Uri httpUri, int siloPort)
    {
        _app = app;
        WebSocketUri = webSocketUri;
        HttpUri = httpUri;
        SiloPort = siloPort;
    }

    /// <summary>The admin key every test server is given for <c>/api</c>, unless a test overrides it.</summary>
    public const string AdminKey = "test-admin-key";

    public Uri WebSocketUri { get; }

    public Uri HttpUri { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>The co-hosted silo's port, for a second gateway that joins this one's cluster.</summary>
    public int SiloPort { get; }

    /// <summary>
    /// Starts a gateway on <paramref name="databasePath"/>; <paramref name="settings"/> are extra
    /// configuration keys, <paramref name="time"/> replaces the clock of the frontend and its silo
    /// (rate budgets, keep-alive, renewals, leases, push deadlines), and <paramref name="services"/>
    /// registers a test's own services (a grain-call filter, say) after the gateway's own, so they replace them.
    /// </summary>
    public static async Task<GatewayServer> StartAsync(
        string databasePath, IReadOnlyDictionary<string, string>? settings = null, TimeProvider? time = null, Action<IServiceCollection>? services = null)
    {
        var siloPort = FreePort.Next();
        var args = new List<string>
        {
            "--urls=http://127.0.0.1:0",
            "--environment=Development",
            $"--Storage:SqlitePath={databasePath}",
            $"--Cluster:SiloPort={siloPort}",
            $"--Cluster:GatewayPort={FreePort.Next()}",
            "--Cluster:ServiceId=client-management-tests",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Orleans=Error",
            $"--Api:AdminKey={AdminKey}",
        };
        args.AddRange((settings ?? new Dictionary<string, string>()).Select(kv => $"--{kv.Key}={kv.Value}"));

        var app = GatewayApplication.Create([.. args], collection =>
        {
            if (time is not null)
            {
                collection.AddSingleton(time);
            }

            services?.Invoke(collection);
        });
        await app.StartAsync();
        var http = new Uri(app.Urls.First());
        var ws = new UriBuilder(http) { Scheme = http.Scheme == Uri.UriSchemeHttps ? "wss" : "ws", Path = "/ws" }.Uri;
        return new GatewayServer(app, ws, http, siloPort);
    }

    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _app.StopAsync(bound.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One gateway on its own database, shared by the end-to-end tests of a collection.</summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public GatewayServer Server { get; private set; } = null!;

    /// <summary>The frame cap of this fixture: above the 8 KiB information limit with room for large valid envelopes.</summary>
    public const int MaxMessageBytes = 128 * 1024;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, new Dictionary<string, string>
        {
            ["Protocol:MaxMessageBytes"] = MaxMessageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),

            // The tests of this collection exercise client-to-client sends and the online list, which the defaults close.
            ["Protocol:ClientSend"] = "any",
            ["Protocol:ClientsMayListOnline"] = "true",
        });

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}
