using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Grains.Storage;

/// <summary>
/// SQLite grain storage for this process: reads run a prepared statement on a few long-lived
/// connections, writes and clears go through one queue that commits several of them in one
/// transaction, and each is acknowledged only once on disk.
/// <list type="bullet">
/// <item>One writer: SQLite has a single writer, and Microsoft.Data.Sqlite waits for a busy database
/// by sleeping the calling thread and retrying, so concurrent grain writes would park scheduler
/// threads for whole retry periods. Queued here they wait asynchronously instead.</item>
/// <item>Batches: one long-lived connection takes every write queued so far (up to
/// <see cref="MaxBatchWrites"/> writes or <see cref="MaxBatchBytes"/> of payload) into one
/// <c>BEGIN IMMEDIATE</c> transaction of prepared statements, and commits once. A commit, not the
/// statements, is what a write through the provider mostly paid for, with the pooled connection, the
/// parsing of the stored query and the result reader around it.</item>
/// <item>Per-write outcome: each statement checks its own version, as the provider's stored queries
/// do (<c>Sql/Sqlite/001-grain-state.sql</c>): a write whose ETag is stale changes nothing and fails
/// alone with <see cref="InconsistentStateException"/>; the others in its batch go on. A batch that
/// fails as a whole (a disk error, the lock held by another process past the command timeout) fails
/// every write in it with the database's exception, rolls back, and the next batch starts on a new
/// connection.</item>
/// <item>Group commit: the transaction commits without syncing (<c>synchronous = NORMAL</c> in WAL
/// mode), and a write's task completes only after an fsync of the write-ahead log that began after
/// its batch committed. While one fsync runs, the next batch is written and committed, and the
/// batches committed meanwhile share the next fsync, so what was acknowledged survives a crash of
/// the machine as before.</item>
/// </list>
/// The rows are the provider's: same table, keys, payload serializer, versions and ETags
/// (the version as a decimal string), and a clear deletes the row as the provider does with
/// <c>DeleteStateOnClear</c>, so the provider reads what this writes and the reverse.
/// <para>
/// Reads return what the provider's read returns (<c>ReadFromStorageKey</c>): the row's payload
/// through the same serializer (a new state from the activator when there is no row or no payload),
/// its version as the ETag, and whether a stored state exists. The provider took a pooled connection and
/// parsed its stored query again for every read, most of the cost of activating a new grain; here
/// each read takes an idle connection whose statement is already prepared. Outside a transaction
/// every statement reads the latest commit, and in WAL mode it never waits for the writer. A read
/// that fails closes its connection, so the next read starts on a new one.
/// </para>
/// </summary>
internal sealed partial class SqliteBatchWriteGrainStorage : IGrainStorage, IAsyncDisposable, IDisposable
{
    /// <summary>At most this many writes go into one transaction: it bounds how long the write lock is held.</summary>
    internal const int MaxBatchWrites = 256;

    /// <summary>
    /// At most this many payload bytes go into one transaction (a single larger write still goes, alone):
    /// queue segments can be hundreds of KiB each, and a batch of them should not hold the lock for long.
    /// </summary>
    internal const int MaxBatchBytes = 4 * 1024 * 1024;

    /// <summary>
    /// At most this many read connections stay open while idle: reads run on the scheduler's threads,
    /// so about as many run at once as there are cores. More may open under a burst; they close on return.
    /// </summary>
    internal static readonly int MaxIdleReaders = Math.Clamp(Environment.ProcessorCount, 2, 16);

    // The provider's stored queries (001-grain-state.sql), each split into the statement that applies:
    // a first write inserts version 1 unless a row exists, a later write updates only the version it
    // read, a clear deletes only that version. A returned row is success, none a version conflict.
    private const string KeyMatches =
        "ServiceId = @ServiceId AND GrainType = @GrainTypeString AND GrainIdN0 = @GrainIdN0 AND GrainIdN1 = @GrainIdN1 AND GrainIdExtension = @GrainIdExtensionString";

    private const string Now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

    private const string InsertText =
        "INSERT INTO GrainState (ServiceId, GrainType, GrainIdN0, GrainIdN1, GrainIdExtension, Payload, Version, ModifiedOn) " +
        "VALUES (@ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, @GrainIdExtensionString, @PayloadBinary, 1, " + Now + ") " +
        "ON CONFLICT DO NOTHING RETURNING Version;";

