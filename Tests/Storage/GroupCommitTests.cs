using System.Collections.Concurrent;
using Grains.Storage;
using Orleans.Runtime;
using Orleans.Storage;

namespace Tests.Storage;

/// <summary>
/// The SQLite write queue's group commit: writes go one at a time, and none is acknowledged before a
/// flush of the log that began after it committed; under concurrency one flush covers many writes.
/// </summary>
public sealed class GroupCommitTests
{
    [Fact]
    public async Task EveryWriteWaitsForAFlushThatBeganAfterItCommitted()
    {
        var inner = new RecordingStorage();
        var flushes = new ConcurrentQueue<(long CoveredUpTo, long EndedAt)>();
        var clock = 0L;
        var storage = new SerializedWriteGrainStorage(inner, () =>
        {
            // A flush covers what had committed when it began; it takes a moment, as an fsync does.
            var covered = Volatile.Read(ref inner.Commits);
            Thread.Sleep(2);
            flushes.Enqueue((covered, Interlocked.Increment(ref clock)));
        });

        var acknowledged = new ConcurrentQueue<(long Commit, long At)>();
        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            var state = new GrainState<string>($"state {i}");
            await storage.WriteStateAsync("s", GrainId.Create("test", $"g{i}"), state);
            acknowledged.Enqueue((inner.CommitOf(state), Interlocked.Read(ref clock)));
        }));

        Assert.Equal(200, inner.Commits);
        Assert.False(inner.Overlapped, "two writes ran at once");

        // Each acknowledged write was covered by a flush that had ended by the time it was acknowledged.
        var done = flushes.ToArray();
        Assert.All(acknowledged, a => Assert.Contains(done, f => f.CoveredUpTo >= a.Commit && f.EndedAt <= a.At));

        // And the flushes were shared: far fewer than the writes.
        Assert.InRange(done.Length, 1, 100);
    }

    [Fact]
    public async Task AFailedFlushFailsTheWritesWaitingForItAndTheNextFlushIsTried()
    {
        var inner = new RecordingStorage();
        var failNext = true;
        var storage = new SerializedWriteGrainStorage(inner, () =>
        {
            if (failNext)
            {
                failNext = false;
                throw new IOException("disk gone");
            }
        });

        await Assert.ThrowsAsync<IOException>(() => storage.WriteStateAsync("s", GrainId.Create("test", "a"), new GrainState<string>("a")));
        await storage.WriteStateAsync("s", GrainId.Create("test", "b"), new GrainState<string>("b"));
        Assert.Equal(2, inner.Commits);
    }

    /// <summary>Records each write's commit number, and whether two ever ran at once.</summary>
    private sealed class RecordingStorage : IGrainStorage
    {
        public long Commits;
        public bool Overlapped;
        private int _running;
        private readonly ConcurrentDictionary<object, long> _commitOf = new();

        public long CommitOf(object state) => _commitOf[state];

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;

        public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (Interlocked.Increment(ref _running) > 1)
            {
                Overlapped = true;
            }

            await Task.Yield();
            _commitOf[grainState] = Interlocked.Increment(ref Commits);
            Interlocked.Decrement(ref _running);
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => WriteStateAsync(stateName, grainId, grainState);
    }
}
