using Grains.Interfaces;
using Orleans.Runtime;

namespace Grains;

/// <summary>A registered client, keyed by the digest of its token.</summary>
public sealed class ClientGrain(
    [PersistentState("client", Names.Storage)] IPersistentState<ClientState> state,
    TimeProvider time) : Grain, IClientGrain
{
    private bool Registered => state.State.Id > 0 && !state.State.Deleting;

    public async Task<int> Register(ClientInformation information)
    {
        ArgumentNullException.ThrowIfNull(information);
        if (state.State.Id > 0)
        {
            throw new InvalidOperationException("This token is already registered.");
        }

        // The record goes first, the index second: an id's index entry is the only way to reach a
        // client without its token, so it must never name a digest whose record was not stored. A
        // record left behind by a failed registration names an id nothing points at, under a token
        // nobody was given: nothing can reach it.
        var digest = this.GetPrimaryKeyString();
        var id = await GrainFactory.Grain<IIdIssuerGrain>(Names.IdIssuerKey).Next();
        var now = time.GetUtcNow();
        await WriteAsync(new ClientState
        {
            Id = id,
            Information = information.Json,
            Name = information.Name,
            Location = information.Location,
            CreatedAt = now,
            UpdatedAt = now,
        });

        var idIndex = GrainFactory.Grain<IClientIdGrain>(id);
        try
        {
            await idIndex.Assign(digest);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The id stays burnt. If storage took the assignment after all and refuses to take it back,
            // record and index stay together: a whole client, whose token the caller never received.
            if (await ReleaseQuietly(idIndex, digest))
            {
                await ClearQuietly();
            }

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
        if (state.State.Id <= 0)
        {
            NotRegistered();
            return null;
        }

        // Three steps, each idempotent, so that a delete interrupted by storage is finished by its retry:
        // first the record is marked, and from then on the token authenticates nothing (login, update
        // and send all start from Get); then the mailbox goes (index entry, queue, live session); the
        // record goes last. A marked record answers only Delete, which resumes at the mailbox.
        var id = state.State.Id;
        if (!state.State.Deleting)
        {
            var current = state.State;
            await WriteAsync(new ClientState
            {
                Id = current.Id,
                Information = current.Information,
                Name = current.Name,
                Location = current.Location,
                CreatedAt = current.CreatedAt,
                UpdatedAt = current.UpdatedAt,
                Deleting = true,
            });
        }

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

    /// <summary>Takes the id's index entry back; false when storage refused, and it may still name the digest.</summary>
    private static async Task<bool> ReleaseQuietly(IClientIdGrain idIndex, string digest)
    {
        try
        {
            await idIndex.Release(digest);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Storage is failing already; the caller hears the registration's own error.
            return false;
        }
    }

    /// <summary>Removes the record of a registration that failed; one that stays is unreachable (see Register).</summary>
    private async Task ClearQuietly()
    {
        try
        {
            await state.ClearStateAsync();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Unreachable either way; forgetting it in memory lets this activation go.
        }

        DeactivateOnIdle();
    }
}