    private const string UpdateText =
        "UPDATE GrainState SET Payload = @PayloadBinary, Version = Version + 1, ModifiedOn = " + Now + " " +
        "WHERE Version = @GrainStateVersion AND " + KeyMatches + " RETURNING Version;";

    private const string ReadText =
        "SELECT Payload, Version FROM GrainState WHERE " + KeyMatches + ";";

    private const string DeleteText =
        "DELETE FROM GrainState WHERE Version = @GrainStateVersion AND " + KeyMatches + " RETURNING Version + 1;";

    private readonly string _connectionString;
    private readonly string _serviceId;
    private readonly string _providerName;
    private readonly IGrainStorageSerializer _serializer;
    private readonly IActivatorProvider _activators;
    private readonly Action _flushLog;
    private readonly ILogger _logger;
    private readonly Channel<PendingWrite> _queue = Channel.CreateUnbounded<PendingWrite>();
    private readonly Task _loop;
    private readonly Lock _gate = new();

    /// <summary>Read connections not in use; a read takes one (or opens one) and gives it back.</summary>
    private readonly ConcurrentQueue<ReadStatement> _idleReaders = new();

    /// <summary>How many are in <see cref="_idleReaders"/>, kept apart: the queue's own count is slow.</summary>
    private int _idleReaderCount;

    /// <summary>Set by disposal: readers given back afterwards close instead.</summary>
    private volatile bool _disposed;

    /// <summary>The open connection and its prepared statements; null until the first batch and after a failed one.</summary>
    private Statements? _statements;

    /// <summary>Batches committed so far; each batch's number is the count once it committed.</summary>
    private long _committed;

    /// <summary>Batches covered by a completed fsync.</summary>
    private long _synced;

    /// <summary>The fsync under way, if any.</summary>
    private Task? _syncing;

    /// <summary>
    /// Reads and writes the SQLite database of <paramref name="connectionString"/> (its file
    /// <paramref name="databaseFile"/>) in the rows of the ADO.NET provider named
    /// <paramref name="providerName"/>.
    /// </summary>
    public SqliteBatchWriteGrainStorage(
        string connectionString,
        string databaseFile,
        string serviceId,
        string providerName,
        IGrainStorageSerializer serializer,
        IActivatorProvider activators,
        ILogger<SqliteBatchWriteGrainStorage> logger)
        : this(connectionString, serviceId, providerName, serializer, activators, logger, () => FlushLog(databaseFile + "-wal"))
    {
    }

    /// <summary>With the flush of the log given: tests count and order them.</summary>
    internal SqliteBatchWriteGrainStorage(
        string connectionString,
        string serviceId,
        string providerName,
        IGrainStorageSerializer serializer,
        IActivatorProvider activators,
        ILogger logger,
        Action flushLog)
    {
        _connectionString = connectionString;
        _serviceId = serviceId;
        _providerName = providerName;
        _serializer = serializer;
        _activators = activators;
        _logger = logger;
        _flushLog = flushLog;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Called with each batch's size just before it commits, on the writer's thread: tests count batches, or hold one.</summary>
    internal Action<int>? BeforeCommit { get; set; }

    /// <summary>Batches committed so far (tests compare it with the writes made).</summary>
    internal long Batches => Interlocked.Read(ref _committed);

    /// <summary>Writes waiting for a batch (tests wait until all are queued).</summary>
    internal int Queued => _queue.Reader.Count;

    /// <summary>Read connections open and idle now (tests check that a failed one was not kept).</summary>
    internal int IdleReaders => Volatile.Read(ref _idleReaderCount);

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        // SQLite reads are synchronous (the provider's "async" ones were too); a failure still leaves as a faulted task.
        try
        {
            Read(stateName, grainId, grainState);
            return Task.CompletedTask;
        }
        catch (Exception ex)
        {
            return Task.FromException(ex);
        }
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var version = Version(grainState.ETag);
        var payload = _serializer.Serialize(grainState.State).ToArray();
        var write = new PendingWrite(version is null ? Operation.Insert : Operation.Update, Key(stateName, grainId), version, payload);
        var stored = await EnqueueAsync(write);
        if (stored is not { } newVersion)
        {
            throw Conflict("WriteState", stateName, grainId, grainState.ETag);
        }

        grainState.ETag = newVersion.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        // As the provider does: a state never read or written learns its version first, and nothing stored means nothing to clear.
        if (!grainState.RecordExists && string.IsNullOrWhiteSpace(grainState.ETag))
        {
            Read(stateName, grainId, grainState);
            if (!grainState.RecordExists)
            {
                return;
            }
        }

        var write = new PendingWrite(Operation.Delete, Key(stateName, grainId), Version(grainState.ETag), null);
        if (await EnqueueAsync(write) is null)
        {
            throw Conflict("ClearState", stateName, grainId, grainState.ETag);
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = _activators.GetActivator<T>().Create();
    }

    /// <summary>Stops taking writes, lets the queued ones finish, and closes the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop;
        CloseReaders();
    }

