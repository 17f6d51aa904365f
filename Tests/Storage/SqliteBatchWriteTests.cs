using System.Collections.Concurrent;
using Grains.Hosting;
using Grains.Interfaces;
using Grains.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Serialization.Serializers;
using Orleans.Storage;
using Orleans.TestingHost;
using Tests.Infrastructure;

namespace Tests.Storage;

/// <summary>
/// One silo on a real SQLite file, whose ADO.NET provider, serializer and activators the tests'
/// own batch writers share: each test builds a writer with the flush of the log in its hands.
/// </summary>
public sealed class BatchWriteFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public SqliteTestCluster Silos { get; private set; } = null!;

    public IServiceProvider Services { get; private set; } = null!;

    /// <summary>The ADO.NET provider itself, without the silo's write queue in front.</summary>
    public IGrainStorage Provider => Services.GetRequiredKeyedService<IGrainStorage>(Names.Storage + ".AdoNet");

    public string ServiceId => Services.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId;

    public async ValueTask InitializeAsync()
    {
        Silos = await SqliteTestCluster.StartAsync(Database.Path, silos: 1);
        Services = Assert.IsType<InProcessSiloHandle>(Silos.Cluster.Primary).SiloHost.Services;
    }

    public async ValueTask DisposeAsync()
    {
        await Silos.DisposeAsync();
        Database.Dispose();
    }

    /// <summary>A writer on the silo's database (or on <paramref name="connectionString"/>), with the flush given.</summary>
    internal SqliteBatchWriteGrainStorage Writer(Action flushLog, string? connectionString = null) => new(
        connectionString ?? Services.GetRequiredService<StorageDatabase>().ConnectionString,
        ServiceId,
        "test",
        Services.GetRequiredService<IGrainStorageSerializer>(),
        Services.GetRequiredService<IActivatorProvider>(),
        NullLogger.Instance,
        flushLog);

    /// <summary>Runs <paramref name="sql"/> on the silo's database with the parameters given.</summary>
    public void Execute(string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = new SqliteConnection($"Data Source={Database.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        command.ExecuteNonQuery();
    }

    /// <summary>The stored row of a state, as (Version, Payload); null when there is none.</summary>
    public (long Version, byte[]? Payload)? Row(string stateName, long n0, long n1, string extension)
    {
        using var connection = new SqliteConnection($"Data Source={Database.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText =
            "SELECT Version, Payload FROM GrainState WHERE ServiceId = $s AND GrainType = $t AND GrainIdN0 = $n0 AND GrainIdN1 = $n1 AND GrainIdExtension = $e";
        command.Parameters.AddWithValue("$s", ServiceId);
        command.Parameters.AddWithValue("$t", stateName);
        command.Parameters.AddWithValue("$n0", n0);
        command.Parameters.AddWithValue("$n1", n1);
        command.Parameters.AddWithValue("$e", extension);
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.IsDBNull(1) ? null : (byte[])reader[1]) : null;
    }
}

