namespace Grains.Interfaces;

/// <summary>A range of ids, both ends included.</summary>
/// <param name="First">The first id of the range.</param>
/// <param name="Last">The last id of the range.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.IdBlock")]
public readonly record struct IdBlock([property: Id(0)] int First, [property: Id(1)] int Last);

/// <summary>
/// Hands out blocks of ids and persists only the upper bound of the last block, so a restart
/// skips the unused rest of a block and never repeats an id.
/// </summary>
[Alias("Grains.Interfaces.IIdAllocatorGrain")]
public interface IIdAllocatorGrain : IGrainWithIntegerKey
{
    /// <summary>Reserves the next block of ids; the reservation is durable when this returns.</summary>
    [Alias("Reserve")]
    Task<IdBlock> Reserve();

    /// <summary>The last id of the last reserved block: no id above it has been handed out.</summary>
    [Alias("HighWater"), Orleans.Concurrency.ReadOnly]
    Task<int> HighWater();
}

/// <summary>
/// The cluster-wide sweep that deletes clients that never logged in: one activation walks the ids
/// in batches, its place in the walk stored, so that it goes on where it was after a restart.
/// </summary>
[Alias("Grains.Interfaces.IExpirySweeperGrain")]
public interface IExpirySweeperGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Reads the next batch of ids (starting again at 1 after the last one handed out) and deletes
    /// the clients among them registered at or before <paramref name="registeredBefore"/> that never
    /// logged in; returns how many it deleted.
    /// </summary>
    [Alias("SweepBatch")]
    Task<int> SweepBatch(DateTimeOffset registeredBefore);
}

/// <summary>Issues single ids from a block held in memory, one activation per silo, so registration has no cluster-wide hot spot.</summary>
[Alias("Grains.Interfaces.IIdIssuerGrain")]
public interface IIdIssuerGrain : IGrainWithIntegerKey
{
    /// <summary>The next unused id.</summary>
    [Alias("Next")]
    Task<int> Next();
}
