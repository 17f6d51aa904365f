using Orleans.Concurrency;

namespace Grains.Interfaces;

/// <summary>The index from a client id (the grain key) to the digest that keys its <see cref="IClientGrain"/>.</summary>
[Alias("Grains.Interfaces.IClientIdGrain")]
public interface IClientIdGrain : IGrainWithIntegerKey
{
    /// <summary>Points this id at a digest; an id already pointing elsewhere is refused.</summary>
    /// <exception cref="InvalidOperationException">The id already belongs to another digest.</exception>
    [Alias("Assign")]
    Task Assign(string digest);

    /// <summary>The digest this id points at, or <see langword="null"/> when the id is unused.</summary>
    [Alias("GetDigest"), ReadOnly]
    Task<string?> GetDigest();

    /// <summary>Forgets the id, provided it still points at <paramref name="digest"/>.</summary>
    [Alias("Release")]
    Task Release(string digest);
}
