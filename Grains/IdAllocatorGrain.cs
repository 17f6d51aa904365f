using Grains.Interfaces;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Grains;

/// <summary>Reserves blocks of ids; only the upper bound of the last block is stored.</summary>
public sealed class IdAllocatorGrain(
    [PersistentState("idAllocator", Names.Storage)] IPersistentState<IdAllocatorState> state,
    IOptions<ClientStoreOptions> options) : Grain, IIdAllocatorGrain
{
    public async Task<IdBlock> Reserve()
    {
        var size = options.Value.IdBlockSize;
        var first = state.State.HighWater + 1;
        if (first > int.MaxValue - size)
        {
            throw new InvalidOperationException("Client ids are exhausted.");
        }

        var last = first + size - 1;
        state.State.HighWater = last;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State.HighWater = first - 1;
            throw;
        }

        return new IdBlock(first, last);
    }

    public Task<int> HighWater() => Task.FromResult(state.State.HighWater);
}

/// <summary>
/// One activation per silo hands out ids from a block it reserved; non-reentrant, so two
/// registrations never get the same id, and nothing is written until the block runs out.
/// </summary>
[StatelessWorker(1)]
public sealed class IdIssuerGrain : Grain, IIdIssuerGrain
{
    private int _next = 1;
    private int _last;

    public async Task<int> Next()
    {
        if (_next > _last)
        {
            var block = await GrainFactory.Grain<IIdAllocatorGrain>(Names.IdAllocatorKey).Reserve();
            (_next, _last) = (block.First, block.Last);
        }

        return _next++;
    }
}
