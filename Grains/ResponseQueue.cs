using System.Text;
using Grains.Interfaces;
using Orleans.Storage;

namespace Grains;

/// <summary>
/// A client's durable queue, kept as segment rows beside the mailbox's header row in the same
/// grain storage (state names <c>queue.0</c>, <c>queue.1</c>, …). Appending rewrites only the last
/// segment; removing moves the header's head and deletes segments that emptied.
/// </summary>
internal sealed class ResponseQueue(IGrainStorage storage, GrainId owner, int segmentSize)
{
    // Both made when the first segment or the first client's response comes, and dropped when the
    // queue empties: most mailboxes, an idle logged-in client's among them, hold nothing.
    private SortedDictionary<int, GrainState<QueueSegment>>? _segments;

    // What each sending client has queued here, kept as responses come and go, so the per-sender
    // quota costs a lookup instead of a walk of the queue.
    private Dictionary<int, (int Count, long Bytes)>? _bySender;

    public int Count { get; private set; }

    /// <summary>Segments held in memory (those that still hold responses, and the tail).</summary>
    public int SegmentCount => _segments?.Count ?? 0;

    public long Bytes { get; private set; }

    /// <summary>Responses in the queue that clients sent (those with a sender).</summary>
    public int ClientSentCount { get; private set; }

    /// <summary>Their payload bytes.</summary>
    public long ClientSentBytes { get; private set; }

    /// <summary>Every queued response, oldest first.</summary>
    public IEnumerable<StoredResponse> Items => _segments is null ? [] : _segments.Values.SelectMany(s => s.State!.Items);

    /// <summary>Reads the segments the header names, dropping what lies below its head.</summary>
    public async Task LoadAsync(ClientIdState header)
    {
        _segments = null;
        foreach (var number in header.Segments)
        {
            var segment = new GrainState<QueueSegment>(new QueueSegment());
            await storage.ReadStateAsync(Name(number), owner, segment);
            segment.State ??= new QueueSegment();
            segment.State!.Items.RemoveAll(i => i.Seq < header.Head);
            (_segments ??= [])[number] = segment;
        }

        Recount();
    }

    /// <summary>True when one more response of <paramref name="bytes"/> fits under both bounds.</summary>
    public bool HasRoom(int bytes, int maxCount, long maxBytes) => Count + 1 <= maxCount && Bytes + bytes <= maxBytes;

    /// <summary>
    /// True when one more response of <paramref name="bytes"/> from <paramref name="from"/> fits:
    /// under the queue's bounds, and for a client's response also under its sender's quota and
    /// outside the share reserved for back ends.
    /// </summary>
    public bool HasRoomFor(int? from, int bytes, ClientStoreOptions options)
    {
        if (!HasRoom(bytes, options.MaxQueuedResponses, options.MaxQueuedBytes))
        {
            return false;
        }

        if (from is not { } sender)
        {
            return true;
        }

        var (count, senderBytes) = _bySender?.GetValueOrDefault(sender) ?? default;
        return count + 1 <= options.PerSenderResponses
            && senderBytes + bytes <= options.PerSenderBytes
            && ClientSentCount + 1 <= options.ClientSentResponses
            && ClientSentBytes + bytes <= options.ClientSentBytes;
    }

    /// <summary>The segment the next response goes into, or null when a new one must be started.</summary>
    public int? TailWithRoom()
    {
        if (_segments is not { Count: > 0 })
        {
            return null;
        }

        var (number, tail) = _segments.Last();
        return tail.State!.Items.Count < segmentSize ? number : null;
    }

    /// <summary>Appends to segment <paramref name="number"/> (new or the tail) and writes that segment alone.</summary>
    public async Task AppendAsync(int number, StoredResponse item)
    {
        _segments ??= [];
        if (!_segments.TryGetValue(number, out var segment))
        {
            segment = new GrainState<QueueSegment>(new QueueSegment());
            _segments[number] = segment;
        }

        segment.State!.Items.Add(item);
        try
        {
            await storage.WriteStateAsync(Name(number), owner, segment);
        }
        catch
        {
            segment.State!.Items.RemoveAt(segment.State!.Items.Count - 1);
            if (segment.State!.Items.Count == 0 && segment.ETag is null)
            {
                RemoveSegment(number);
            }

            throw;
        }

        Count++;
        Bytes += PayloadBytes(item.Payload);
        CountSender(item, +1);
    }

