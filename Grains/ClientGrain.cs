using Grains.Interfaces;
using Orleans.Runtime;

namespace Grains;

/// <summary>A registered client, keyed by the digest of its token.</summary>
public sealed class ClientGrain(
    [PersistentState("client", Names.Storage)] IPersistentState<ClientState> state,
    TimeProvider time) : Grain, IClientGrain
{
    private bool Registered => state.State.Id > 0;

    public async Task<int> Register(ClientInformation information)
    {
        ArgumentNullException.ThrowIfNull(information);
        if (Registered)
        {
            throw new InvalidOperationException("This token is already registered.");
        }

        var digest = this.GetPrimaryKeyString();
        var id = await GrainFactory.Grain<IIdIssuerGrain>(Names.IdIssuerKey).Next();
        var idIndex = GrainFactory.Grain<IClientIdGrain>(id);
        await idIndex.Assign(digest);

        var now = time.GetUtcNow();
        try
        {
            await WriteAsync(new ClientState
            {
                Id = id,
                Information = information.Json,
                Name = information.Name,
                Location = information.Location,
                CreatedAt = now,
                UpdatedAt = now,
            });
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The id stays burnt; its index entry would point at nothing, so take it back if storage lets us.
            await ReleaseQuietly(idIndex, digest);
            throw;
        }

        return id;
    }

    public Task<ClientSnapshot?> Get() => Task.FromResult(Registered ? Snapshot() : NotRegistered());

    public async Task<ClientSnapshot?> Update(ClientInformation information)
    {
        ArgumentNullException.ThrowIfNull(information);
        if (!Registered)
        {
            return NotRegistered();
        }

        var current = state.State;
        await WriteAsync(new ClientState
        {
            Id = current.Id,
            Information = information.Json,
            Name = information.Name,
            Location = information.Location,
            CreatedAt = current.CreatedAt,
            UpdatedAt = time.GetUtcNow(),
        });
        return Snapshot();
    }

    public async Task<int?> Delete()
    {
        if (!Registered)
        {
            NotRegistered();
            return null;
        }

        var id = state.State.Id;
        await GrainFactory.Grain<IClientIdGrain>(id).Delete(this.GetPrimaryKeyString());
        await state.ClearStateAsync();
        DeactivateOnIdle();
        return id;
    }

    /// <summary>Wrong tokens activate grains too; they go once the call returns instead of holding memory.</summary>
    private ClientSnapshot? NotRegistered()
    {
        DeactivateOnIdle();
        return null;
    }

    private ClientSnapshot Snapshot()
    {
        var s = state.State;
        return new ClientSnapshot(s.Id, new ClientInformation(s.Information, s.Name, s.Location), s.CreatedAt, s.UpdatedAt);
    }

    /// <summary>Writes the next state, or leaves the previous one in memory when storage refuses it.</summary>
    private async Task WriteAsync(ClientState next)
    {
        var previous = state.State;
        state.State = next;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State = previous;
            throw;
        }
    }

    private static async Task ReleaseQuietly(IClientIdGrain idIndex, string digest)
    {
        try
        {
            await idIndex.Release(digest);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Storage is failing already; an index entry pointing at an unregistered digest reads as "not found".
        }
    }
}
