using Grains.Interfaces;
using Microsoft.Extensions.Options;
using Tests.Infrastructure;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace Tests.Grains;

/// <summary>The frontend's group commit to the online directory: nothing lost, nothing reordered, failures reach every caller.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DirectoryUpdatesTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Silos.Grains;

    [Fact]
    public async Task ConcurrentChangesAllLandAndEachCallerHearsWhenItsOwnDid()
    {
        var frontend = new FrontendIdentity();
        var updates = new DirectoryUpdates(Grains, frontend, Options.Create(new ProtocolOptions()));
        var ids = Enumerable.Range(0, 300).Select(i => $"{frontend.Id}-socket-{i}").ToArray();

        // Far more changes than one call at a time could carry one by one: they pile up behind the call under way.
        await Task.WhenAll(ids.Select((id, i) => updates.AddAsync(new OnlineEntry(id, i + 1, frontend.Id))));
        Assert.Equal(ids.Order(), (await Entries(frontend.Id)).Select(e => e.ConnectionId).Order());

        // An add and the removal right after it, with no wait between, leave nothing behind.
        await Task.WhenAll(ids.SelectMany(id => new[] { updates.RemoveAsync(id), updates.AddAsync(new OnlineEntry(id, 9, frontend.Id)), updates.RemoveAsync(id) }));
        Assert.Empty(await Entries(frontend.Id));
    }

    private async Task<OnlineEntry[]> Entries(string frontendId)
    {
        var shards = await Task.WhenAll(Enumerable.Range(0, OnlineDirectory.ShardCount).Select(s => Grains.GetGrain<IOnlineDirectoryGrain>(s).List()));
        return [.. shards.SelectMany(s => s).Where(e => e.FrontendId == frontendId)];
    }
}