    /// <summary>The segments that hold nothing above <paramref name="upTo"/>: they can go once the header no longer names them.</summary>
    public IReadOnlyList<int> SegmentsEmptiedBy(long upTo) => _segments is null
        ? []
        : [.. _segments.Where(s => s.Value.State!.Items.All(i => i.Seq <= upTo)).Select(s => s.Key)];

    /// <summary>
    /// Drops responses up to <paramref name="upTo"/> from memory and deletes the given segment rows;
    /// false when a row could not be deleted (it is still stored, with what it held).
    /// </summary>
    public async Task<bool> RemoveAsync(long upTo, IReadOnlyList<int> emptied, Action<Exception> onDeleteFailed)
    {
        foreach (var segment in _segments?.Values ?? Enumerable.Empty<GrainState<QueueSegment>>())
        {
            foreach (var item in segment.State!.Items.TakeWhile(i => i.Seq <= upTo))
            {
                Count--;
                Bytes -= PayloadBytes(item.Payload);
                CountSender(item, -1);
            }

            segment.State!.Items.RemoveAll(i => i.Seq <= upTo);
        }

        var deleted = true;
        foreach (var number in emptied)
        {
            if (_segments is not null && _segments.Remove(number, out var segment))
            {
                deleted &= await DeleteQuietlyAsync(number, segment, onDeleteFailed);
            }
        }

        if (_segments is { Count: 0 })
        {
            _segments = null;
        }

        return deleted;
    }

    /// <summary>Deletes every segment row.</summary>
    public async Task DeleteAllAsync(Action<Exception> onDeleteFailed)
    {
        foreach (var (number, segment) in _segments ?? [])
        {
            await DeleteQuietlyAsync(number, segment, onDeleteFailed);
        }

        _segments = null;
        Recount();
    }

    public static int PayloadBytes(string payload) => Encoding.UTF8.GetByteCount(payload);

    public static PendingResponse ToWire(StoredResponse item) => new(item.Seq, item.From, item.At, item.Payload);

    /// <summary>
    /// Deletes a segment row; false when it could not. Whether a row left behind matters is the
    /// caller's to judge: harmless once the stored header no longer names it, a resurrection otherwise.
    /// </summary>
    private async Task<bool> DeleteQuietlyAsync(int number, GrainState<QueueSegment> segment, Action<Exception> onDeleteFailed)
    {
        if (segment.ETag is null)
        {
            return true;
        }

        try
        {
            await storage.ClearStateAsync(Name(number), owner, segment);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            onDeleteFailed(ex);
            return false;
        }
    }

    private void RemoveSegment(int number)
    {
        _segments!.Remove(number);
        if (_segments.Count == 0)
        {
            _segments = null;
        }
    }

    private void Recount()
    {
        Count = 0;
        Bytes = 0;
        ClientSentCount = 0;
        ClientSentBytes = 0;
        _bySender = null;
        foreach (var item in Items)
        {
            Count++;
            Bytes += PayloadBytes(item.Payload);
            CountSender(item, +1);
        }
    }

    private void CountSender(StoredResponse item, int sign)
    {
        if (item.From is not { } sender)
        {
            return;
        }

        var bytes = PayloadBytes(item.Payload);
        ClientSentCount += sign;
        ClientSentBytes += sign * bytes;
        _bySender ??= [];
        var (count, senderBytes) = _bySender.GetValueOrDefault(sender);
        count += sign;
        if (count == 0)
        {
            _bySender.Remove(sender);
            if (_bySender.Count == 0)
            {
                _bySender = null;
            }
        }
        else
        {
            _bySender[sender] = (count, senderBytes + (sign * bytes));
        }
    }

    private static string Name(int number) => $"queue.{number}";
}
