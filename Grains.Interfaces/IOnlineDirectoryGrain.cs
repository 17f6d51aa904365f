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

/// <summary>
/// The online clients list, WebSocket id to client id, split into <see cref="OnlineDirectory.ShardCount"/>
/// shards keyed by <see cref="OnlineDirectory.ShardOf"/> so that no single activation carries every login.
/// </summary>
[Alias("Grains.Interfaces.IOnlineDirectoryGrain")]
public interface IOnlineDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>Adds or replaces the entry of a socket.</summary>
    [Alias("Add")]
    Task Add(OnlineEntry entry);

    /// <summary>Removes the entry of a socket, if any.</summary>
    [Alias("Remove")]
    Task Remove(string connectionId);

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
        grains.GetGrain<IOnlineDirectoryGrain>(ShardOf(connectionId));
}
