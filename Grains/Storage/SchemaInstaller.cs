using Microsoft.Extensions.Logging;

namespace Grains.Storage;

/// <summary>
/// Applies the storage schema before anything reads it: the ADO.NET provider loads its queries
/// from the database when it starts, so the tables and query rows must exist by then.
/// </summary>
public sealed partial class SchemaInstaller(StorageDatabase database, ILogger<SchemaInstaller> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(SchemaInstaller), ServiceLifecycleStage.First, ApplyAsync);

    private async Task ApplyAsync(CancellationToken cancellationToken)
    {
        await database.ApplySchemaAsync(cancellationToken);
        LogApplied(logger, database.Provider.ToString());
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage schema for {Provider} is in place")]
    private static partial void LogApplied(ILogger logger, string provider);
}
