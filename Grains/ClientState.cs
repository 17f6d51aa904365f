namespace Grains;

/// <summary>
/// The stored record of a client. Property names are the stored JSON's names: treat them as a schema.
/// </summary>
public sealed class ClientState
{
    /// <summary>The client's id; 0 while the key is not registered.</summary>
    public int Id { get; set; }

    /// <summary>The information object as raw JSON text.</summary>
    public string Information { get; set; } = "{}";

    /// <summary>The <c>name</c> of the information, when present.</summary>
    public string? Name { get; set; }

    /// <summary>The <c>location</c> of the information, when present.</summary>
    public string? Location { get; set; }

    /// <summary>When the client registered.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the information last changed.</summary>
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>The stored pointer from a client id to its token digest.</summary>
public sealed class ClientIdState
{
    /// <summary>The digest keying the client's grain; null while the id is unused.</summary>
    public string? Digest { get; set; }
}

/// <summary>The stored upper bound of the ids handed out so far.</summary>
public sealed class IdAllocatorState
{
    /// <summary>The last id of the last reserved block; 0 before the first.</summary>
    public int HighWater { get; set; }
}
