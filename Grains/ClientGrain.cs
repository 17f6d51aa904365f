using Grains.Interfaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Grains;

/// <summary>
/// A registered client, keyed by the digest of its token. A new token moves the record to the new
/// digest's grain; the id's index (<see cref="IClientIdGrain"/>) names the current digest, and a
/// record caught in the middle of a move asks it before it answers.
/// </summary>
public sealed partial class ClientGrain(
    [PersistentState("client", Names.Storage)] IPersistentState<ClientState> state,
    IOptions<ClientStoreOptions> options,
    TimeProvider time,
    ILogger<ClientGrain> logger) : Grain, IClientGrain
{
    private bool Registered => state.State.Id > 0 && !state.State.Deleting;

    private bool Moving => state.State.MovingTo is not null || state.State.MovedFrom is not null;

    private bool TokenExpired =>
        options.Value.TokenLifetime is { } lifetime && time.GetUtcNow() - (state.State.TokenIssuedAt ?? state.State.CreatedAt) >= lifetime;

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
            TokenIssuedAt = now,
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

    public async Task<ClientSnapshot?> Get() => await IsCurrentAsync() && !TokenExpired ? Snapshot() : NotRegistered();

    public async Task<ClientSnapshot?> Read() => await IsCurrentAsync() ? Snapshot() : NotRegistered();

    public async Task<ClientSnapshot?> Update(ClientInformation information)
    {
        ArgumentNullException.ThrowIfNull(information);
        if (!await SettleAsync() || TokenExpired)
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
            TokenIssuedAt = current.TokenIssuedAt,
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
        if (!state.State.Deleting)
        {
            if (!await SettleAsync() || TokenExpired)
            {
                NotRegistered();
                return null;
            }

            var marked = Copy(state.State, movingTo: null, movedFrom: null);
            marked.Deleting = true;
            await WriteAsync(marked);
        }

        var id = state.State.Id;
        await GrainFactory.Grain<IClientIdGrain>(id).Delete(this.GetPrimaryKeyString());
        await state.ClearStateAsync();
        DeactivateOnIdle();
        return id;
    }

    public async Task<int?> Rotate(string newDigest, string? keepSessionId, bool evenIfExpired)
    {
        ArgumentException.ThrowIfNullOrEmpty(newDigest);
        var digest = this.GetPrimaryKeyString();
        if (newDigest == digest)
        {
            throw new ArgumentException("A token cannot move to its own digest.", nameof(newDigest));
        }

        if (!await SettleAsync() || (TokenExpired && !evenIfExpired))
        {
            NotRegistered();
            return null;
        }

        // Each step leaves a state that authentication reads right: until the index moves, this key
        // is the client's (the marks only make both records ask the index); from then on the new one is.
        var id = state.State.Id;
        var client = Snapshot();
        var successor = GrainFactory.Grain<IClientGrain>(newDigest);
        await WriteAsync(Copy(state.State, movingTo: newDigest, movedFrom: null));

        // A failure from here until the index answers leaves the mark: whether the index moved is then
        // unknown, and the next use of either key asks it.
        await successor.Adopt(client, digest);
        if (!await GrainFactory.Grain<IClientIdGrain>(id).MoveDigest(digest, newDigest, keepSessionId))
        {
            // The index names neither key: the client was deleted meanwhile.
            await SettleAsync();
            return null;
        }

        // The move is done; what follows only tidies up, and a record it misses still asks the index.
        try
        {
            await successor.ConfirmMove();
            await state.ClearStateAsync();
            state.State = new ClientState();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogTidyFailed(logger, ex, id);
        }

        DeactivateOnIdle();
        return id;
    }

    public async Task Adopt(ClientSnapshot client, string predecessor)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(predecessor);
        if (Registered && state.State.MovedFrom != predecessor)
        {
            throw new InvalidOperationException("This token is already registered.");
        }

        await WriteAsync(new ClientState
        {
            Id = client.Id,
            Information = client.Information.Json,
            Name = client.Information.Name,
            Location = client.Information.Location,
            CreatedAt = client.CreatedAt,
            UpdatedAt = client.UpdatedAt,
            TokenIssuedAt = time.GetUtcNow(),
            MovedFrom = predecessor,
        });
    }

    public async Task ConfirmMove()
    {
        if (Registered && state.State.MovedFrom is not null)
        {
            await SettleAsync();
        }
    }

    public async Task<bool> ExpireUnused(DateTimeOffset registeredBefore)
    {
        if (!await SettleAsync() || state.State.CreatedAt > registeredBefore)
        {
            return false;
        }

        if (!await GrainFactory.Grain<IClientIdGrain>(state.State.Id).ExpireUnused(this.GetPrimaryKeyString(), registeredBefore))
        {
            return false;
        }

        await state.ClearStateAsync();
        DeactivateOnIdle();
        return true;
    }

    /// <summary>
    /// True when this key is the client's. A record marked by a move that did not finish asks the
    /// id's index; nothing is written, so read-only calls may do it.
    /// </summary>
    private async Task<bool> IsCurrentAsync() =>
        Registered && (!Moving || await GrainFactory.Grain<IClientIdGrain>(state.State.Id).GetDigest() == this.GetPrimaryKeyString());

    /// <summary>
    /// As <see cref="IsCurrentAsync"/>, and finishes an interrupted move's part here: the mark goes
    /// when the index names this key, the record goes when it names another.
    /// </summary>
    private async Task<bool> SettleAsync()
    {
        if (!Registered)
        {
            return false;
        }

        if (!Moving)
        {
            return true;
        }

        if (await GrainFactory.Grain<IClientIdGrain>(state.State.Id).GetDigest() == this.GetPrimaryKeyString())
        {
            await WriteAsync(Copy(state.State, movingTo: null, movedFrom: null));
            return true;
        }

        await state.ClearStateAsync();
        state.State = new ClientState();
        return false;
    }

    private static ClientState Copy(ClientState s, string? movingTo, string? movedFrom) => new()
    {
        Id = s.Id,
        Information = s.Information,
        Name = s.Name,
        Location = s.Location,
        CreatedAt = s.CreatedAt,
        UpdatedAt = s.UpdatedAt,
        TokenIssuedAt = s.TokenIssuedAt,
        MovingTo = movingTo,
        MovedFrom = movedFrom,
    };

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId} moved to its new token, but the old record could not be tidied; it still refuses the old token")]
    private static partial void LogTidyFailed(ILogger logger, Exception exception, int clientId);
}