/// <summary>
/// The SQLite write queue: several writes per transaction on one connection, each with its own
/// version check and outcome, acknowledged only after a flush of the log that began after its batch
/// committed, in the provider's rows so that the provider reads what it writes and the reverse.
/// </summary>
public sealed class SqliteBatchWriteTests(BatchWriteFixture fixture) : IClassFixture<BatchWriteFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheProviderReadsWhatTheWriterWroteAndTheWriterUpdatesWhatTheProviderWrote()
    {
        await using var writer = fixture.Writer(() => { });
        var provider = fixture.Provider;
        var grainId = GrainId.Create("probe", $"p-{Guid.NewGuid():N}");

        var state = new GrainState<Probe>(new Probe { Text = "first", Count = 1 });
        await writer.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        Assert.Equal(("1", true), (state.ETag, state.RecordExists));

        var read = new GrainState<Probe>(new Probe());
        await provider.ReadStateAsync("probe", grainId, read).WaitAsync(Bound, Cancel);
        Assert.Equal(("first", 1, "1", true), (read.State!.Text, read.State!.Count, read.ETag, read.RecordExists));

        // The provider moves the row on; the writer, holding the provider's ETag, moves it on again.
        read.State = new Probe { Text = "second", Count = 2 };
        await provider.WriteStateAsync("probe", grainId, read).WaitAsync(Bound, Cancel);
        Assert.Equal("2", read.ETag);
        read.State = new Probe { Text = "third", Count = 3 };
        await writer.WriteStateAsync("probe", grainId, read).WaitAsync(Bound, Cancel);
        Assert.Equal("3", read.ETag);

        // The writer's old ETag is stale now, and a writer that never read the row may not create it.
        state.State = new Probe { Text = "stale" };
        await Assert.ThrowsAsync<InconsistentStateException>(() => writer.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel));
        await Assert.ThrowsAsync<InconsistentStateException>(
            () => writer.WriteStateAsync("probe", grainId, new GrainState<Probe>(new Probe { Text = "blind" })).WaitAsync(Bound, Cancel));

        var last = new GrainState<Probe>(new Probe());
        await provider.ReadStateAsync("probe", grainId, last).WaitAsync(Bound, Cancel);
        Assert.Equal(("third", 3, "3"), (last.State!.Text, last.State!.Count, last.ETag));
        Assert.Equal(3, fixture.Row("probe", 0, 0, grainId.Key.ToString()!)!.Value.Version);

        // And the provider, holding the writer's ETag, writes after it.
        last.State = new Probe { Text = "fourth" };
        await provider.WriteStateAsync("probe", grainId, last).WaitAsync(Bound, Cancel);
        Assert.Equal("4", last.ETag);
    }

    [Fact]
    public async Task IntegerAndGuidKeysWithExtensionsLandInTheProvidersRowsWithTheSamePayloadBytes()
    {
        await using var writer = fixture.Writer(() => { });
        var provider = fixture.Provider;
        var number = Random.Shared.NextInt64(1, long.MaxValue);
        var guid = Guid.NewGuid();
        var probe = new Probe { Text = "same \u00e9 \ud83d\ude00", Count = 7 };

        // Each key shape written once by the writer and once, with another key, by the provider.
        var otherGuid = Guid.NewGuid();
        (GrainId Ours, GrainId Theirs, (long N0, long N1) OurColumns, (long N0, long N1) TheirColumns, string Extension)[] keys =
        [
            (GrainId.Create(GrainType.Create("num"), GrainIdKeyExtensions.CreateIntegerKey(number, "ext")),
             GrainId.Create(GrainType.Create("num"), GrainIdKeyExtensions.CreateIntegerKey(number - 1, "ext")), (0, number), (0, number - 1), "ext"),
            (GrainId.Create(GrainType.Create("num"), GrainIdKeyExtensions.CreateIntegerKey(-number)),
             GrainId.Create(GrainType.Create("num"), GrainIdKeyExtensions.CreateIntegerKey(-number + 1)), (0, -number), (0, -number + 1), ""),
            (GrainId.Create(GrainType.Create("guid"), GrainIdKeyExtensions.CreateGuidKey(guid, "x")),
             GrainId.Create(GrainType.Create("guid"), GrainIdKeyExtensions.CreateGuidKey(otherGuid, "x")), Columns(guid), Columns(otherGuid), "x"),
        ];
        var expected = fixture.Services.GetRequiredService<IGrainStorageSerializer>().Serialize(probe).ToArray();
        foreach (var (ours, theirs, ourColumns, theirColumns, extension) in keys)
        {
            await writer.WriteStateAsync("shape", ours, new GrainState<Probe>(probe)).WaitAsync(Bound, Cancel);
            await provider.WriteStateAsync("shape", theirs, new GrainState<Probe>(probe)).WaitAsync(Bound, Cancel);

            var ourRow = fixture.Row("shape", ourColumns.N0, ourColumns.N1, extension);
            var theirRow = fixture.Row("shape", theirColumns.N0, theirColumns.N1, extension);
            Assert.NotNull(ourRow);
            Assert.NotNull(theirRow);
            Assert.Equal(1, ourRow.Value.Version);
            Assert.Equal(1, theirRow.Value.Version);
            Assert.Equal(expected, ourRow.Value.Payload);
            Assert.Equal(theirRow.Value.Payload, ourRow.Value.Payload);

            var read = new GrainState<Probe>(new Probe());
            await provider.ReadStateAsync("shape", ours, read).WaitAsync(Bound, Cancel);
            Assert.Equal((probe.Text, 7, "1", true), (read.State!.Text, read.State!.Count, read.ETag, read.RecordExists));
        }

        static (long, long) Columns(Guid guid) => (BitConverter.ToInt64(guid.ToByteArray(), 0), BitConverter.ToInt64(guid.ToByteArray(), 8));
    }

    [Fact]
    public async Task ClearDeletesTheRowAndAStaleClearChangesNothing()
    {
        await using var writer = fixture.Writer(() => { });
        var provider = fixture.Provider;
        var grainId = GrainId.Create("probe", $"c-{Guid.NewGuid():N}");
        var key = grainId.Key.ToString()!;

        // Nothing stored: a clear of a state never read finds nothing and does nothing.
        var never = new GrainState<Probe>(new Probe { Text = "x" });
        await writer.ClearStateAsync("probe", grainId, never).WaitAsync(Bound, Cancel);
        Assert.False(never.RecordExists);
        Assert.Null(fixture.Row("probe", 0, 0, key));

        var state = new GrainState<Probe>(new Probe { Text = "kept" });
        await writer.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        await writer.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        Assert.Equal("2", state.ETag);

        var stale = new GrainState<Probe>(new Probe()) { ETag = "1", RecordExists = true };
        await Assert.ThrowsAsync<InconsistentStateException>(() => writer.ClearStateAsync("probe", grainId, stale).WaitAsync(Bound, Cancel));
        Assert.Equal(2, fixture.Row("probe", 0, 0, key)!.Value.Version);

        await writer.ClearStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        Assert.Equal((null, false), (state.ETag, state.RecordExists));
        Assert.Null(state.State!.Text);
        Assert.Null(fixture.Row("probe", 0, 0, key));
        var gone = new GrainState<Probe>(new Probe());
        await provider.ReadStateAsync("probe", grainId, gone).WaitAsync(Bound, Cancel);
        Assert.False(gone.RecordExists);

        // A row the provider wrote, cleared by the writer after a read through the provider.
        await provider.WriteStateAsync("probe", grainId, new GrainState<Probe>(new Probe { Text = "theirs" })).WaitAsync(Bound, Cancel);
        var fresh = new GrainState<Probe>(new Probe());
        await writer.ClearStateAsync("probe", grainId, fresh).WaitAsync(Bound, Cancel);
        Assert.Null(fixture.Row("probe", 0, 0, key));

        // The next write starts over at version 1.
        var again = new GrainState<Probe>(new Probe { Text = "again" });
        await writer.WriteStateAsync("probe", grainId, again).WaitAsync(Bound, Cancel);
        Assert.Equal("1", again.ETag);
    }

    [Fact]
    public async Task AStaleETagFailsOnlyItsOwnWriteInABatchOfMany()
    {
        const int Writes = 100;
        var release = new ManualResetEventSlim();
        var batchSizes = new ConcurrentQueue<int>();
        await using var writer = fixture.Writer(() => { });
        var prefix = $"b-{Guid.NewGuid():N}";

        // One row exists at version 1; the batch will hold a write for it with ETag 5.
        var conflicted = GrainId.Create("probe", $"{prefix}-conflicted");
        await writer.WriteStateAsync("probe", conflicted, new GrainState<Probe>(new Probe { Text = "v1" })).WaitAsync(Bound, Cancel);
        var before = writer.Batches;

        // The first batch is held until every other write has queued behind it, so those make one batch.
        writer.BeforeCommit = size =>
        {
            batchSizes.Enqueue(size);
            if (batchSizes.Count == 1)
            {
                Assert.True(release.Wait(Bound), "the writes did not all queue");
            }
        };
        var first = writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-first"), new GrainState<Probe>(new Probe { Text = "first" }));
        Assert.True(SpinWait.SpinUntil(() => !batchSizes.IsEmpty, Bound), "the first batch did not begin");

        var states = Enumerable.Range(0, Writes).Select(i => new GrainState<Probe>(new Probe { Text = $"w{i}", Count = i })).ToArray();
        states[Writes / 2].ETag = "5";
        var writes = states.Select((state, i) => i == Writes / 2
            ? writer.WriteStateAsync("probe", conflicted, state)
            : writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-{i}"), state)).ToArray();
        Assert.True(SpinWait.SpinUntil(() => writer.Queued == Writes, Bound), "the writes did not queue");
        release.Set();

        await first.WaitAsync(Bound, Cancel);
        for (var i = 0; i < Writes; i++)
        {
            if (i == Writes / 2)
            {
                await Assert.ThrowsAsync<InconsistentStateException>(() => writes[i].WaitAsync(Bound, Cancel));
                Assert.Equal("5", states[i].ETag);
            }
            else
            {
                await writes[i].WaitAsync(Bound, Cancel);
                Assert.Equal("1", states[i].ETag);
                Assert.Equal(1, fixture.Row("probe", 0, 0, $"{prefix}-{i}")!.Value.Version);
            }
        }

        Assert.Equal(new[] { 1, Writes }, batchSizes.ToArray());
        Assert.Equal(before + 2, writer.Batches);
        var kept = new GrainState<Probe>(new Probe());
        await fixture.Provider.ReadStateAsync("probe", conflicted, kept).WaitAsync(Bound, Cancel);
        Assert.Equal(("v1", "1"), (kept.State!.Text, kept.ETag));
    }

    [Fact]
    public async Task ConcurrentWritesShareTransactionsAndEachWaitsForAFlushThatBeganAfterItsBatchCommitted()
    {
        const int Writes = 200;
        var flushes = new ConcurrentQueue<(long CoveredUpTo, long EndedAt)>();
        var clock = 0L;
        var firstFlushBegan = new ManualResetEventSlim();
        var allQueued = new ManualResetEventSlim();
        var batches = 0;
        SqliteBatchWriteGrainStorage writer = null!;
        writer = fixture.Writer(() =>
        {
            // A flush covers the batches committed when it began. The first one is held until the second
            // batch, with every other write, has committed behind it: those writes must wait for one more.
            var covered = writer.Batches;
            if (flushes.IsEmpty && !firstFlushBegan.IsSet)
            {
                firstFlushBegan.Set();
                Assert.True(SpinWait.SpinUntil(() => writer.Batches == 2, Bound), "the second batch did not commit while the first flush was held");
            }

            flushes.Enqueue((covered, Interlocked.Increment(ref clock)));
        });
        await using var _ = writer;

        // Batch 1 is the first write alone, held until the others have queued; batch 2, all of them,
        // commits only once the flush for batch 1 has begun, so that flush cannot cover it.
        writer.BeforeCommit = size =>
        {
            if (Interlocked.Increment(ref batches) == 1)
            {
                Assert.True(allQueued.Wait(Bound), "the writes did not queue");
            }
            else
            {
                Assert.True(firstFlushBegan.Wait(Bound), "the first flush did not begin");
            }
        };

        var prefix = $"g-{Guid.NewGuid():N}";
        var acknowledged = new ConcurrentQueue<(int Write, long At)>();
        async Task WriteAsync(int i)
        {
            await writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-{i}"), new GrainState<Probe>(new Probe { Count = i })).WaitAsync(Bound, Cancel);
            acknowledged.Enqueue((i, Interlocked.Read(ref clock)));
        }

        var first = WriteAsync(0);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref batches) == 1, Bound), "the first batch did not begin");
        var rest = Enumerable.Range(1, Writes - 1).Select(WriteAsync).ToArray();
        Assert.True(SpinWait.SpinUntil(() => writer.Queued == Writes - 1, Bound), "the writes did not queue");
        allQueued.Set();
        await Task.WhenAll([first, .. rest]);

        // Two transactions for 200 writes, and two flushes: the held one covered batch 1, the next batch 2.
        Assert.Equal(2, writer.Batches);
        Assert.Equal(new[] { (1L, 1L), (2L, 2L) }, flushes.ToArray());
        Assert.Equal(Writes, acknowledged.Count);
        Assert.All(acknowledged, a => Assert.True(a.Write == 0 ? a.At >= 1 : a.At == 2, $"write {a.Write} acknowledged at flush {a.At}"));
        Assert.All(Enumerable.Range(0, Writes), i => Assert.NotNull(fixture.Row("probe", 0, 0, $"{prefix}-{i}")));
    }

    [Theory]
    [InlineData(300, 16, new[] { 1, 256, 44 })]
    [InlineData(5, 1_500_000, new[] { 1, 2, 2, 1 })]
    public async Task ABatchHoldsAtMost256WritesOr4MiBOfPayload(int writes, int payloadChars, int[] expectedBatches)
    {
        var release = new ManualResetEventSlim();
        var batchSizes = new ConcurrentQueue<int>();
        await using var writer = fixture.Writer(() => { });
        var prefix = $"m-{Guid.NewGuid():N}";
        writer.BeforeCommit = size =>
        {
            batchSizes.Enqueue(size);
            if (batchSizes.Count == 1)
            {
                Assert.True(release.Wait(Bound), "the writes did not all queue");
            }
        };

        var first = writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-first"), new GrainState<Probe>(new Probe()));
        Assert.True(SpinWait.SpinUntil(() => !batchSizes.IsEmpty, Bound), "the first batch did not begin");
        var text = new string('p', payloadChars);
        var pending = Enumerable.Range(0, writes)
            .Select(i => writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-{i}"), new GrainState<Probe>(new Probe { Text = text, Count = i })))
            .ToArray();
        Assert.True(SpinWait.SpinUntil(() => writer.Queued == writes, Bound), "the writes did not queue");
        release.Set();

        await Task.WhenAll([first, .. pending]).WaitAsync(Bound, Cancel);
        Assert.Equal(expectedBatches, batchSizes.ToArray());
        Assert.All(Enumerable.Range(0, writes), i => Assert.Equal(1, fixture.Row("probe", 0, 0, $"{prefix}-{i}")!.Value.Version));
    }

    [Fact]
    public async Task AFailedFlushFailsTheWritesWaitingForItAndTheNextFlushIsTried()
    {
        var failNext = true;
        await using var writer = fixture.Writer(() =>
        {
            if (failNext)
            {
                failNext = false;
                throw new IOException("disk gone");
            }
        });
        var prefix = $"f-{Guid.NewGuid():N}";

        await Assert.ThrowsAsync<IOException>(() => writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-a"), new GrainState<Probe>(new Probe())).WaitAsync(Bound, Cancel));
        var next = new GrainState<Probe>(new Probe { Text = "b" });
        await writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-b"), next).WaitAsync(Bound, Cancel);
        Assert.Equal("1", next.ETag);
        Assert.Equal(2, writer.Batches);
    }

    [Fact]
    public async Task AFailingBatchFailsItsWritesRollsBackAndTheNextBatchSucceeds()
    {
        await using var writer = fixture.Writer(() => { });
        var prefix = $"x-{Guid.NewGuid():N}";
        var fail = true;
        writer.BeforeCommit = _ =>
        {
            if (fail)
            {
                fail = false;
                throw new SqliteException("disk I/O error", 10);
            }
        };

        var state = new GrainState<Probe>(new Probe { Text = "lost" });
        var error = await Assert.ThrowsAsync<SqliteException>(() => writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-a"), state).WaitAsync(Bound, Cancel));
        Assert.Equal(10, error.SqliteErrorCode);
        Assert.Null(state.ETag);
        Assert.Null(fixture.Row("probe", 0, 0, $"{prefix}-a"));

        // The statements had run: the rollback undid them, and the same write now succeeds as a first write.
        await writer.WriteStateAsync("probe", GrainId.Create("probe", $"{prefix}-a"), state).WaitAsync(Bound, Cancel);
        Assert.Equal("1", state.ETag);
        Assert.Equal(1, fixture.Row("probe", 0, 0, $"{prefix}-a")!.Value.Version);
    }

    [Fact]
    public async Task ADatabaseLockedByAnotherConnectionFailsTheBatchAsUnavailableAndTheNextSucceeds()
    {
        var database = fixture.Services.GetRequiredService<StorageDatabase>();

        // A second writer that gives up on a busy database after one second, mapped as the silo maps errors.
        var impatient = new SqliteConnectionStringBuilder(database.ConnectionString) { DefaultTimeout = 1 }.ToString();
        await using var writer = fixture.Writer(() => { }, impatient);
        var storage = new StorageErrorMappingGrainStorage(writer);
        var grainId = GrainId.Create("probe", $"l-{Guid.NewGuid():N}");
        var state = new GrainState<Probe>(new Probe { Text = "locked out" });

        await using (var holder = new SqliteConnection(new SqliteConnectionStringBuilder(database.ConnectionString) { Pooling = false }.ToString()))
        {
            await holder.OpenAsync(Cancel);
            using var transaction = holder.BeginTransaction(deferred: false);
            var error = await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel));
            Assert.Equal("5", error.Code);
            transaction.Rollback();
        }

        Assert.Null(state.ETag);
        Assert.Null(fixture.Row("probe", 0, 0, grainId.Key.ToString()!));
        await storage.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        Assert.Equal("1", state.ETag);
    }

    [Fact]
    public async Task TheWriterReadsTheProvidersRowsExactlyAsTheProviderDoes()
    {
        await using var writer = fixture.Writer(() => { });
        var provider = fixture.Provider;
        var number = Random.Shared.NextInt64(1, long.MaxValue);
        var probe = new Probe { Text = "read \u00e9 \ud83d\ude00", Count = 11 };
        GrainId[] keys =
        [
            GrainId.Create("probe", $"r-{Guid.NewGuid():N}"),
            GrainId.Create(GrainType.Create("num"), GrainIdKeyExtensions.CreateIntegerKey(number, "ext")),
            GrainId.Create(GrainType.Create("num"), GrainIdKeyExtensions.CreateIntegerKey(-number)),
            GrainId.Create(GrainType.Create("guid"), GrainIdKeyExtensions.CreateGuidKey(Guid.NewGuid(), "x")),
            GrainId.Create(GrainType.Create("guid"), GrainIdKeyExtensions.CreateGuidKey(Guid.NewGuid())),
        ];

        foreach (var key in keys)
        {
            // A row the provider wrote, moved on to version 2, is read by both alike.
            var written = new GrainState<Probe>(new Probe { Text = "first" });
            await provider.WriteStateAsync("read", key, written).WaitAsync(Bound, Cancel);
            written.State = probe;
            await provider.WriteStateAsync("read", key, written).WaitAsync(Bound, Cancel);

            var ours = new GrainState<Probe>(new Probe { Text = "before" });
            var theirs = new GrainState<Probe>(new Probe { Text = "before" });
            await writer.ReadStateAsync("read", key, ours).WaitAsync(Bound, Cancel);
            await provider.ReadStateAsync("read", key, theirs).WaitAsync(Bound, Cancel);
            Assert.Equal((probe.Text, 11, "2", true), (ours.State!.Text, ours.State.Count, ours.ETag, ours.RecordExists));
            Assert.Equal((theirs.State!.Text, theirs.State.Count, theirs.ETag, theirs.RecordExists), (ours.State.Text, ours.State.Count, ours.ETag, ours.RecordExists));

            // The ETag read here is the one the provider's next write expects, and the reverse.
            ours.State = new Probe { Text = "ours" };
            await writer.WriteStateAsync("read", key, ours).WaitAsync(Bound, Cancel);
            await provider.ReadStateAsync("read", key, theirs).WaitAsync(Bound, Cancel);
            Assert.Equal(("ours", "3"), (theirs.State!.Text, theirs.ETag));
            theirs.State = new Probe { Text = "theirs" };
            await provider.WriteStateAsync("read", key, theirs).WaitAsync(Bound, Cancel);
            await writer.ReadStateAsync("read", key, ours).WaitAsync(Bound, Cancel);
            Assert.Equal(("theirs", "4", true), (ours.State!.Text, ours.ETag, ours.RecordExists));
        }
    }

    [Fact]
    public async Task AMissingRowOrOneWithoutPayloadReadsAsANewStateAsTheProviderReadsIt()
    {
        await using var writer = fixture.Writer(() => { });
        var provider = fixture.Provider;

        // No row: a new state from the activator, no ETag, no record; the state held before is dropped.
        var missing = GrainId.Create("probe", $"n-{Guid.NewGuid():N}");
        var ours = new GrainState<Probe>(new Probe { Text = "held", Count = 5 }) { ETag = "9", RecordExists = true };
        var theirs = new GrainState<Probe>(new Probe { Text = "held", Count = 5 }) { ETag = "9", RecordExists = true };
        await writer.ReadStateAsync("probe", missing, ours).WaitAsync(Bound, Cancel);
        await provider.ReadStateAsync("probe", missing, theirs).WaitAsync(Bound, Cancel);
        Assert.Equal(((string?)null, 0, (string?)null, false), (ours.State!.Text, ours.State.Count, ours.ETag, ours.RecordExists));
        Assert.Equal((theirs.State!.Text, theirs.State.Count, theirs.ETag, theirs.RecordExists), (ours.State.Text, ours.State.Count, ours.ETag, ours.RecordExists));

        // A row kept without a payload (the provider's clear without DeleteStateOnClear): a new state and no
        // stored state, as the provider reads it, but the row's version as the ETag, so the next write updates it.
        var empty = GrainId.Create("probe", $"e-{Guid.NewGuid():N}");
        fixture.Execute(
            "INSERT INTO GrainState (ServiceId, GrainType, GrainIdN0, GrainIdN1, GrainIdExtension, Payload, Version, ModifiedOn) " +
            "VALUES ($s, 'probe', 0, 0, $e, NULL, 7, '2026-01-01T00:00:00.000Z')",
            ("$s", fixture.ServiceId), ("$e", empty.Key.ToString()!));
        ours = new GrainState<Probe>(new Probe { Text = "held" });
        theirs = new GrainState<Probe>(new Probe { Text = "held" });
        await writer.ReadStateAsync("probe", empty, ours).WaitAsync(Bound, Cancel);
        await provider.ReadStateAsync("probe", empty, theirs).WaitAsync(Bound, Cancel);
        Assert.Equal(((string?)null, "7", false), (ours.State!.Text, ours.ETag, ours.RecordExists));
        Assert.Equal((theirs.State!.Text, theirs.ETag, theirs.RecordExists), (ours.State.Text, ours.ETag, ours.RecordExists));
        ours.State = new Probe { Text = "refilled" };
        await writer.WriteStateAsync("probe", empty, ours).WaitAsync(Bound, Cancel);
        Assert.Equal(8, fixture.Row("probe", 0, 0, empty.Key.ToString()!)!.Value.Version);
    }

    [Fact]
    public async Task AReadOnAKeptConnectionSeesTheLatestCommitOfAnyConnection()
    {
        await using var writer = fixture.Writer(() => { });
        var provider = fixture.Provider;
        var grainId = GrainId.Create("probe", $"v-{Guid.NewGuid():N}");
        var state = new GrainState<Probe>(new Probe());

        // The first read leaves its connection open and idle; every later read here runs on a kept one.
        await writer.ReadStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        Assert.False(state.RecordExists);
        Assert.InRange(writer.IdleReaders, 1, SqliteBatchWriteGrainStorage.MaxIdleReaders);

        for (var i = 1; i <= 6; i++)
        {
            // Alternately the provider's connections and the writer's queue move the row on; each read sees that write.
            state.State = new Probe { Text = $"w{i}", Count = i };
            await (i % 2 == 0 ? writer : provider).WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
            var read = new GrainState<Probe>(new Probe());
            await writer.ReadStateAsync("probe", grainId, read).WaitAsync(Bound, Cancel);
            Assert.Equal(($"w{i}", i, i.ToString(System.Globalization.CultureInfo.InvariantCulture), true), (read.State!.Text, read.State.Count, read.ETag, read.RecordExists));
        }

        // And a delete: the next read finds nothing.
        await writer.ClearStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        var gone = new GrainState<Probe>(new Probe { Text = "held" });
        await writer.ReadStateAsync("probe", grainId, gone).WaitAsync(Bound, Cancel);
        Assert.Equal(((string?)null, (string?)null, false), (gone.State!.Text, gone.ETag, gone.RecordExists));
    }

    [Fact]
    public async Task ConcurrentReadsBesideWritesEachSeeACommittedVersionAndKeepAtMostTheIdleLimitOpen()
    {
        const int Grains = 40;
        const int Rounds = 5;
        await using var writer = fixture.Writer(() => { });
        var prefix = $"cr-{Guid.NewGuid():N}";
        var states = Enumerable.Range(0, Grains).Select(i => new GrainState<Probe>(new Probe { Count = 0 })).ToArray();

        // Each grain's writes and reads alternate, as a grain's do; the grains run at once.
        await Task.WhenAll(Enumerable.Range(0, Grains).Select(i => Task.Run(
            async () =>
            {
                var grainId = GrainId.Create("probe", $"{prefix}-{i}");
                for (var round = 1; round <= Rounds; round++)
                {
                    states[i].State = new Probe { Text = $"{i}", Count = round };
                    await writer.WriteStateAsync("probe", grainId, states[i]);
                    var read = new GrainState<Probe>(new Probe());
                    await writer.ReadStateAsync("probe", grainId, read);
                    Assert.Equal(($"{i}", round, states[i].ETag), (read.State!.Text, read.State.Count, read.ETag));
                }
            },
            Cancel))).WaitAsync(Bound, Cancel);

        Assert.InRange(writer.IdleReaders, 1, SqliteBatchWriteGrainStorage.MaxIdleReaders);
    }

    [Fact]
    public async Task AFailedReadIsUnavailableClosesItsConnectionAndTheNextReadWorks()
    {
        // A database of its own: the test takes its table away for a moment.
        using var database = new TempDatabase();
        var storageDatabase = StorageDatabase.Create(new StorageOptions { SqlitePath = database.Path }, Path.GetTempPath());
        await storageDatabase.ApplySchemaAsync(Cancel);
        await using var writer = fixture.Writer(() => { }, storageDatabase.ConnectionString);
        var storage = new StorageErrorMappingGrainStorage(writer);
        var grainId = GrainId.Create("probe", $"u-{Guid.NewGuid():N}");
        var state = new GrainState<Probe>(new Probe { Text = "kept" });
        await storage.WriteStateAsync("probe", grainId, state).WaitAsync(Bound, Cancel);
        await storage.ReadStateAsync("probe", grainId, new GrainState<Probe>(new Probe())).WaitAsync(Bound, Cancel);
        Assert.Equal(1, writer.IdleReaders);

        Execute(database.Path, "ALTER TABLE GrainState RENAME TO GrainStateAway;");
        var failed = new GrainState<Probe>(new Probe { Text = "held" });
        var error = await Assert.ThrowsAsync<StorageUnavailableException>(() => storage.ReadStateAsync("probe", grainId, failed).WaitAsync(Bound, Cancel));
        Assert.Equal("1", error.Code);
        Assert.Contains("GrainState", error.Message, StringComparison.Ordinal);
        Assert.Equal(("held", (string?)null, false), (failed.State!.Text, failed.ETag, failed.RecordExists));
        Assert.Equal(0, writer.IdleReaders);

        Execute(database.Path, "ALTER TABLE GrainStateAway RENAME TO GrainState;");
        var read = new GrainState<Probe>(new Probe());
        await storage.ReadStateAsync("probe", grainId, read).WaitAsync(Bound, Cancel);
        Assert.Equal(("kept", "1", true), (read.State!.Text, read.ETag, read.RecordExists));
        Assert.Equal(1, writer.IdleReaders);

        static void Execute(string path, string sql)
        {
            using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }
    }

    /// <summary>A state shape of the test's own, stored through the silo's serializer.</summary>
    public sealed class Probe
    {
        public string? Text { get; set; }

        public int Count { get; set; }
    }
}
