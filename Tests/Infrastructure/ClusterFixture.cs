using System.Collections.Concurrent;
using Grains.Hosting;
using Grains.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Tests.Infrastructure;

/// <summary>
/// An in-process cluster of silos whose grain state lives in a real SQLite file, behind a
/// fault-injecting storage that the test drives through <see cref="Faults"/>, with the silos' clock
/// given by the test when it passes one.
/// </summary>
public sealed class SqliteTestCluster : IAsyncDisposable
{
    private const string HooksKey = "Tests:Hooks";

    /// <summary>What each cluster's silos take from the test that started it, by cluster.</summary>
    private static readonly ConcurrentDictionary<string, (StorageFaults Faults, TimeProvider? Time)> Hooks = new();

    private readonly string _hooks;

    private SqliteTestCluster(TestCluster cluster, string databasePath, string hooks, StorageFaults faults)
    {
        Cluster = cluster;
        DatabasePath = databasePath;
        _hooks = hooks;
        Faults = faults;
    }

    public TestCluster Cluster { get; }

    public string DatabasePath { get; }

    public IGrainFactory Grains => Cluster.GrainFactory;

    /// <summary>The storage faults every silo of this cluster injects; none until a test adds a rule.</summary>
    public StorageFaults Faults { get; }

    /// <summary>Starts the silos; <paramref name="time"/> replaces their clock, <paramref name="settings"/> are extra configuration keys.</summary>
    public static async Task<SqliteTestCluster> StartAsync(
        string databasePath, short silos, TimeProvider? time = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        var builder = new TestClusterBuilder(silos);

        // Stored rows are scoped by service id; a fixed one lets a second cluster find the first one's data.
        builder.Options.ServiceId = "client-management-tests";
        builder.Properties[$"{StorageOptions.Section}:{nameof(StorageOptions.SqlitePath)}"] = databasePath;
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            builder.Properties[key] = value;
        }

        var hooks = Guid.NewGuid().ToString("N");
        var faults = new StorageFaults();
        Hooks[hooks] = (faults, time);
        builder.Properties[HooksKey] = hooks;
        builder.AddSiloBuilderConfigurator<StoreConfigurator>();
        var cluster = builder.Build();
        try
        {
            await cluster.DeployAsync();
        }
        catch
        {
            Hooks.TryRemove(hooks, out _);
            throw;
        }

        return new SqliteTestCluster(cluster, databasePath, hooks, faults);
    }

    public async ValueTask DisposeAsync()
    {
        Faults.Clear();
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        Hooks.TryRemove(_hooks, out _);
    }

    private sealed class StoreConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var (faults, time) = Hooks[siloBuilder.Configuration[HooksKey]!];
            siloBuilder.Services.AddSingleton(faults);
            if (time is not null)
            {
                siloBuilder.Services.AddSingleton(time);
            }

            siloBuilder.AddClientStore(siloBuilder.Configuration, Path.GetTempPath());
        }
    }
}

/// <summary>One 2-silo cluster shared by the grain tests of a collection; each test uses fresh keys.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private readonly TempDatabase _database = new();

    public SqliteTestCluster Silos { get; private set; } = null!;

    public TempDatabase Database => _database;

    public async ValueTask InitializeAsync() => Silos = await SqliteTestCluster.StartAsync(_database.Path, silos: 2);

    public async ValueTask DisposeAsync()
    {
        await Silos.DisposeAsync();
        _database.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
