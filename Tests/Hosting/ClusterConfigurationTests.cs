using System.ComponentModel.DataAnnotations;
using System.Net;
using Grains.Hosting;
using Grains.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Tests.Infrastructure;
using WebSocketFrontend.Hosting;

namespace Tests.Hosting;

/// <summary>Providers chosen by configuration; a wrong or missing setting stops the start with a message naming its key.</summary>
public sealed class ClusterConfigurationTests
{
    private const string Postgres = "Host=127.0.0.1;Username=u;Password=p;Database=d";
    private const string SqlServer = "Server=127.0.0.1;Database=d;User Id=u;Password=p;TrustServerCertificate=True";

    [Fact]
    public void LocalhostClusteringWithSqliteIsTheDefault()
    {
        var membership = ClusterMembership.Resolve(Configuration());

        Assert.Equal(ClusteringMode.Localhost, membership.Settings.Clustering);
        Assert.Null(membership.Database);
        Assert.Equal(IPAddress.Loopback, membership.AdvertisedAddress);
        var storage = StorageDatabase.Create(new StorageOptions(), "/srv");
        Assert.Equal(("System.Data.SQLite", StorageProvider.Sqlite), (storage.Invariant, storage.Provider));
    }

    [Theory]
    [InlineData("PostgreSql", Postgres, "Npgsql")]
    [InlineData("SqlServer", SqlServer, "Microsoft.Data.SqlClient")]
    public void AdoNetClusteringDefaultsToTheStorageServer(string provider, string connectionString, string invariant)
    {
        var membership = ClusterMembership.Resolve(Configuration(
            ("Storage:Provider", provider), ("Storage:ConnectionString", connectionString), ("Cluster:Clustering", "AdoNet"),
            ("Cluster:AdvertisedAddress", "10.0.0.7")));

        Assert.NotNull(membership.Database);
        Assert.Equal(invariant, membership.Database.Invariant);
        Assert.Equal(StorageDatabase.Create(new StorageOptions { Provider = Enum.Parse<StorageProvider>(provider), ConnectionString = connectionString }, "/").ConnectionString,
            membership.Database.ConnectionString);
        Assert.Equal(IPAddress.Parse("10.0.0.7"), membership.AdvertisedAddress);
    }

