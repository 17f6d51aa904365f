using Orleans.Storage;

namespace Grains.Storage;

/// <summary>
/// SQLite writes from this process: one at a time, and acknowledged only once on disk, with one
/// flush of the log for every write committed meanwhile.
/// <list type="bullet">
/// <item>One at a time: SQLite has a single writer, and Microsoft.Data.Sqlite waits for a busy
/// database by sleeping the calling thread and retrying, so concurrent grain writes would park
/// scheduler threads for whole retry periods. Queued here they wait asynchronously instead, and
/// each write finds the lock free.</item>
/// <item>Group commit: the stored write queries commit without syncing (<c>synchronous = NORMAL</c>
/// in WAL mode), and a write's task completes only after an fsync of the write-ahead log that began
/// after its commit. While one fsync runs, the writes committed behind it wait for the next, so one
/// fsync covers many writes instead of each paying its own, and what was acknowledged survives a
/// crash of the machine as before.</item>
/// </list>
/// Reads pass straight through: in WAL mode they never wait for the writer.
/// </summary>
internal sealed class SerializedWriteGrainStorage : IGrainStorage
{
    private readonly IGrainStorage _inner;
    private readonly Action _flushLog;
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly Lock _gate = new();

    /// <summary>Writes committed so far; each write's number is the count once it committed.</summary>
    private long _committed;

    /// <summary>Writes covered by a completed fsync.</summary>
    private long _synced;

    /// <summary>The fsync under way, if any.</summary>
    private Task? _syncing;

    /// <summary>Writes through <paramref name="inner"/> to the SQLite file <paramref name="databaseFile"/>.</summary>
    public SerializedWriteGrainStorage(IGrainStorage inner, string databaseFile)
        : this(inner, () => FlushLog(databaseFile + "-wal"))
    {
    }

    /// <summary>With the flush of the log given: tests count and order them.</summary>
    internal SerializedWriteGrainStorage(IGrainStorage inner, Action flushLog)
    {
        _inner = inner;
        _flushLog = flushLog;
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        _inner.ReadStateAsync(stateName, grainId, grainState);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        WriteAsync(() => _inner.WriteStateAsync(stateName, grainId, grainState));

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        WriteAsync(() => _inner.ClearStateAsync(stateName, grainId, grainState));

    private async Task WriteAsync(Func<Task> write)
    {
        long number;
        await _writer.WaitAsync();
        try
        {
            await write();
            number = Interlocked.Increment(ref _committed);
        }
        finally
        {
            _writer.Release();
        }

        await DurableAsync(number);
    }

    /// <summary>Writes counted as committed so far: what the next flush covers (tests wait on it).</summary>
    internal long Committed => Interlocked.Read(ref _committed);

    /// <summary>Returns once an fsync that began after commit <paramref name="number"/> has completed.</summary>
    private async Task DurableAsync(long number)
    {
        while (true)
        {
            Task syncing;
            lock (_gate)
            {
                if (_synced >= number)
                {
                    return;
                }

                if (_syncing is null)
                {
                    // Covers every commit made so far, this one among them.
                    var upTo = Interlocked.Read(ref _committed);
                    _syncing = Task.Run(() => Sync(upTo));
                }

                syncing = _syncing;
            }

            await syncing;
        }
    }

    private void Sync(long upTo)
    {
        try
        {
            _flushLog();
            lock (_gate)
            {
                _synced = Math.Max(_synced, upTo);
            }
        }
        finally
        {
            lock (_gate)
            {
                _syncing = null;
            }
        }
    }

    /// <summary>
    /// fsync of the write-ahead log, through a handle of our own (on Linux an fsync flushes the file,
    /// whichever descriptor wrote it). SQLite keeps no lock on the log file itself, so closing this
    /// handle takes none of its locks away. No log means its content was checkpointed into the
    /// database, which SQLite syncs when it does that.
    /// </summary>
    private static void FlushLog(string log)
    {
        try
        {
            using var handle = File.OpenHandle(log, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            RandomAccess.FlushToDisk(handle);
        }
        catch (FileNotFoundException)
        {
            // Checkpointed and removed: already on disk.
        }
    }
}
