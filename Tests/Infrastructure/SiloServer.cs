using Grains.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Tests.Infrastructure;

/// <summary>
/// A standalone silo started in this process the way <c>dotnet run --project Silo</c> starts one
/// (<c>AddClientManagement</c>), on free loopback ports.
/// </summary>
public sealed class SiloServer : IAsyncDisposable
{
    private readonly IHost _host;
    private bool _stopped;

    private SiloServer(IHost host) => _host = host;

    public IServiceProvider Services => _host.Services;

    public IGrainFactory Grains => _host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>Starts a silo; <paramref name="settings"/> are configuration keys (Cluster, Storage, …).</summary>
    public static async Task<SiloServer> StartAsync(IReadOnlyDictionary<string, string> settings)
    {
        var host = Build(settings);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await host.StartAsync(bound.Token);
        return new SiloServer(host);
    }

    /// <summary>The configured silo host, not started.</summary>
    public static IHost Build(IReadOnlyDictionary<string, string> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            EnvironmentName = Environments.Development,
            ContentRootPath = Path.GetTempPath(),
        });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Cluster:SiloPort"] = FreePort.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster:GatewayPort"] = FreePort.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Orleans"] = "Error",
        });
        builder.Configuration.AddInMemoryCollection(settings.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
        var contentRoot = builder.Environment.ContentRootPath;
        builder.UseOrleans(silo => silo.AddClientManagement(builder.Configuration, contentRoot));

        return builder.Build();
    }

    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _host.StopAsync(bound.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _host.Dispose();
    }
}