    [Fact]
    public void AdoNetClusteringBesideSqliteStorageTakesItsOwnServer()
    {
        var membership = ClusterMembership.Resolve(Configuration(
            ("Cluster:Clustering", "AdoNet"), ("Cluster:Provider", "PostgreSql"), ("Cluster:ConnectionString", Postgres)));

        Assert.Equal("Npgsql", membership.Database?.Invariant);
        Assert.Contains("Database=d", membership.Database?.ConnectionString, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Storage:ConnectionString is required when Storage:Provider is PostgreSql", "Storage:Provider", "PostgreSql")]
    [InlineData("Storage:ConnectionString is required when Storage:Provider is SqlServer", "Storage:Provider", "SqlServer")]
    public void AServerStorageWithoutConnectionStringIsRefused(string message, string key, string value)
    {
        var ex = Assert.Throws<InvalidOperationException>(() => Storage(Configuration((key, value))));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AConnectionStringThatDoesNotParseIsRefusedByItsKey()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => Storage(Configuration(("Storage:Provider", "PostgreSql"), ("Storage:ConnectionString", "Nonsense=1"))));
        Assert.StartsWith("Storage:ConnectionString is not a valid PostgreSql connection string", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Cluster:Provider", "Cluster:Clustering", "AdoNet")]
    [InlineData("Cluster:Provider must be PostgreSql or SqlServer", "Cluster:Provider", "Sqlite")]
    [InlineData("Cluster:ConnectionString is required", "Cluster:Provider", "SqlServer")]
    [InlineData("Cluster:AdvertisedAddress 'gateway.local' is not an IP address", "Cluster:AdvertisedAddress", "gateway.local")]
    public void AWrongClusterSettingIsRefusedByItsKey(string message, string key, string value)
    {
        (string, string)[] settings = key == "Cluster:Clustering" ? [(key, value)] : [("Cluster:Clustering", "AdoNet"), (key, value)];
        var ex = Assert.Throws<InvalidOperationException>(() => ClusterMembership.Resolve(Configuration(settings)));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownProviderNameIsRefusedByItsKey()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => ClusterMembership.Resolve(Configuration(("Cluster:Clustering", "Consul"))));
        Assert.Contains("Cluster:Clustering", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFrontendAndTheSiloRefuseToStartOnAWrongSetting()
    {
        var frontend = Assert.Throws<InvalidOperationException>(() => GatewayApplication.Create(["--Cluster:Clustering=AdoNet", "--Storage:Provider=PostgreSql"]));
        Assert.StartsWith("Cluster:ConnectionString is required", frontend.Message, StringComparison.Ordinal);

        var silo = Assert.Throws<InvalidOperationException>(() => SiloServer.Build(new Dictionary<string, string> { ["Storage:Provider"] = "SqlServer" }));
        Assert.StartsWith("Storage:ConnectionString is required when Storage:Provider is SqlServer", silo.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ProbeSettingsReachTheSilosMembershipOptionsAndDefaultToOrleans()
    {
        using var tuned = SiloServer.Build(new Dictionary<string, string> { ["Cluster:ProbeTimeout"] = "00:00:02", ["Cluster:NumMissedProbesLimit"] = "2" });
        var options = tuned.Services.GetRequiredService<IOptions<ClusterMembershipOptions>>().Value;
        Assert.Equal((TimeSpan.FromSeconds(2), 2), (options.ProbeTimeout, options.NumMissedProbesLimit));

        using var plain = SiloServer.Build(new Dictionary<string, string>());
        var defaults = plain.Services.GetRequiredService<IOptions<ClusterMembershipOptions>>().Value;
        var orleans = new ClusterMembershipOptions();
        Assert.Equal((orleans.ProbeTimeout, orleans.NumMissedProbesLimit), (defaults.ProbeTimeout, defaults.NumMissedProbesLimit));
    }

    [Theory]
    [InlineData("Cluster:ProbeTimeout", "00:00:00.010", "ProbeTimeout")]
    [InlineData("Cluster:ProbeTimeout", "01:00:00", "ProbeTimeout")]
    [InlineData("Cluster:NumMissedProbesLimit", "0", "NumMissedProbesLimit")]
    public void AProbeSettingOutOfRangeIsRefused(string key, string value, string field)
    {
        var ex = Assert.Throws<ValidationException>(() => ClusterMembership.Resolve(Configuration((key, value))));
        Assert.Contains(field, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PostgreSql", Postgres, null, 20)]
    [InlineData("PostgreSql", Postgres + ";Maximum Pool Size=200", null, 20)]
    [InlineData("PostgreSql", Postgres + ";Maximum Pool Size=5", null, 5)]
    [InlineData("PostgreSql", Postgres, "50", 50)]
    [InlineData("SqlServer", SqlServer, null, 20)]
    [InlineData("SqlServer", SqlServer + ";Max Pool Size=200", null, 20)]
    [InlineData("SqlServer", SqlServer + ";Max Pool Size=5", "50", 5)]
    public void TheConnectionPoolIsBoundedByMaxConnectionsWhateverTheConnectionStringSays(string provider, string connectionString, string? maxConnections, int expected)
    {
        (string, string)[] settings = maxConnections is null
            ? [("Storage:Provider", provider), ("Storage:ConnectionString", connectionString), ("Cluster:Clustering", "AdoNet")]
            : [("Storage:Provider", provider), ("Storage:ConnectionString", connectionString), ("Cluster:Clustering", "AdoNet"), ("Storage:MaxConnections", maxConnections)];
        var configuration = Configuration(settings);

        // Grain storage and the membership table share one pool, bounded the same way.
        foreach (var database in new[] { Storage(configuration), ClusterMembership.Resolve(configuration).Database! })
        {
            var pool = provider == "PostgreSql"
                ? new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString).MaxPoolSize
                : new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(database.ConnectionString).MaxPoolSize;
            Assert.Equal(expected, pool);
        }
    }

    [Fact]
    public void AMinimumPoolAboveTheBoundIsRefusedByItsKey()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => Storage(Configuration(
            ("Storage:Provider", "PostgreSql"), ("Storage:ConnectionString", Postgres + ";Minimum Pool Size=30"))));
        Assert.StartsWith("Storage:ConnectionString sets a minimum pool size of 30, above the 20 connections", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    public void AMaxConnectionsOutOfRangeIsRefused(string value)
    {
        var ex = Assert.Throws<ValidationException>(() => ClusterMembership.Resolve(Configuration(
            ("Storage:Provider", "PostgreSql"), ("Storage:ConnectionString", Postgres), ("Cluster:Clustering", "AdoNet"), ("Storage:MaxConnections", value))));
        Assert.Contains("MaxConnections", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ValidationException>(() => SiloServer.Build(new Dictionary<string, string> { ["Storage:MaxConnections"] = value }));
    }

    [Fact]
    public void TheResponseTimeoutReachesTheFrontendsOrleansClientAndDefaultsToTenSeconds()
    {
        string[] adoNet = ["--Cluster:Clustering=AdoNet", "--Storage:Provider=PostgreSql", $"--Storage:ConnectionString={Postgres}"];
        using var tuned = GatewayApplication.Create([.. adoNet, "--Cluster:ResponseTimeout=00:00:04"]);
        Assert.Equal(TimeSpan.FromSeconds(4), tuned.Services.GetRequiredService<IOptions<ClientMessagingOptions>>().Value.ResponseTimeout);

        using var plain = GatewayApplication.Create(adoNet);
        Assert.Equal(TimeSpan.FromSeconds(10), plain.Services.GetRequiredService<IOptions<ClientMessagingOptions>>().Value.ResponseTimeout);
    }

    [Theory]
    [InlineData("00:00:00.500")]
    [InlineData("01:00:00")]
    public void AResponseTimeoutOutOfRangeIsRefused(string value)
    {
        var ex = Assert.Throws<ValidationException>(() => ClusterMembership.Resolve(Configuration(("Cluster:ResponseTimeout", value))));
        Assert.Contains("ResponseTimeout", ex.Message, StringComparison.Ordinal);
    }

    private static StorageDatabase Storage(IConfiguration configuration) =>
        StorageDatabase.Create(configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions(), "/srv");

    private static IConfiguration Configuration(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
}
