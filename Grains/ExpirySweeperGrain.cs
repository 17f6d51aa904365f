using Grains.Interfaces;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Grains;

/// <summary>
/// Walks the ids from 1 to the allocator's high-water mark in bounded batches and deletes clients
/// that registered long ago and never logged in. Its place is stored after every batch, so a silo
/// restart or a new activation goes on from there. Each silo's <see cref="ExpirySweepService"/>
/// asks it for the next batch.
/// </summary>
public sealed class ExpirySweeperGrain(
    [PersistentState("expirySweep", Names.Storage)] IPersistentState<ExpirySweepState> state,
    IOptions<ClientStoreOptions> options) : Grain, IExpirySweeperGrain
{
    public async Task<int> SweepBatch(DateTimeOffset registeredBefore)
    {
        var highWater = await GrainFactory.Grain<IIdAllocatorGrain>(Names.IdAllocatorKey).HighWater();
        var first = state.State.Cursor >= highWater ? 1 : state.State.Cursor + 1;
        var last = (int)Math.Min(highWater, (long)first + options.Value.ExpirySweepBatch - 1);
        if (first > last)
        {
            return 0;
        }

        var expired = await Task.WhenAll(Enumerable.Range(first, last - first + 1).Select(id => ExpireAsync(id, registeredBefore)));
        state.State.Cursor = last;
        await state.WriteStateAsync();
        return expired.Count(e => e);
    }

    private async Task<bool> ExpireAsync(int id, DateTimeOffset registeredBefore)
    {
        var registration = await GrainFactory.Grain<IClientIdGrain>(id).Registration();

        // Most ids are logged-in clients or unused: they cost this one read.
        return registration is { Digest: { } digest, AwaitingFirstLogin: true, RegisteredAt: { } at } && at <= registeredBefore
            && await GrainFactory.Grain<IClientGrain>(digest).ExpireUnused(registeredBefore);
    }
}
