using Grains.Hosting;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace Tests.Infrastructure;

/// <summary>An in-process cluster of silos whose grain state lives in a real SQLite file.</summary>
public sealed class SqliteTestCluster : IAsyncDisposable
{
    private SqliteTestCluster(TestCluster cluster, string databasePath)
    {
        Cluster = cluster;
        DatabasePath = databasePath;
    }

    public TestCluster Cluster { get; }

    public string DatabasePath { get; }

    public IGrainFactory Grains => Cluster.GrainFactory;

    /// <summary>Starts <paramref name="silos"/> silos on the SQLite file <paramref name="databasePath"/>; <paramref name="configure"/> adds a test's own settings or configurators.</summary>
    public static async Task<SqliteTestCluster> StartAsync(string databasePath, short silos, Action<TestClusterBuilder>? configure = null)
    {
        var builder = new TestClusterBuilder(silos);

        // Stored rows are scoped by service id; a fixed one lets a second cluster find the first one's data.
        builder.Options.ServiceId = "client-management-tests";
        builder.Properties[$"{StorageOptions.Section}:{nameof(StorageOptions.SqlitePath)}"] = databasePath;
        builder.AddSiloBuilderConfigurator<StoreConfigurator>();
        configure?.Invoke(builder);
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new SqliteTestCluster(cluster, databasePath);
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    private sealed class StoreConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.AddClientStore(siloBuilder.Configuration, Path.GetTempPath());
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
