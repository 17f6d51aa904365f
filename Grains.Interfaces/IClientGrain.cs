using Orleans.Concurrency;

namespace Grains.Interfaces;

/// <summary>
/// One registered client, keyed by <see cref="TokenDigest.Of"/> of its secret token, so that a
/// lookup by token is one call and the store never holds a usable token.
/// </summary>
[Alias("Grains.Interfaces.IClientGrain")]
public interface IClientGrain : IGrainWithStringKey
{
    /// <summary>Stores a new client under a fresh id and returns that id.</summary>
    /// <exception cref="InvalidOperationException">The key is already registered.</exception>
    [Alias("Register")]
    Task<int> Register(ClientInformation information);

    /// <summary>The client's record, or <see langword="null"/> when the key is not registered.</summary>
    [Alias("Get"), ReadOnly]
    Task<ClientSnapshot?> Get();

    /// <summary>Replaces the information; <see langword="null"/> when the key is not registered.</summary>
    [Alias("Update")]
    Task<ClientSnapshot?> Update(ClientInformation information);

    /// <summary>Deletes the client, its queue and its sessions; the token stops working at once. Null when not registered.</summary>
    [Alias("Delete")]
    Task<int?> Delete();

    /// <summary>
    /// Moves the client to the grain keyed <paramref name="newDigest"/> (a new token's digest); this
    /// key stops working once the id's index names the new one, in the same step that makes the new
    /// one work. Returns the id, or null when this key is not registered (or, unless
    /// <paramref name="evenIfExpired"/>, its token's lifetime has run out). A live session other than
    /// <paramref name="keepSessionId"/> is logged out with <c>revoked</c>.
    /// </summary>
    [Alias("Rotate")]
    Task<int?> Rotate(string newDigest, string? keepSessionId, bool evenIfExpired);

    /// <summary>Takes over a client that is moving here from <paramref name="predecessor"/>; it works only once the id's index names this key.</summary>
    [Alias("Adopt")]
    Task Adopt(ClientSnapshot client, string predecessor);

    /// <summary>Records that the id's index now names this key, so that authentication no longer asks it.</summary>
    [Alias("ConfirmMove")]
    Task ConfirmMove();

    /// <summary>The client's record whether or not its token's lifetime has run out (for operators); null when not registered.</summary>
    [Alias("Read"), ReadOnly]
    Task<ClientSnapshot?> Read();

    /// <summary>Deletes the client if it registered at or before <paramref name="registeredBefore"/> and never logged in; true when it did.</summary>
    [Alias("ExpireUnused")]
    Task<bool> ExpireUnused(DateTimeOffset registeredBefore);
}
