using Microsoft.Extensions.Logging;

namespace Grains.Storage;

/// <summary>A database whose schema a silo applies at start: the grain storage one, and the membership one with ADO.NET clustering.</summary>
public sealed record SchemaTarget(StorageDatabase Database);

/// <summary>
/// Applies the schema before anything reads it: the ADO.NET providers load their queries from
/// the database when they start (grain storage, and the membership table with ADO.NET
/// clustering), so the tables and query rows must exist by then.
/// </summary>
public sealed partial class SchemaInstaller(IEnumerable<SchemaTarget> targets, ILogger<SchemaInstaller> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(SchemaInstaller), ServiceLifecycleStage.First, ApplyAsync);

    private async Task ApplyAsync(CancellationToken cancellationToken)
    {
        // Storage and membership usually share one database; its schema holds both and is applied once.
        var databases = targets
            .Select(t => t.Database)
            .DistinctBy(d => (d.Provider, d.ConnectionString));
        foreach (var database in databases)
        {
            await database.ApplySchemaAsync(cancellationToken);
            LogApplied(logger, database.Provider.ToString());
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Schema for {Provider} is in place")]
    private static partial void LogApplied(ILogger logger, string provider);
}
