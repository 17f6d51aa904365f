using System.Collections.Immutable;
using Grains.Interfaces;

namespace Grains;

/// <summary>
/// One shard of the online clients list. Held in memory only: a session lives no longer than its
/// socket, so nothing here is worth a storage write. Frontends hold leases; the entries of one
/// whose lease ran out (it died without closing its sockets) are dropped by a timer.
/// </summary>
[KeepAlive]
public sealed class OnlineDirectoryGrain(TimeProvider time) : Grain, IOnlineDirectoryGrain
{
    private static readonly TimeSpan SweepPeriod = TimeSpan.FromSeconds(1);

    private readonly Dictionary<string, OnlineEntry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _leases = new(StringComparer.Ordinal);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(Sweep, new GrainTimerCreationOptions(SweepPeriod, SweepPeriod) { Interleave = true });
        return Task.CompletedTask;
    }

    public Task Apply(string frontendId, ImmutableArray<DirectoryChange> changes, TimeSpan leaseFor)
    {
        var added = false;
        foreach (var change in changes)
        {
            if (change.Entry is { } entry)
            {
                _entries[change.ConnectionId] = entry;
                added = true;
            }
            else
            {
                _entries.Remove(change.ConnectionId);
            }
        }

        if (added)
        {
            _leases[frontendId] = time.GetUtcNow() + leaseFor;
        }

        return Task.CompletedTask;
    }

    public Task<bool> Renew(string frontendId, TimeSpan leaseFor)
    {
        // A lease that ran out is gone, whether or not the sweep has come by yet.
        if (!_leases.TryGetValue(frontendId, out var until) || until <= time.GetUtcNow())
        {
            Expire(frontendId);
            return Task.FromResult(false);
        }

        _leases[frontendId] = time.GetUtcNow() + leaseFor;
        return Task.FromResult(true);
    }

    public Task Restore(string frontendId, ImmutableArray<OnlineEntry> entries, TimeSpan leaseFor)
    {
        RemoveFrontend(frontendId);
        foreach (var entry in entries)
        {
            _entries[entry.ConnectionId] = entry;
        }

        _leases[frontendId] = time.GetUtcNow() + leaseFor;
        return Task.CompletedTask;
    }

    public Task<ImmutableArray<OnlineEntry>> List()
    {
        Sweep();
        return Task.FromResult(_entries.Values.ToImmutableArray());
    }

    public Task<ImmutableArray<string>> Frontends()
    {
        Sweep();
        return Task.FromResult(_leases.Keys.ToImmutableArray());
    }

    private Task Sweep(CancellationToken cancellationToken)
    {
        Sweep();
        return Task.CompletedTask;
    }

    /// <summary>Drops the frontends whose lease ran out, with their entries: the timer does it, and so does every read.</summary>
    private void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var (frontend, until) in _leases.ToArray())
        {
            if (until <= now)
            {
                Expire(frontend);
            }
        }
    }

    private void Expire(string frontendId)
    {
        RemoveFrontend(frontendId);
        _leases.Remove(frontendId);
    }

    private void RemoveFrontend(string frontendId)
    {
        foreach (var (connection, entry) in _entries.ToArray())
        {
            if (entry.FrontendId == frontendId)
            {
                _entries.Remove(connection);
            }
        }
    }
}
