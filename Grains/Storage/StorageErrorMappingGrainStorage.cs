using System.Data.Common;
using System.Globalization;
using Grains.Interfaces;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Orleans.Storage;

namespace Grains.Storage;

/// <summary>
/// The storage boundary for errors: a database provider's exception (<see cref="DbException"/> and
/// its kin: Npgsql's PostgresException, SqlException, SqliteException) becomes a
/// <see cref="StorageUnavailableException"/> with the provider's code and message. The provider's
/// types have no Orleans codec, so an error that carried one could not reach a caller on another
/// silo; ours can. Other exceptions (an ETag conflict among them) pass through unchanged.
/// </summary>
internal sealed class StorageErrorMappingGrainStorage(IGrainStorage inner) : IGrainStorage
{
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        try
        {
            await inner.ReadStateAsync(stateName, grainId, grainState);
        }
        catch (Exception ex) when (Map(ex) is { } mapped)
        {
            throw mapped;
        }
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        try
        {
            await inner.WriteStateAsync(stateName, grainId, grainState);
        }
        catch (Exception ex) when (Map(ex) is { } mapped)
        {
            throw mapped;
        }
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        try
        {
            await inner.ClearStateAsync(stateName, grainId, grainState);
        }
        catch (Exception ex) when (Map(ex) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <summary>Our exception for a provider's one anywhere in the chain; null for anything else.</summary>
    internal static StorageUnavailableException? Map(Exception exception)
    {
        if (exception is InconsistentStateException or StorageUnavailableException)
        {
            return null;
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is DbException db)
            {
                // The provider's exception stays behind (it cannot travel): its code and message go instead.
                return new StorageUnavailableException(Code(db), $"{db.GetType().Name}: {db.Message}");
            }
        }

        return null;
    }

    private static string? Code(DbException exception) => exception switch
    {
        SqliteException sqlite => sqlite.SqliteErrorCode.ToString(CultureInfo.InvariantCulture),
        SqlException sql => sql.Number.ToString(CultureInfo.InvariantCulture),
        _ => exception.SqlState,
    };
}
