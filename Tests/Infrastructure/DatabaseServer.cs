using System.Data;
using System.Data.Common;
using Grains.Hosting;
using Microsoft.Data.SqlClient;
using Npgsql;

namespace Tests.Infrastructure;

/// <summary>
/// A database server the tests may use, named by an environment variable that holds a connection
/// string whose login may create databases. Every test class gets a database of its own.
/// </summary>
public abstract class DatabaseServer
{
    /// <summary>PostgreSQL: <c>GATEWAY_TEST_POSTGRES</c>, set by .ci/run. Required in CI.</summary>
    public static readonly DatabaseServer PostgreSql = new PostgreSqlServer();

    /// <summary>SQL Server: <c>GATEWAY_TEST_SQLSERVER</c>. Optional everywhere: CI has no SQL Server.</summary>
    public static readonly DatabaseServer SqlServer = new SqlServerServer();

    public abstract StorageProvider Provider { get; }

    public abstract string EnvironmentVariable { get; }

    /// <summary>Whether CI must have this server (then a missing connection string fails instead of skipping).</summary>
    protected abstract bool RequiredInCi { get; }

    public abstract DbProviderFactory Factory { get; }

    /// <summary>The administrative connection string, or null when the variable is unset.</summary>
    public string? AdminConnectionString => Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value ? value : null;

    public bool IsConfigured => AdminConnectionString is not null;

    /// <summary>
    /// Skips the calling test when the server is not configured, or fails it where CI requires the
    /// server, so a CI machine that lost its database cannot pass by skipping.
    /// </summary>
    public void Require()
    {
        if (IsConfigured)
        {
            return;
        }

        var how = $"Set {EnvironmentVariable} to a {Provider} connection string whose login may create databases to run this test (README, Tests).";
        if (RequiredInCi && string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail($"CI=true but {EnvironmentVariable} is not set: .ci/run starts PostgreSQL and sets it. {how}");
        }

        Assert.Skip(how);
    }

    /// <summary>Creates an empty database for one test or test class; disposing it drops it.</summary>
    public async Task<TestDatabaseOnServer> CreateDatabaseAsync()
    {
        var name = $"gw_test_{Guid.NewGuid():N}";
        await ExecuteAdminAsync($"CREATE DATABASE {name}", TestContext.Current.CancellationToken);
        return new TestDatabaseOnServer(this, name, WithDatabase(name));
    }

    internal abstract string WithDatabase(string name);

    internal abstract Task DropAsync(string name, string connectionString);

    protected async Task ExecuteAdminAsync(string sql, CancellationToken cancellationToken)
    {
        await using var connection = Factory.CreateConnection()!;
        connection.ConnectionString = AdminConnectionString;
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed class PostgreSqlServer : DatabaseServer
    {
        public override StorageProvider Provider => StorageProvider.PostgreSql;

        public override string EnvironmentVariable => "GATEWAY_TEST_POSTGRES";

        protected override bool RequiredInCi => true;

        public override DbProviderFactory Factory => NpgsqlFactory.Instance;

        internal override string WithDatabase(string name) =>
            new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;

        internal override async Task DropAsync(string name, string connectionString)
        {
            await using (var connection = new NpgsqlConnection(connectionString))
            {
                NpgsqlConnection.ClearPool(connection);
            }

            // Dropped even when the test was cancelled: it is the one thing that keeps runs apart.
            await ExecuteAdminAsync($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", CancellationToken.None);
        }
    }

    private sealed class SqlServerServer : DatabaseServer
    {
        public override StorageProvider Provider => StorageProvider.SqlServer;

        public override string EnvironmentVariable => "GATEWAY_TEST_SQLSERVER";

        protected override bool RequiredInCi => false;

        public override DbProviderFactory Factory => SqlClientFactory.Instance;

        internal override string WithDatabase(string name) =>
            new SqlConnectionStringBuilder(AdminConnectionString) { InitialCatalog = name }.ConnectionString;

        internal override async Task DropAsync(string name, string connectionString)
        {
            await using (var connection = new SqlConnection(connectionString))
            {
                SqlConnection.ClearPool(connection);
            }

            await ExecuteAdminAsync($"ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [{name}]", CancellationToken.None);
        }
    }
}

/// <summary>A database created for a test, dropped on disposal.</summary>
public sealed class TestDatabaseOnServer(DatabaseServer server, string name, string connectionString) : IAsyncDisposable
{
    public DatabaseServer Server { get; } = server;

    public string Name { get; } = name;

    public string ConnectionString { get; } = connectionString;

    /// <summary>Storage and clustering both on this database, as a silo or a frontend is configured.</summary>
    public Dictionary<string, string> Settings(string clusterId) => new()
    {
        ["Storage:Provider"] = Server.Provider.ToString(),
        ["Storage:ConnectionString"] = ConnectionString,
        ["Cluster:Clustering"] = "AdoNet",
        ["Cluster:ServiceId"] = "client-management-tests",
        ["Cluster:ClusterId"] = clusterId,
    };

    public async Task<DbConnection> OpenAsync()
    {
        var connection = Server.Factory.CreateConnection()!;
        connection.ConnectionString = ConnectionString;
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        return connection;
    }

    /// <summary>Runs <paramref name="sql"/> (parameters as <c>@name</c>) and returns every row of every result set.</summary>
    public async Task<List<object?[]>> QueryAsync(string sql, params (string Name, object? Value, DbType Type)[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (parameterName, value, type) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = parameterName;
            parameter.DbType = type;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        var rows = new List<object?[]>();
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        do
        {
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                var values = new object?[reader.FieldCount];
                reader.GetValues(values!);
                rows.Add([.. values.Select(v => v is DBNull ? null : v)]);
            }
        }
        while (await reader.NextResultAsync(TestContext.Current.CancellationToken));

        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Server.DropAsync(Name, ConnectionString);
        }
        catch (DbException)
        {
            // A database left behind is named gw_test_*; the next run does not depend on it.
        }
    }
}
