namespace Grains;

/// <summary>Settings of the grains, section <c>ClientStore</c>.</summary>
public sealed class ClientStoreOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "ClientStore";

    /// <summary>How many ids one reservation covers (default 1,000); a restart skips at most one block per silo.</summary>
    public int IdBlockSize { get; set; } = 1000;
}
