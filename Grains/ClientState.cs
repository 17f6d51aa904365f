namespace Grains;

// Stored state. Property names are the stored JSON's names: treat them as a schema.

/// <summary>The stored record of a client, keyed by its token digest.</summary>
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

    /// <summary>
    /// True once a delete began: the token authenticates nothing from then on, and a retried delete
    /// finishes what the first one left.
    /// </summary>
    public bool Deleting { get; set; }

    /// <summary>When the token keying this record was issued; null in records older than token lifetimes, which count from <see cref="CreatedAt"/>.</summary>
    public DateTimeOffset? TokenIssuedAt { get; set; }

    /// <summary>
    /// Set while the client moves to another token's digest: until the move is finished, the id's
    /// index decides whether this key or that one is the client's.
    /// </summary>
    public string? MovingTo { get; set; }

    /// <summary>Set on the record a move creates until the id's index is known to name it: until then the index decides.</summary>
    public string? MovedFrom { get; set; }
}

/// <summary>The stored header of a client's mailbox, keyed by client id.</summary>
public sealed class ClientIdState
{
    /// <summary>The digest keying the client's grain; null while the id is unused.</summary>
    public string? Digest { get; set; }

    /// <summary>The lowest sequence number that may still be queued; everything below was removed.</summary>
    public long Head { get; set; } = 1;

    /// <summary>Sequence numbers up to this one may have been handed out; a new activation starts above it.</summary>
    public long SeqReserved { get; set; }

    /// <summary>The queue's segments, oldest first; each is stored as its own row.</summary>
    public List<int> Segments { get; set; } = [];

    /// <summary>The number the next new segment gets.</summary>
    public int NextSegment { get; set; }

    /// <summary>The ids that may send to this client when client sends are limited to contacts; empty in older rows.</summary>
    public List<int> Contacts { get; set; } = [];

    /// <summary>When the id was assigned; null in rows older than the field.</summary>
    public DateTimeOffset? RegisteredAt { get; set; }

    /// <summary>
    /// True from registration until the first login, for clients registered while expiry is on;
    /// false otherwise and in rows older than the field, so that expiry never takes those.
    /// </summary>
    public bool AwaitingFirstLogin { get; set; }

    public ClientIdState Copy() => new()
    {
        Digest = Digest,
        Head = Head,
        SeqReserved = SeqReserved,
        Segments = [.. Segments],
        NextSegment = NextSegment,
        Contacts = [.. Contacts],
        RegisteredAt = RegisteredAt,
        AwaitingFirstLogin = AwaitingFirstLogin,
    };
}

/// <summary>One stored segment of a queue: up to <see cref="ClientStoreOptions.QueueSegmentSize"/> responses in order.</summary>
public sealed class QueueSegment
{
    public List<StoredResponse> Items { get; set; } = [];
}

/// <summary>A queued response as stored.</summary>
public sealed class StoredResponse
{
    public long Seq { get; set; }

    public int? From { get; set; }

    public DateTimeOffset At { get; set; }

    /// <summary>The payload as raw JSON text.</summary>
    public string Payload { get; set; } = "null";
}

/// <summary>The stored place of the expiry sweep.</summary>
public sealed class ExpirySweepState
{
    /// <summary>The last id the sweep has read; the next batch starts above it.</summary>
    public int Cursor { get; set; }
}

/// <summary>The stored upper bound of the ids handed out so far.</summary>
public sealed class IdAllocatorState
{
    /// <summary>The last id of the last reserved block; 0 before the first.</summary>
    public int HighWater { get; set; }
}
