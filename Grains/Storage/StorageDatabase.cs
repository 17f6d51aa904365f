using System.Data.Common;
using System.Reflection;
using Grains.Hosting;
using Microsoft.Data.Sqlite;

namespace Grains.Storage;

/// <summary>The database behind grain storage: how to reach it and how to lay out its schema.</summary>
public sealed class StorageDatabase
{
    /// <summary>The ADO.NET invariant under which Orleans finds Microsoft.Data.Sqlite.</summary>
    public const string SqliteInvariant = "System.Data.SQLite";

    private StorageDatabase(StorageProvider provider, string invariant, string connectionString)
    {
        Provider = provider;
        Invariant = invariant;
        ConnectionString = connectionString;
    }

    public StorageProvider Provider { get; }

    public string Invariant { get; }

    public string ConnectionString { get; }

    /// <summary>Resolves the settings into a connection string; relative SQLite paths are taken from <paramref name="contentRoot"/>.</summary>
    public static StorageDatabase Create(StorageOptions options, string contentRoot)
    {
        ArgumentNullException.ThrowIfNull(options);
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
                return new StorageDatabase(StorageProvider.Sqlite, SqliteInvariant, builder.ToString());
            default:
                throw new InvalidOperationException($"Storage:Provider '{options.Provider}' is not supported.");
        }
    }

    /// <summary>The schema scripts of this provider, in the order they are applied.</summary>
    public IReadOnlyList<(string Name, string Text)> SchemaScripts()
    {
        var assembly = typeof(StorageDatabase).Assembly;
        var prefix = $"Sql/{Provider}/";
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
            default:
                throw new InvalidOperationException($"No schema for {Provider}.");
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
