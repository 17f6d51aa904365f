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
}
