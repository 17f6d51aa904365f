using System.Collections.Immutable;
using Grains.Interfaces;

namespace Grains;

/// <summary>
/// One shard of the online clients list. Held in memory only: a session lives no longer than its
/// socket, so nothing here is worth a storage write; kept alive so that idle collection cannot drop it.
/// </summary>
[KeepAlive]
public sealed class OnlineDirectoryGrain : Grain, IOnlineDirectoryGrain
{
    private readonly Dictionary<string, OnlineEntry> _entries = new(StringComparer.Ordinal);

    public Task Add(OnlineEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _entries[entry.ConnectionId] = entry;
        return Task.CompletedTask;
    }

    public Task Remove(string connectionId)
    {
        _entries.Remove(connectionId);
        return Task.CompletedTask;
    }

    public Task<ImmutableArray<OnlineEntry>> List() => Task.FromResult(_entries.Values.ToImmutableArray());
}
