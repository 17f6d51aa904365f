using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Data;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Storage;
using Orleans.TestingHost;
using Tests.Infrastructure;

namespace Tests.Databases;

/// <summary>
/// Grain storage on a database server, through the same provider and our own schema: the
/// storage contract (versions, conflicts, delete), then the grains that lean on it.
/// </summary>
public abstract class ServerStorageTests(ServerClusterFixture fixture)
{
    private static readonly TimeSpan Valid = TimeSpan.FromMinutes(5);

    private IGrainFactory Grains => fixture.Grains;

    [Fact]
    public async Task StateRoundTripsWithVersionsConflictsAndDelete()
    {
        fixture.Require();
        var storage = Storage();
        var grainId = GrainId.Create("probe", $"Probe-{Guid.NewGuid():N}");

        var empty = new GrainState<Probe>(new Probe());
        await storage.ReadStateAsync("probe", grainId, empty);
        Assert.False(empty.RecordExists);
        Assert.Null(empty.ETag);

        var state = new GrainState<Probe>(new Probe { Text = "first", Count = 1 });
        await storage.WriteStateAsync("probe", grainId, state);
        Assert.Equal("1", state.ETag);
        Assert.True(state.RecordExists);

        // A second writer that never read the row must not overwrite it.
        var stale = new GrainState<Probe>(new Probe { Text = "stale" });
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("probe", grainId, stale));

        state.State = new Probe { Text = "second", Count = 2 };
        await storage.WriteStateAsync("probe", grainId, state);
        Assert.Equal("2", state.ETag);

        var read = new GrainState<Probe>(new Probe());
        await storage.ReadStateAsync("probe", grainId, read);
        Assert.Equal(("second", 2), (read.State?.Text, read.State?.Count));
        Assert.Equal("2", read.ETag);
        Assert.True(read.RecordExists);
        var payload = Assert.Single(await fixture.Database.QueryAsync(
            "SELECT Payload FROM GrainState WHERE GrainType = @type AND GrainIdExtension = @key",
            ("type", "probe", DbType.String), ("key", grainId.Key.ToString(), DbType.String)))[0];
        Assert.IsType<byte[]>(payload);

        // DeleteStateOnClear: the row goes, and the next write starts over.
        await storage.ClearStateAsync("probe", grainId, state);
        Assert.Null(state.ETag);
        Assert.False(state.RecordExists);
        Assert.Empty(await fixture.Database.QueryAsync(
            "SELECT Version FROM GrainState WHERE GrainType = @type AND GrainIdExtension = @key",
            ("type", "probe", DbType.String), ("key", grainId.Key.ToString(), DbType.String)));
        var gone = new GrainState<Probe>(new Probe());
        await storage.ReadStateAsync("probe", grainId, gone);
        Assert.False(gone.RecordExists);

        var again = new GrainState<Probe>(new Probe { Text = "third" });
        await storage.WriteStateAsync("probe", grainId, again);
        Assert.Equal("1", again.ETag);
    }

    [Fact]
    public async Task KeysThatDifferOnlyInCaseAreDifferentGrains()
    {
        fixture.Require();
        var storage = Storage();
        var suffix = Guid.NewGuid().ToString("N");
        var upper = GrainId.Create("probe", $"Key-{suffix}");
        var lower = GrainId.Create("probe", $"key-{suffix}");

        await storage.WriteStateAsync("probe", upper, new GrainState<Probe>(new Probe { Text = "upper" }));
        await storage.WriteStateAsync("probe", lower, new GrainState<Probe>(new Probe { Text = "lower" }));

        var read = new GrainState<Probe>(new Probe());
        await storage.ReadStateAsync("probe", upper, read);
        Assert.Equal("upper", read.State?.Text);
    }

    [Fact]
    public async Task FiveHundredConcurrentRegistrationsOverTwoSilosNeverShareAnId()
    {
        fixture.Require();
        var digests = Enumerable.Range(0, 500).Select(_ => TokenDigest.Of(TokenDigest.NewToken())).ToArray();

        var ids = await Task.WhenAll(digests.Select(d => Grains.GetGrain<IClientGrain>(d).Register(new ClientInformation("{}", null, null))));

        Assert.Equal(500, ids.Distinct().Count());
        Assert.All(ids, id => Assert.True(id > 0));
        var owners = await Task.WhenAll(ids.Select(id => Grains.GetGrain<IClientIdGrain>(id).GetDigest()));
        Assert.Equal(digests, owners);
    }

    [Fact]
    public async Task QueuedResponsesSurviveDeactivationAndAttachHandsThemOverThenPushes()
    {
        fixture.Require();
        var id = await Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(new ClientInformation("{}", null, null));
        var mailbox = Grains.GetGrain<IClientIdGrain>(id);
        for (var i = 0; i < 40; i++)
        {
            Assert.Equal(SendStatus.Queued, (await mailbox.Send(7, $$"""{"n":{{i}}}""")).Status);
        }

        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var observer = new RecordingObserver();
        var session = new SessionRegistration(Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(observer), AckMode: false);
        var queue = await mailbox.Attach(session, Valid);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $$"""{"n":{{i}}}"""), queue.Select(r => r.Payload));
        Assert.Equal(queue.Select(r => r.Seq).Order(), queue.Select(r => r.Seq));

        var pushed = await mailbox.Send(null, "\"live\"");
        Assert.Equal(SendStatus.Online, pushed.Status);
        Assert.Equal(["\"live\""], observer.Delivered.Select(r => r.Payload));
    }

    [Fact]
    public async Task DeletingAClientRemovesEveryRowItHad()
    {
        fixture.Require();
        var client = Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken()));
        var id = await client.Register(new ClientInformation("""{"name":"gone"}""", "gone", null));
        for (var i = 0; i < 5; i++)
        {
            await Grains.GetGrain<IClientIdGrain>(id).Send(null, "1");
        }

        Assert.NotEmpty(await RowsOfAsync(id));

        Assert.Equal(id, await client.Delete());

        Assert.Null(await client.Get());
        Assert.Empty(await RowsOfAsync(id));
    }

    private Task<List<object?[]>> RowsOfAsync(int id) => fixture.Database.QueryAsync(
        "SELECT GrainType FROM GrainState WHERE GrainIdN1 = @id AND (GrainType = 'clientId' OR GrainType LIKE 'queue.%')",
        ("id", (long)id, DbType.Int64));

    private IGrainStorage Storage()
    {
        var silo = Assert.IsType<InProcessSiloHandle>(fixture.Cluster.Primary);
        return silo.SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(Names.Storage);
    }

    /// <summary>A state shape of the test's own, stored through the silo's serializer.</summary>
    public sealed class Probe
    {
        public string? Text { get; set; }

        public int Count { get; set; }
    }

    private sealed class RecordingObserver : ISessionObserver
    {
        private readonly ConcurrentQueue<PendingResponse> _delivered = new();

        public IReadOnlyList<PendingResponse> Delivered => [.. _delivered];

        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout)
        {
            foreach (var response in responses)
            {
                _delivered.Enqueue(response);
            }

            return Task.FromResult(true);
        }

        public Task LoggedOut(string sessionId, string reason) => Task.CompletedTask;
    }
}

public sealed class PostgreSqlStorageTests(PostgreSqlClusterFixture fixture) : ServerStorageTests(fixture), IClassFixture<PostgreSqlClusterFixture>;

public sealed class SqlServerStorageTests(SqlServerClusterFixture fixture) : ServerStorageTests(fixture), IClassFixture<SqlServerClusterFixture>;
