using Grains.Hosting;
using Orleans.TestingHost;

namespace Tests.Infrastructure;

/// <summary>
/// A 2-silo <see cref="TestCluster"/> whose grain state lives on a database server, in a database
/// created for the test class. When the server is not configured nothing starts, and each test's
/// <see cref="Require"/> skips it (or fails it, where CI requires the server).
/// </summary>
public abstract class ServerClusterFixture(DatabaseServer server) : IAsyncLifetime
{
    private TestCluster? _cluster;
    private TestDatabaseOnServer? _database;

    public DatabaseServer Server { get; } = server;

    public TestCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster did not start.");

    public TestDatabaseOnServer Database => _database ?? throw new InvalidOperationException("No database.");

    public IGrainFactory Grains => Cluster.GrainFactory;

    /// <summary>Called first by every test: skips or fails when the server is not configured.</summary>
    public void Require() => Server.Require();

    public async ValueTask InitializeAsync()
    {
        if (!Server.IsConfigured)
        {
            return;
        }

        _database = await Server.CreateDatabaseAsync();
        var builder = new TestClusterBuilder(2);
        builder.Options.ServiceId = "client-management-tests";
        builder.Properties[$"{StorageOptions.Section}:{nameof(StorageOptions.Provider)}"] = Server.Provider.ToString();
        builder.Properties[$"{StorageOptions.Section}:{nameof(StorageOptions.ConnectionString)}"] = _database.ConnectionString;
        builder.AddSiloBuilderConfigurator<StoreConfigurator>();
        _cluster = builder.Build();
        await _cluster.DeployAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.StopAllSilosAsync();
            await _cluster.DisposeAsync();
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    private sealed class StoreConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.AddClientStore(siloBuilder.Configuration, Path.GetTempPath());
    }
}

public sealed class PostgreSqlClusterFixture() : ServerClusterFixture(DatabaseServer.PostgreSql);

public sealed class SqlServerClusterFixture() : ServerClusterFixture(DatabaseServer.SqlServer);
