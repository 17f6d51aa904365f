using System.Collections.Immutable;
using Orleans.Concurrency;

namespace Grains.Interfaces;

/// <summary>One online session: which socket, which client, which frontend owns the socket.</summary>
/// <param name="ConnectionId">The WebSocket id the frontend gave the socket.</param>
/// <param name="ClientId">The logged-in client's id.</param>
/// <param name="FrontendId">The frontend process that owns the socket.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.OnlineEntry")]
public sealed record OnlineEntry(
    [property: Id(0)] string ConnectionId,
    [property: Id(1)] int ClientId,
    [property: Id(2)] string FrontendId);

/// <summary>One change to a shard: the entry a socket now has, or, with no entry, its removal.</summary>
/// <param name="ConnectionId">The WebSocket id.</param>
/// <param name="Entry">The socket's entry; null to remove it.</param>
[GenerateSerializer, Immutable, Alias("Grains.Interfaces.DirectoryChange")]
public sealed record DirectoryChange(
    [property: Id(0)] string ConnectionId,
    [property: Id(1)] OnlineEntry? Entry)
{
    /// <summary>Adds or replaces the entry of <paramref name="entry"/>'s socket.</summary>
    public static DirectoryChange Add(OnlineEntry entry) => new(entry.ConnectionId, entry);

    /// <summary>Removes the entry of a socket, if any.</summary>
    public static DirectoryChange Remove(string connectionId) => new(connectionId, null);
}

/// <summary>
/// The online clients list, WebSocket id to client id, split into <see cref="OnlineDirectory.ShardCount"/>
/// shards keyed by <see cref="OnlineDirectory.ShardOf"/> so that no single activation carries every login.
/// Each frontend holds a lease on every shard; the entries of a frontend whose lease runs out go.
/// </summary>
[Alias("Grains.Interfaces.IOnlineDirectoryGrain")]
public interface IOnlineDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Applies a frontend's changes in order (a frontend sends those that piled up while its previous
    /// call was under way in one call); renews the frontend's lease when any adds an entry.
    /// </summary>
    [Alias("Apply")]
    Task Apply(string frontendId, ImmutableArray<DirectoryChange> changes, TimeSpan leaseFor);

    /// <summary>Renews a frontend's lease; false when the shard does not know the frontend (it lost its memory), so the frontend restores its entries.</summary>
    [Alias("Renew")]
    Task<bool> Renew(string frontendId, TimeSpan leaseFor);

    /// <summary>Replaces every entry of a frontend in this shard and renews its lease.</summary>
    [Alias("Restore")]
    Task Restore(string frontendId, ImmutableArray<OnlineEntry> entries, TimeSpan leaseFor);

    /// <summary>The frontends whose lease on this shard is live.</summary>
    [Alias("Frontends"), ReadOnly]
    Task<ImmutableArray<string>> Frontends();

    /// <summary>Every entry of this shard.</summary>
    [Alias("List"), ReadOnly]
    Task<ImmutableArray<OnlineEntry>> List();
}

/// <summary>How WebSocket ids map onto directory shards.</summary>
public static class OnlineDirectory
{
    /// <summary>The number of directory shards.</summary>
    public const int ShardCount = 8;

    /// <summary>The shard that holds a socket's entry: a stable hash, the same in every process.</summary>
    public static long ShardOf(string connectionId)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionId);
        var hash = 2166136261u;
        foreach (var c in connectionId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash % ShardCount;
    }

    /// <summary>The directory grain that holds a socket's entry.</summary>
    public static IOnlineDirectoryGrain For(IGrainFactory grains, string connectionId) =>
        grains.Grain<IOnlineDirectoryGrain>(ShardOf(connectionId));

    /// <summary>The distinct online client ids of every shard, ascending.</summary>
    public static async Task<int[]> OnlineClientIdsAsync(IGrainFactory grains)
    {
        ArgumentNullException.ThrowIfNull(grains);
        var shards = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(s => grains.Grain<IOnlineDirectoryGrain>(s).List()));
        return [.. shards.SelectMany(s => s).Select(e => e.ClientId).Distinct().Order()];
    }
}
