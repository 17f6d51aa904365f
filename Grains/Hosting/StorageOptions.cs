using System.ComponentModel.DataAnnotations;

namespace Grains.Hosting;

/// <summary>The database engines the store runs on.</summary>
public enum StorageProvider
{
    /// <summary>An embedded SQLite file (the default): one process, no server.</summary>
    Sqlite,

    /// <summary>A PostgreSQL server, through Npgsql.</summary>
    PostgreSql,

    /// <summary>A SQL Server (or Azure SQL) database, through Microsoft.Data.SqlClient.</summary>
    SqlServer,
}

/// <summary>Where grain state lives, section <c>Storage</c>.</summary>
public sealed class StorageOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Storage";

    /// <summary>The database engine (default <see cref="StorageProvider.Sqlite"/>).</summary>
    public StorageProvider Provider { get; set; } = StorageProvider.Sqlite;

    /// <summary>The SQLite file, relative to the content root (default <c>data/clients.db</c>); ignored when <see cref="ConnectionString"/> is set.</summary>
    [Required]
    public string SqlitePath { get; set; } = "data/clients.db";

    /// <summary>
    /// A full ADO.NET connection string: overrides <see cref="SqlitePath"/> for SQLite, and is
    /// required for the servers.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Seconds a statement may wait (for a lock, say) before it fails (default 30), whatever the provider.</summary>
    [Range(1, 600)]
    public int CommandTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// PostgreSQL and SQL Server: the most connections this process opens to the database, for
    /// grain storage and cluster membership together (default 20, so that a few silos and frontends
    /// fit PostgreSQL's default <c>max_connections</c> of 100 with room to spare). It becomes the
    /// connection pool's maximum; a connection string's own maximum may lower it, never raise it.
    /// A call that finds every connection busy waits for one (up to the connection string's
    /// connect timeout) instead of opening more.
    /// </summary>
    [Range(1, 1000)]
    public int MaxConnections { get; set; } = DefaultMaxConnections;

    /// <summary>The default of <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 20;

    /// <summary>True for the providers that run as a server several processes share.</summary>
    public static bool IsServer(StorageProvider provider) => provider is StorageProvider.PostgreSql or StorageProvider.SqlServer;
}
