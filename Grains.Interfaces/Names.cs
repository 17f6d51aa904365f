namespace Grains.Interfaces;

/// <summary>Names that the silo, the frontends and the tests share.</summary>
public static class Names
{
    /// <summary>The grain-storage provider that holds every grain's state.</summary>
    public const string Storage = "ClientStore";

    /// <summary>The key of the single <see cref="IIdAllocatorGrain"/>.</summary>
    public const long IdAllocatorKey = 0;

    /// <summary>The key of the per-silo <see cref="IIdIssuerGrain"/> activations.</summary>
    public const long IdIssuerKey = 0;

    /// <summary>The key of the single <see cref="IExpirySweeperGrain"/>.</summary>
    public const long ExpirySweeperKey = 0;
}
