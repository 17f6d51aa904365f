using System.Data.Common;
using System.Reflection;
using Grains.Hosting;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Grains.Storage;

/// <summary>A database that holds our schema (grain state, cluster membership): how to reach it and how to lay it out.</summary>
public sealed class StorageDatabase
{
    /// <summary>The ADO.NET invariant under which Orleans finds Microsoft.Data.Sqlite.</summary>
    public const string SqliteInvariant = "System.Data.SQLite";

    /// <summary>The ADO.NET invariant under which Orleans finds Npgsql.</summary>
    public const string PostgreSqlInvariant = "Npgsql";

    /// <summary>The ADO.NET invariant under which Orleans finds Microsoft.Data.SqlClient.</summary>
    public const string SqlServerInvariant = "Microsoft.Data.SqlClient";

    private StorageDatabase(StorageProvider provider, string connectionString)
    {
        Provider = provider;
        Invariant = provider switch
        {
            StorageProvider.Sqlite => SqliteInvariant,
            StorageProvider.PostgreSql => PostgreSqlInvariant,
            StorageProvider.SqlServer => SqlServerInvariant,
            _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, null),
        };
        ConnectionString = connectionString;
    }

    public StorageProvider Provider { get; }

    public string Invariant { get; }

    public string ConnectionString { get; }

    /// <summary>The SQLite database file, as SQLite resolves it; null for the server databases.</summary>
    public string? SqliteFile => Provider == StorageProvider.Sqlite
        ? Path.GetFullPath(new SqliteConnectionStringBuilder(ConnectionString).DataSource)
        : null;

    /// <summary>Resolves the settings into a connection string; relative SQLite paths are taken from <paramref name="contentRoot"/>.</summary>
    public static StorageDatabase Create(StorageOptions options, string contentRoot)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string Key = StorageOptions.Section + ":" + nameof(StorageOptions.ConnectionString);
        switch (options.Provider)
        {
            case StorageProvider.Sqlite:
                var builder = new SqliteConnectionStringBuilder(options.ConnectionString ?? string.Empty);
                if (options.ConnectionString is null)
                {
                    builder.DataSource = Path.GetFullPath(options.SqlitePath, contentRoot);
                }

                builder.Mode = SqliteOpenMode.ReadWriteCreate;
                builder.DefaultTimeout = options.CommandTimeoutSeconds;
                builder.Pooling = true;
                return new StorageDatabase(StorageProvider.Sqlite, builder.ToString());
            case StorageProvider.PostgreSql or StorageProvider.SqlServer:
                if (string.IsNullOrWhiteSpace(options.ConnectionString))
                {
                    throw new InvalidOperationException($"{Key} is required when {StorageOptions.Section}:{nameof(StorageOptions.Provider)} is {options.Provider}.");
                }

                return ForServer(options.Provider, options.ConnectionString, Key, options.CommandTimeoutSeconds, options.MaxConnections);
            default:
                throw new InvalidOperationException($"{StorageOptions.Section}:{nameof(StorageOptions.Provider)} '{options.Provider}' is not supported.");
        }
    }

    /// <summary>
    /// A PostgreSQL or SQL Server database; <paramref name="settingKey"/> names the setting the
    /// connection string came from, for the message when it does not parse. The pool's maximum
    /// becomes <paramref name="maxConnections"/>, or the connection string's own maximum when that
    /// is lower: the drivers' default of 100 per process would let a few processes exhaust the server.
    /// </summary>
    public static StorageDatabase ForServer(StorageProvider provider, string connectionString, string settingKey, int commandTimeoutSeconds, int maxConnections = StorageOptions.DefaultMaxConnections)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        try
        {
            switch (provider)
            {
                case StorageProvider.PostgreSql:
                    var postgres = new NpgsqlConnectionStringBuilder(connectionString) { CommandTimeout = commandTimeoutSeconds };
                    postgres.MaxPoolSize = Math.Min(postgres.MaxPoolSize, maxConnections);
                    CheckMinimum(postgres.MinPoolSize, postgres.MaxPoolSize, settingKey);
                    return new StorageDatabase(provider, postgres.ConnectionString);
                case StorageProvider.SqlServer:
                    var sqlServer = new SqlConnectionStringBuilder(connectionString) { CommandTimeout = commandTimeoutSeconds };
                    sqlServer.MaxPoolSize = Math.Min(sqlServer.MaxPoolSize, maxConnections);
                    CheckMinimum(sqlServer.MinPoolSize, sqlServer.MaxPoolSize, settingKey);
                    return new StorageDatabase(provider, sqlServer.ConnectionString);
                default:
                    throw new InvalidOperationException($"{provider} is not a database server; {settingKey} needs PostgreSql or SqlServer.");
            }
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new InvalidOperationException($"{settingKey} is not a valid {provider} connection string: {ex.Message}", ex);
        }
    }

    /// <summary>A pool that must keep more connections open than it may open fails every call; refuse it at start.</summary>
    private static void CheckMinimum(int minPoolSize, int maxPoolSize, string settingKey)
    {
        if (minPoolSize > maxPoolSize)
        {
            throw new InvalidOperationException(
                $"{settingKey} sets a minimum pool size of {minPoolSize}, above the {maxPoolSize} connections this process may open ({StorageOptions.Section}:{nameof(StorageOptions.MaxConnections)} or the string's own maximum).");
        }
    }

    /// <summary>The schema scripts of this provider, in the order they are applied.</summary>
    public IReadOnlyList<(string Name, string Text)> SchemaScripts() => SchemaScripts(Provider);

    /// <summary>The embedded schema scripts of <paramref name="provider"/>, in name order.</summary>
    public static IReadOnlyList<(string Name, string Text)> SchemaScripts(StorageProvider provider)
    {
        var assembly = typeof(StorageDatabase).Assembly;
        var prefix = $"Sql/{provider}/";
        return [.. assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (n, Read(assembly, n)))];
    }

    /// <summary>Creates whatever of the schema is missing; safe to run from several processes at once.</summary>
    public async Task ApplySchemaAsync(CancellationToken cancellationToken)
    {
        switch (Provider)
        {
            case StorageProvider.Sqlite:
                await ApplySqliteAsync(cancellationToken);
                break;
            case StorageProvider.PostgreSql:
                // A connection of its own: a script that fails leaves no half-done transaction in the pool.
                await using (var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString))
                {
                    await ApplyServerScriptsAsync(connection, cancellationToken);
                }

                break;
            case StorageProvider.SqlServer:
                await using (var connection = new SqlConnection(new SqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString))
                {
                    await ApplyServerScriptsAsync(connection, cancellationToken);
                }

                break;
            default:
                throw new InvalidOperationException($"No schema for {Provider}.");
        }
    }

    /// <summary>
    /// Runs each script as one command. Every server script opens its own transaction and first
    /// takes the schema lock (pg_advisory_xact_lock, sp_getapplock), so processes that start at
    /// once take turns, and the same file runs unchanged under psql or sqlcmd.
    /// </summary>
    private async Task ApplyServerScriptsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await connection.OpenAsync(cancellationToken);
        foreach (var (_, text) in SchemaScripts())
        {
            await ExecuteAsync(connection, null, text, cancellationToken);
        }
    }

    private async Task ApplySqliteAsync(CancellationToken cancellationToken)
    {
        var file = new SqliteConnectionStringBuilder(ConnectionString).DataSource;
        if (Path.GetDirectoryName(Path.GetFullPath(file)) is { } folder)
        {
            Directory.CreateDirectory(folder);
        }

        await using var connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken);

        // WAL lets readers run beside the one writer; the setting stays with the file.
        await ExecuteAsync(connection, null, "PRAGMA journal_mode=WAL;", cancellationToken);

        // BEGIN IMMEDIATE takes the write lock first, so two processes starting at once take turns.
        // Microsoft.Data.Sqlite has no async overload that takes the lock mode; this runs once, at start.
        await using var transaction = connection.BeginTransaction(deferred: false);
        foreach (var (_, text) in SchemaScripts())
        {
            await ExecuteAsync(connection, transaction, text, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction? transaction, string text, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = text;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Missing embedded script {name}.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
