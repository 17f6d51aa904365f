using Grains.Interfaces;
using Orleans.Runtime;

namespace Grains;

/// <summary>Index from client id to token digest.</summary>
public sealed class ClientIdGrain(
    [PersistentState("clientId", Names.Storage)] IPersistentState<ClientIdState> state) : Grain, IClientIdGrain
{
    public async Task Assign(string digest)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        if (state.State.Digest == digest)
        {
            return;
        }

        if (state.State.Digest is not null)
        {
            throw new InvalidOperationException($"Id {this.GetPrimaryKeyLong()} is already assigned.");
        }

        await WriteAsync(digest);
    }

    public Task<string?> GetDigest() => Task.FromResult(state.State.Digest);

    public async Task Release(string digest)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        if (state.State.Digest == digest)
        {
            await WriteAsync(null);
        }
    }

    private async Task WriteAsync(string? digest)
    {
        var previous = state.State.Digest;
        state.State.Digest = digest;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State.Digest = previous;
            throw;
        }
    }
}
