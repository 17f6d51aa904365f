using System.Collections.Immutable;
using Grains.Interfaces;
using Microsoft.Extensions.Options;
using WebSocketFrontend.Protocol;

namespace WebSocketFrontend.Sessions;

/// <summary>
/// This frontend's changes to the online directory, sent with a group commit per shard: at most one
/// call is under way to a shard, and the changes that arrive meanwhile go together in the next one.
/// An idle shard gets a change at once; under load one call carries many logins and closes, instead
/// of one call each. Each caller's task completes when the call that carried its change did, and
/// fails with it.
/// </summary>
public sealed class DirectoryUpdates(IGrainFactory grains, FrontendIdentity frontend, IOptions<ProtocolOptions> options)
{
    private readonly Shard[] _shards = [.. Enumerable.Range(0, OnlineDirectory.ShardCount).Select(_ => new Shard())];

    /// <summary>Adds or replaces the entry of a socket; completes once the shard holds it.</summary>
    public Task AddAsync(OnlineEntry entry) => ApplyAsync(DirectoryChange.Add(entry));

    /// <summary>Removes the entry of a socket; completes once the shard no longer holds it.</summary>
    public Task RemoveAsync(string connectionId) => ApplyAsync(DirectoryChange.Remove(connectionId));

    private Task ApplyAsync(DirectoryChange change)
    {
        var shardKey = OnlineDirectory.ShardOf(change.ConnectionId);
        var shard = _shards[shardKey];
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool start;
        lock (shard)
        {
            shard.Pending.Add((change, done));
            start = !shard.Sending;
            shard.Sending = true;
        }

        if (start)
        {
            _ = SendAsync(shardKey, shard);
        }

        return done.Task;
    }

    /// <summary>Sends what is pending to the shard, call after call, until nothing is.</summary>
    private async Task SendAsync(long shardKey, Shard shard)
    {
        var directory = grains.Grain<IOnlineDirectoryGrain>(shardKey);
        while (true)
        {
            List<(DirectoryChange Change, TaskCompletionSource Done)> batch;
            lock (shard)
            {
                if (shard.Pending.Count == 0)
                {
                    shard.Sending = false;
                    return;
                }

                batch = shard.Pending;
                shard.Pending = [];
            }

            try
            {
                await directory.Apply(frontend.Id, [.. batch.Select(b => b.Change)], options.Value.DirectoryLease);
                batch.ForEach(b => b.Done.SetResult());
            }
            catch (Exception ex)
            {
                batch.ForEach(b => b.Done.SetException(ex));
            }
        }
    }

    private sealed class Shard
    {
        public List<(DirectoryChange Change, TaskCompletionSource Done)> Pending { get; set; } = [];

        public bool Sending { get; set; }
    }
}
