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
        const int Writes = 200;
        var inner = new RecordingStorage { CommitsToAwait = Writes };
        var flushes = new ConcurrentQueue<(long CoveredUpTo, long EndedAt)>();
        var clock = 0L;
        SerializedWriteGrainStorage storage = null!;
        storage = new SerializedWriteGrainStorage(inner, () =>
        {
            // A flush covers what had committed when it began. The first one is held until every other
            // write has committed behind it, so those writes must all wait for one more flush. A write is
            // counted by the queue just after the inner storage returns, so the held flush also waits for
            // that count: otherwise the next flush could begin one write short and a third would follow.
            var covered = Volatile.Read(ref inner.Commits);
            if (flushes.IsEmpty)
            {
                Assert.True(inner.AllCommitted.Wait(TimeSpan.FromSeconds(30)), "the other writes did not commit while the first flush was held");
                Assert.True(SpinWait.SpinUntil(() => storage.Committed == Writes, TimeSpan.FromSeconds(30)), "the queue did not count the writes that committed");
            }

            flushes.Enqueue((covered, Interlocked.Increment(ref clock)));
        });

        var acknowledged = new ConcurrentQueue<(long Commit, long At)>();
        await Task.WhenAll(Enumerable.Range(0, Writes).Select(async i =>
        {
            var state = new GrainState<string>($"state {i}");
            await storage.WriteStateAsync("s", GrainId.Create("test", $"g{i}"), state).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            acknowledged.Enqueue((inner.CommitOf(state), Interlocked.Read(ref clock)));
        }));

        Assert.Equal(Writes, inner.Commits);
        Assert.False(inner.Overlapped, "two writes ran at once");

        // Each acknowledged write was covered by a flush that had ended by the time it was acknowledged.
        var done = flushes.ToArray();
        Assert.All(acknowledged, a => Assert.Contains(done, f => f.CoveredUpTo >= a.Commit && f.EndedAt <= a.At));

        // The held flush covered the first write alone; the writes that committed meanwhile shared the next one.
        Assert.Equal(2, done.Length);
        Assert.Equal((Writes, 2L), done[1]);
        Assert.All(acknowledged.Where(a => a.Commit > 1), a => Assert.Equal(2, a.At));
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

        /// <summary>Set once <see cref="CommitsToAwait"/> writes have committed.</summary>
        public readonly ManualResetEventSlim AllCommitted = new();

        public long CommitsToAwait { get; init; } = long.MaxValue;
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
            var commit = Interlocked.Increment(ref Commits);
            _commitOf[grainState] = commit;
            Interlocked.Decrement(ref _running);
            if (commit == CommitsToAwait)
            {
                AllCommitted.Set();
            }
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => WriteStateAsync(stateName, grainId, grainState);
    }
}
