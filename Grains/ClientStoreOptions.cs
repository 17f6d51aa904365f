namespace Grains;

/// <summary>Settings of the grains, section <c>ClientStore</c>. Validated at silo start.</summary>
public sealed class ClientStoreOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "ClientStore";

    /// <summary>How many ids one reservation covers (default 1,000); a restart skips at most one block per silo.</summary>
    public int IdBlockSize { get; set; } = 1000;

    /// <summary>Responses one client's queue holds at most (default 1,000); more are refused with <c>queue_full</c>.</summary>
    public int MaxQueuedResponses { get; set; } = 1000;

    /// <summary>Payload bytes one client's queue holds at most (default 1 MiB).</summary>
    public long MaxQueuedBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Responses per stored queue segment (default 16). Storing a response rewrites only the last
    /// segment, so the cost of an enqueue does not grow with the depth of the queue, only with how
    /// full that segment is; 16 small responses fit one 4 KiB database page, so an enqueue rewrites
    /// one page wherever it lands (64 overflowed into a second page once a segment held about 30).
    /// Emptying a queue deletes one row per segment.
    /// </summary>
    public int QueueSegmentSize { get; set; } = 16;

    /// <summary>Sequence numbers reserved per write of a queue's header (default 1,000).</summary>
    public int SeqBlockSize { get; set; } = 1000;

    /// <summary>
    /// How long a push may take to reach the socket before the response is queued instead (default 5 s):
    /// the frontend withdraws what it has not begun to write by then, and closes the slow socket with 1008.
    /// </summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Responses one sending client may have in one recipient's queue (default a tenth of
    /// <see cref="MaxQueuedResponses"/>); its payload bytes there are bounded by the same share of
    /// <see cref="MaxQueuedBytes"/>. Back-end responses (no sender) are not counted per sender.
    /// </summary>
    public int? MaxQueuedPerSender { get; set; }

    /// <summary>
    /// The share of every queue's bounds (responses and bytes) that only back ends may fill
    /// (default 0.1): responses sent by clients are refused with <c>queue_full</c> once they would
    /// take more than the rest, so a back end's response always finds room.
    /// </summary>
    public double ReservedForBackEnds { get; set; } = 0.1;

    /// <summary>Contacts one client may have (default 1,000); they are stored in its mailbox's header.</summary>
    public int MaxContacts { get; set; } = 1000;

    /// <summary>How long a token stays valid after it was issued (default unset: forever); <c>rotate</c> renews it.</summary>
    public TimeSpan? TokenLifetime { get; set; }

    /// <summary>
    /// Clients registered while this is set that have never logged in are deleted once they are
    /// this old (default unset: never). A cluster-wide sweep walks the ids in batches.
    /// </summary>
    public TimeSpan? ExpireNeverLoggedInAfter { get; set; }

    /// <summary>How often each silo asks the sweep for its next batch of ids (default 10 s); used only with <see cref="ExpireNeverLoggedInAfter"/>.</summary>
    public TimeSpan ExpirySweepInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Ids one sweep batch reads (default 200).</summary>
    public int ExpirySweepBatch { get; set; } = 200;

    /// <summary>
    /// How long a client's record grain (<see cref="ClientGrain"/>, keyed by its token's digest) stays
    /// activated after its last call (default 2 min; more than Orleans' collection quantum of 1 min, and
    /// it goes within one more quantum). A logged-in session does not use it again until an <c>update</c>,
    /// <c>rotate</c> or the next login, so an idle session keeps only its mailbox activated; a login after
    /// this long reads the record from storage again. Other grains keep Orleans' default age.
    /// </summary>
    public TimeSpan ClientGrainIdleAge { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Responses one sender may have in one queue: <see cref="MaxQueuedPerSender"/> or a tenth of the bound.</summary>
    internal int PerSenderResponses => MaxQueuedPerSender ?? Math.Max(1, MaxQueuedResponses / 10);

    /// <summary>Payload bytes one sender may have in one queue: the per-sender share of <see cref="MaxQueuedBytes"/>.</summary>
    internal long PerSenderBytes => Math.Max(1, (long)(MaxQueuedBytes * ((double)PerSenderResponses / MaxQueuedResponses)));

    /// <summary>Responses that clients' sends may fill in one queue: the bound less the back ends' reserve.</summary>
    internal int ClientSentResponses => MaxQueuedResponses - (int)Math.Ceiling(MaxQueuedResponses * ReservedForBackEnds);

    /// <summary>Payload bytes that clients' sends may fill in one queue.</summary>
    internal long ClientSentBytes => MaxQueuedBytes - (long)Math.Ceiling(MaxQueuedBytes * ReservedForBackEnds);
}