    /// <summary>As <see cref="DisposeAsync"/>, for a container disposed synchronously.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _loop.GetAwaiter().GetResult();
        CloseReaders();
    }

    /// <summary>
    /// The provider's read: the state from the row's payload, or a new one from the activator when
    /// there is no row or no payload; the row's version as the ETag; whether a stored state exists.
    /// </summary>
    private void Read<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var reader = TakeReader();
        (byte[]? Payload, long Version)? row;
        try
        {
            row = reader.Run(key);
        }
        catch
        {
            // Whatever went wrong may have been the connection's: it is not used again.
            reader.Dispose();
            throw;
        }

        GiveBack(reader);
        grainState.State = row?.Payload is { } payload
            ? _serializer.Deserialize<T>(new BinaryData(payload))
            : _activators.GetActivator<T>().Create();
        grainState.ETag = row?.Version.ToString(CultureInfo.InvariantCulture);
        // As the provider: a row without a payload holds no state, though its version is the ETag to write on.
        grainState.RecordExists = row?.Payload is not null;
    }

    private ReadStatement TakeReader()
    {
        if (_idleReaders.TryDequeue(out var reader))
        {
            Interlocked.Decrement(ref _idleReaderCount);
            return reader;
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        return ReadStatement.Open(_connectionString);
    }

    private void GiveBack(ReadStatement reader)
    {
        if (!_disposed)
        {
            if (Interlocked.Increment(ref _idleReaderCount) <= MaxIdleReaders)
            {
                _idleReaders.Enqueue(reader);
                if (_disposed)
                {
                    // Disposal emptied the queue while this one was on its way back.
                    CloseReaders();
                }

                return;
            }

            Interlocked.Decrement(ref _idleReaderCount);
        }

        reader.Dispose();
    }

    private void CloseReaders()
    {
        _disposed = true;
        while (_idleReaders.TryDequeue(out var reader))
        {
            Interlocked.Decrement(ref _idleReaderCount);
            reader.Dispose();
        }
    }

    private Task<long?> EnqueueAsync(PendingWrite write)
    {
        if (!_queue.Writer.TryWrite(write))
        {
            throw new ObjectDisposedException(nameof(SqliteBatchWriteGrainStorage), "The SQLite write queue has stopped.");
        }

        return write.Done.Task;
    }

    /// <summary>The grain key as the provider stores it: integer and GUID keys in N0/N1 with their extension, any other key as the extension.</summary>
    private GrainKey Key(string stateName, GrainId grainId)
    {
        // The provider keeps only the base name of a generic type name; no state of this product has one.
        if (stateName.Contains('`', StringComparison.Ordinal))
        {
            throw new NotSupportedException($"State name '{stateName}' names a generic type, which the SQLite write queue does not store.");
        }

        if (grainId.TryGetGuidKey(out var guid, out var extension))
        {
            Span<byte> bytes = stackalloc byte[16];
            guid.TryWriteBytes(bytes);
            return new GrainKey(_serviceId, stateName, BitConverter.ToInt64(bytes[..8]), BitConverter.ToInt64(bytes[8..]), extension ?? string.Empty);
        }

        if (grainId.TryGetIntegerKey(out var integer, out extension))
        {
            return new GrainKey(_serviceId, stateName, 0, integer, extension ?? string.Empty);
        }

        return new GrainKey(_serviceId, stateName, 0, 0, grainId.Key.ToString()!);
    }

    /// <summary>The provider's version parameter: the ETag as an integer, none for a state never stored.</summary>
    private static int? Version(string? etag) =>
        string.IsNullOrWhiteSpace(etag) ? null : int.Parse(etag, CultureInfo.InvariantCulture);

    private InconsistentStateException Conflict(string operation, string stateName, GrainId grainId, string? etag) =>
        new($"Version conflict ({operation}): ServiceId={_serviceId} ProviderName={_providerName} GrainType={stateName} GrainId={grainId} ETag={etag}.");

    private async Task RunAsync()
    {
        var batch = new List<PendingWrite>(MaxBatchWrites);
        while (await _queue.Reader.WaitToReadAsync())
        {
            var bytes = 0L;
            while (batch.Count < MaxBatchWrites && _queue.Reader.TryPeek(out var next)
                && (batch.Count == 0 || bytes + next.Bytes <= MaxBatchBytes) && _queue.Reader.TryRead(out next))
            {
                batch.Add(next);
                bytes += next.Bytes;
            }

            try
            {
                var number = Commit(batch);
                _ = CompleteWhenDurableAsync([.. batch], number);
            }
            catch (Exception ex)
            {
                LogBatchFailed(_logger, ex, batch.Count);
                foreach (var write in batch)
                {
                    write.Done.TrySetException(ex);
                }
            }

            batch.Clear();
        }

        _statements?.Dispose();
        _statements = null;
    }

    /// <summary>Runs the batch in one transaction and commits it; returns the batch's number.</summary>
    private long Commit(List<PendingWrite> batch)
    {
        try
        {
            _statements ??= Statements.Open(_connectionString);
            using var transaction = _statements.Connection.BeginTransaction(deferred: false);
            foreach (var write in batch)
            {
                write.Stored = _statements.Run(write, transaction);
            }

            BeforeCommit?.Invoke(batch.Count);
            transaction.Commit();
        }
        catch
        {
            // Closing the connection rolls back whatever the failure left open; the next batch opens a new one.
            _statements?.Dispose();
            _statements = null;
            throw;
        }

        return Interlocked.Increment(ref _committed);
    }

    private async Task CompleteWhenDurableAsync(PendingWrite[] batch, long number)
    {
        try
        {
            await DurableAsync(number);
        }
        catch (Exception ex)
        {
            foreach (var write in batch)
            {
                write.Done.TrySetException(ex);
            }

            return;
        }

        foreach (var write in batch)
        {
            write.Done.TrySetResult(write.Stored);
        }
    }

    /// <summary>Returns once an fsync that began after batch <paramref name="number"/> committed has completed.</summary>
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
                    // Covers every batch committed so far, this one among them.
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of {Count} SQLite grain-state writes failed; each of them fails and the next batch starts on a new connection.")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int count);

    private enum Operation
    {
        Insert,
        Update,
        Delete,
    }

    /// <summary>A row's key columns, as the provider's parameters name them.</summary>
    private readonly record struct GrainKey(string ServiceId, string GrainType, long N0, long N1, string Extension);

    /// <summary>One queued write, and what became of it.</summary>
    private sealed class PendingWrite(Operation operation, GrainKey key, int? version, byte[]? payload)
    {
        public Operation Operation { get; } = operation;

        public GrainKey Key { get; } = key;

        public int? Version { get; } = version;

        public byte[]? Payload { get; } = payload;

        public int Bytes => Payload?.Length ?? 0;

        /// <summary>The row's version after the statement (for a delete, the deleted version plus one); null for a version conflict.</summary>
        public long? Stored { get; set; }

        public TaskCompletionSource<long?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>A read connection and its prepared statement, used by one read at a time.</summary>
    private sealed class ReadStatement : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _command;
        private readonly KeyParameters _key;

        private ReadStatement(SqliteConnection connection)
        {
            _connection = connection;
            _command = connection.CreateCommand();
            _command.CommandText = ReadText;
            _key = new KeyParameters(_command);
        }

        public static ReadStatement Open(string connectionString)
        {
            var connection = new SqliteConnection(connectionString);
            try
            {
                connection.Open();
                var statement = new ReadStatement(connection);
                statement._command.Prepare();
                return statement;
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        /// <summary>The row of <paramref name="key"/> as (Payload, Version), or null when there is none.</summary>
        public (byte[]? Payload, long Version)? Run(GrainKey key)
        {
            _key.Set(key);

            // Disposing the reader resets the statement, which ends its read transaction: the next run reads the latest commit.
            using var reader = _command.ExecuteReader(System.Data.CommandBehavior.SingleRow);
            if (!reader.Read())
            {
                return null;
            }

            return (reader.IsDBNull(0) ? null : (byte[])reader.GetValue(0), reader.GetInt64(1));
        }

        public void Dispose()
        {
            _command.Dispose();
            _connection.Dispose();
        }
    }

    /// <summary>The long-lived connection and its three statements, prepared once and run with new values for each write.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly WriteStatement _insert;
        private readonly WriteStatement _update;
        private readonly WriteStatement _delete;

        private Statements(SqliteConnection connection)
        {
            Connection = connection;
            _insert = new WriteStatement(connection, InsertText, withPayload: true, withVersion: false);
            _update = new WriteStatement(connection, UpdateText, withPayload: true, withVersion: true);
            _delete = new WriteStatement(connection, DeleteText, withPayload: false, withVersion: true);
        }

        public SqliteConnection Connection { get; }

        public static Statements Open(string connectionString)
        {
            var connection = new SqliteConnection(connectionString);
            try
            {
                connection.Open();
                using (var pragma = connection.CreateCommand())
                {
                    // Commits do not sync; the queue flushes the log once for all the batches committed meanwhile.
                    pragma.CommandText = "PRAGMA synchronous = NORMAL;";
                    pragma.ExecuteNonQuery();
                }

                return new Statements(connection);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        /// <summary>Runs one write's statement; its returned version, or null when the version did not match.</summary>
        public long? Run(PendingWrite write, SqliteTransaction transaction)
        {
            var statement = write.Operation switch
            {
                Operation.Insert => _insert,
                Operation.Update => _update,
                _ => _delete,
            };
            return statement.Run(write, transaction);
        }

        public void Dispose()
        {
            _insert.Dispose();
            _update.Dispose();
            _delete.Dispose();
            Connection.Dispose();
        }
    }

    /// <summary>One write statement and its parameters, kept so that a write sets them without looking them up by name.</summary>
    private sealed class WriteStatement : IDisposable
    {
        private readonly SqliteCommand _command;
        private readonly KeyParameters _key;
        private readonly SqliteParameter? _payload;
        private readonly SqliteParameter? _version;

        public WriteStatement(SqliteConnection connection, string text, bool withPayload, bool withVersion)
        {
            _command = connection.CreateCommand();
            _command.CommandText = text;
            _key = new KeyParameters(_command);
            _payload = withPayload ? _command.Parameters.Add("@PayloadBinary", SqliteType.Blob) : null;
            _version = withVersion ? _command.Parameters.Add("@GrainStateVersion", SqliteType.Integer) : null;
        }

        public long? Run(PendingWrite write, SqliteTransaction transaction)
        {
            _command.Transaction = transaction;
            _key.Set(write.Key);
            _payload?.Value = write.Payload;
            _version?.Value = write.Version is { } version ? version : DBNull.Value;
            return _command.ExecuteScalar() is long stored ? stored : null;
        }

        public void Dispose() => _command.Dispose();
    }

    /// <summary>The five parameters that name a grain's row, as the provider's queries call them, on one command.</summary>
    private sealed class KeyParameters(SqliteCommand command)
    {
        private readonly SqliteParameter _serviceId = command.Parameters.Add("@ServiceId", SqliteType.Text);
        private readonly SqliteParameter _grainType = command.Parameters.Add("@GrainTypeString", SqliteType.Text);
        private readonly SqliteParameter _n0 = command.Parameters.Add("@GrainIdN0", SqliteType.Integer);
        private readonly SqliteParameter _n1 = command.Parameters.Add("@GrainIdN1", SqliteType.Integer);
        private readonly SqliteParameter _extension = command.Parameters.Add("@GrainIdExtensionString", SqliteType.Text);

        public void Set(GrainKey key)
        {
            _serviceId.Value = key.ServiceId;
            _grainType.Value = key.GrainType;
            _n0.Value = key.N0;
            _n1.Value = key.N1;
            _extension.Value = key.Extension;
        }
    }
}
