using Grains.Interfaces;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;

namespace Tests.Grains;

/// <summary>Directory leases on a clock the test drives: a frontend that stops renewing loses its entries when its lease runs out, not before.</summary>
public sealed class DirectoryLeaseTests
{
    [Fact]
    public async Task DirectoryEntriesOfAFrontendThatStopsRenewingDisappear()
    {
        using var database = new TempDatabase();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = await SqliteTestCluster.StartAsync(database.Path, silos: 1, time);
        var shard = cluster.Grains.GetGrain<IOnlineDirectoryGrain>(OnlineDirectory.ShardCount + 100);
        var lease = TimeSpan.FromSeconds(30);
        await shard.Apply("dying", [DirectoryChange.Add(new OnlineEntry("dying-1", 1, "dying"))], lease);
        await shard.Apply("living", [DirectoryChange.Add(new OnlineEntry("living-1", 2, "living"))], lease);

        // Just before the lease ends both are listed; the living frontend renews, the dying one never does again.
        time.Advance(lease - TimeSpan.FromSeconds(1));
        Assert.True(await shard.Renew("living", lease));
        Assert.Equal(["dying-1", "living-1"], (await shard.List()).Select(e => e.ConnectionId).Order());

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["living-1"], (await shard.List()).Select(e => e.ConnectionId));
        Assert.False(await shard.Renew("dying", lease));

        await shard.Restore("dying", [new OnlineEntry("dying-2", 1, "dying")], lease);
        Assert.Contains(await shard.List(), e => e.ConnectionId == "dying-2");
        Assert.True(await shard.Renew("living", lease));
    }
}
