using System.Collections.Concurrent;
using Grains;
using Orleans.Runtime;
using Orleans.Storage;

namespace Tests.Grains;

/// <summary>
/// The mailbox's queue in memory: its per-segment and per-sender bookkeeping exists only while it holds something,
/// and a queue that empties and fills again counts exactly as a new one.
/// </summary>
public sealed class ResponseQueueTests
{
    private static readonly GrainId Owner = GrainId.Create("clientid", "7");

    [Fact]
    public async Task AnEmptyQueueHoldsNoSegmentsAndAQueueEmptiedAndFilledAgainCountsAsANewOne()
    {
        var storage = new MemoryStorage();
        var options = new ClientStoreOptions { QueueSegmentSize = 2, MaxQueuedPerSender = 2 };
        var queue = new ResponseQueue(storage, Owner, options.QueueSegmentSize);
        await queue.LoadAsync(new ClientIdState());

        Assert.Equal((0, 0, 0), (queue.Count, queue.SegmentCount, queue.ClientSentCount));
        Assert.Empty(queue.Items);
        Assert.Null(queue.TailWithRoom());
        Assert.Empty(queue.SegmentsEmptiedBy(long.MaxValue));
        Assert.True(queue.HasRoomFor(5, 10, options));

        for (var round = 0; round < 2; round++)
        {
            long first = (round * 10) + 1;
            await queue.AppendAsync(round * 2, Response(first, from: 5));
            await queue.AppendAsync(round * 2, Response(first + 1, from: 5));
            await queue.AppendAsync((round * 2) + 1, Response(first + 2, from: null));

            Assert.Equal((3, 2, 2), (queue.Count, queue.SegmentCount, queue.ClientSentCount));
            Assert.Equal([first, first + 1, first + 2], queue.Items.Select(i => i.Seq));
            Assert.False(queue.HasRoomFor(5, 1, options));
            Assert.True(queue.HasRoomFor(6, 1, options));

            var emptied = queue.SegmentsEmptiedBy(first + 2);
            Assert.Equal([round * 2, (round * 2) + 1], emptied);
            Assert.True(await queue.RemoveAsync(first + 2, emptied, ex => Assert.Fail(ex.Message)));

            Assert.Equal((0, 0, 0, 0L), (queue.Count, queue.SegmentCount, queue.ClientSentCount, queue.Bytes));
            Assert.Empty(queue.Items);
            Assert.Null(queue.TailWithRoom());
            Assert.True(queue.HasRoomFor(5, 1, options));
        }

        Assert.Empty(storage.Rows);
    }

    [Fact]
    public async Task ASegmentWhoseWriteFailsLeavesTheQueueAsItWas()
    {
        var storage = new MemoryStorage { FailWrites = true };
        var options = new ClientStoreOptions { QueueSegmentSize = 2, MaxQueuedPerSender = 1 };
        var queue = new ResponseQueue(storage, Owner, options.QueueSegmentSize);
        await queue.LoadAsync(new ClientIdState());

        await Assert.ThrowsAsync<InvalidOperationException>(() => queue.AppendAsync(0, Response(1, from: 5)));

        Assert.Equal((0, 0, 0), (queue.Count, queue.SegmentCount, queue.ClientSentCount));
        Assert.Null(queue.TailWithRoom());
        Assert.True(queue.HasRoomFor(5, 1, options));

        storage.FailWrites = false;
        await queue.AppendAsync(0, Response(1, from: 5));
        Assert.Equal(0, queue.TailWithRoom());
        Assert.False(queue.HasRoomFor(5, 1, options));
    }

    [Fact]
    public async Task AQueueReadBackFromItsSegmentsCountsWhatIsAboveTheHead()
    {
        var storage = new MemoryStorage();
        var options = new ClientStoreOptions { QueueSegmentSize = 2, MaxQueuedPerSender = 5 };
        var writing = new ResponseQueue(storage, Owner, options.QueueSegmentSize);
        await writing.LoadAsync(new ClientIdState());
        await writing.AppendAsync(0, Response(1, from: 5));
        await writing.AppendAsync(0, Response(2, from: 5));
        await writing.AppendAsync(1, Response(3, from: 6));

        var reading = new ResponseQueue(storage, Owner, options.QueueSegmentSize);
        await reading.LoadAsync(new ClientIdState { Head = 2, Segments = [0, 1] });

        Assert.Equal([2L, 3L], reading.Items.Select(i => i.Seq));
        Assert.Equal((2, 2, 2), (reading.Count, reading.SegmentCount, reading.ClientSentCount));
        Assert.Equal(1, reading.TailWithRoom());

        await reading.DeleteAllAsync(ex => Assert.Fail(ex.Message));
        Assert.Equal((0, 0, 0), (reading.Count, reading.SegmentCount, reading.ClientSentCount));
        Assert.Empty(storage.Rows);
    }

    private static StoredResponse Response(long seq, int? from) =>
        new() { Seq = seq, From = from, At = DateTimeOffset.UnixEpoch, Payload = "{\"n\":1}" };

    /// <summary>Segment rows in memory, copied on write, with an etag once stored.</summary>
    private sealed class MemoryStorage : IGrainStorage
    {
        private readonly ConcurrentDictionary<string, List<StoredResponse>> _rows = new(StringComparer.Ordinal);

        public bool FailWrites { get; set; }

        public ICollection<string> Rows => _rows.Keys;

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (_rows.TryGetValue(stateName, out var items) && grainState is IGrainState<QueueSegment> segment)
            {
                segment.State = new QueueSegment { Items = [.. items] };
                segment.ETag = "1";
                segment.RecordExists = true;
            }

            return Task.CompletedTask;
        }

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (FailWrites)
            {
                throw new InvalidOperationException("write refused");
            }

            var segment = (IGrainState<QueueSegment>)grainState;
            _rows[stateName] = [.. segment.State!.Items];
            segment.ETag = "1";
            segment.RecordExists = true;
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            _rows.TryRemove(stateName, out _);
            grainState.ETag = null;
            grainState.RecordExists = false;
            return Task.CompletedTask;
        }
    }
}
