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
}
