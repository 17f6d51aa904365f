using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.TestingHost;
using Tests.Infrastructure;

namespace Tests.Grains;

/// <summary>
/// A one-silo cluster whose grains and expiry sweep read a <see cref="FakeTimeProvider"/>, with token
/// lifetimes and the expiry of clients that never logged in turned on.
/// </summary>
public sealed class ClockedClusterFixture : IAsyncLifetime
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);

    public static readonly TimeSpan ExpireAfter = TimeSpan.FromHours(2);

    public static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    private readonly TempDatabase _database = new();

    /// <summary>The one clock of this cluster's silos (in-process silos share this static).</summary>
    public static FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    public SqliteTestCluster Silos { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Silos = await SqliteTestCluster.StartAsync(_database.Path, silos: 1, Clock, new Dictionary<string, string>
        {
            ["ClientStore:TokenLifetime"] = Lifetime.ToString(),
            ["ClientStore:ExpireNeverLoggedInAfter"] = ExpireAfter.ToString(),
            ["ClientStore:ExpirySweepInterval"] = SweepInterval.ToString(),
        });

    public async ValueTask DisposeAsync()
    {
        await Silos.DisposeAsync();
        _database.Dispose();
    }
}

/// <summary>Token lifetimes and the expiry sweep, driven by a fake clock.</summary>
public sealed class ClockedGrainTests(ClockedClusterFixture fixture) : IClassFixture<ClockedClusterFixture>
{
    private IGrainFactory Grains => fixture.Silos.Grains;

    private static FakeTimeProvider Clock => ClockedClusterFixture.Clock;

    [Fact]
    public async Task ATokenOlderThanItsLifetimeFailsAndRotatingRenewsIt()
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        var id = await Grains.GetGrain<IClientGrain>(digest).Register(new ClientInformation("{}", null, null));

        // Logged in once, so the expiry sweep that the clock also drives leaves it alone.
        await Grains.GetGrain<IClientIdGrain>(id).Attach(
            new SessionRegistration("s-" + Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(new NoObserver()), AckMode: false),
            TimeSpan.FromMinutes(5));
        Clock.Advance(ClockedClusterFixture.Lifetime - TimeSpan.FromMinutes(1));
        var renewed = TokenDigest.Of(TokenDigest.NewToken());
        Assert.Equal(id, await Grains.GetGrain<IClientGrain>(digest).Rotate(renewed, null, evenIfExpired: false));

        Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(renewed).Get())!.Id);

        Clock.Advance(ClockedClusterFixture.Lifetime);
        Assert.Null(await Grains.GetGrain<IClientGrain>(renewed).Get());
        Assert.Null(await Grains.GetGrain<IClientGrain>(renewed).Update(new ClientInformation("{}", null, null)));
        Assert.Null(await Grains.GetGrain<IClientGrain>(renewed).Rotate(TokenDigest.Of(TokenDigest.NewToken()), null, evenIfExpired: false));
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(renewed).Read())!.Id);

        // An operator can still issue a new token for it.
        var issued = TokenDigest.Of(TokenDigest.NewToken());
        Assert.Equal(id, await Grains.GetGrain<IClientGrain>(renewed).Rotate(issued, null, evenIfExpired: true));
        Assert.Equal(id, (await Grains.GetGrain<IClientGrain>(issued).Get())!.Id);
    }

    [Fact]
    public async Task TheSweepDeletesOldClientsThatNeverLoggedInAndKeepsTheRest()
    {
        var idle = await RegisterAsync();
        var active = await RegisterAsync();
        await Grains.GetGrain<IClientIdGrain>(active.Id).Attach(
            new SessionRegistration("s-" + Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(new NoObserver()), AckMode: false),
            TimeSpan.FromMinutes(5));
        Clock.Advance(ClockedClusterFixture.ExpireAfter - ClockedClusterFixture.SweepInterval);
        var young = await RegisterAsync();

        // Each silo's sweep service ticks on the fake clock; a tick may land before its timer is armed, so tick until done.
        for (var tick = 0; tick < 100 && await Grains.GetGrain<IClientGrain>(idle.Digest).Read() is not null; tick++)
        {
            Clock.Advance(ClockedClusterFixture.SweepInterval);
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Null(await Grains.GetGrain<IClientGrain>(idle.Digest).Read());
        Assert.False((await Grains.GetGrain<IClientIdGrain>(idle.Id).Status()).Registered);
        Assert.NotNull(await Grains.GetGrain<IClientGrain>(active.Digest).Read());
        Assert.NotNull(await Grains.GetGrain<IClientGrain>(young.Digest).Read());
        Assert.True((await Grains.GetGrain<IClientIdGrain>(young.Id).Registration()).AwaitingFirstLogin);
        Assert.False((await Grains.GetGrain<IClientIdGrain>(active.Id).Registration()).AwaitingFirstLogin);
    }

    [Fact]
    public async Task TheSweepGoesOnFromItsStoredPlaceAndStartsOverAfterTheLastId()
    {
        var sweeper = Grains.GetGrain<IExpirySweeperGrain>(Names.ExpirySweeperKey);
        var client = await RegisterAsync();
        var longAgo = Clock.GetUtcNow() - TimeSpan.FromDays(1);

        // Batches of 200 over a high-water of 1,000 (one id block): a full round is five batches.
        var deleted = 0;
        for (var batch = 0; batch < 5; batch++)
        {
            deleted += await sweeper.SweepBatch(longAgo);
        }

        Assert.Equal(0, deleted);
        Assert.NotNull(await Grains.GetGrain<IClientGrain>(client.Digest).Read());
        var everything = Clock.GetUtcNow() + TimeSpan.FromDays(1);
        for (var batch = 0; batch < 5 && await Grains.GetGrain<IClientGrain>(client.Digest).Read() is not null; batch++)
        {
            await sweeper.SweepBatch(everything);
        }

        Assert.Null(await Grains.GetGrain<IClientGrain>(client.Digest).Read());
    }

    private async Task<(int Id, string Digest)> RegisterAsync()
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        return (await Grains.GetGrain<IClientGrain>(digest).Register(new ClientInformation("{}", null, null)), digest);
    }

    private sealed class NoObserver : ISessionObserver
    {
        public Task<bool> Deliver(string sessionId, System.Collections.Immutable.ImmutableArray<PendingResponse> responses, TimeSpan timeout) => Task.FromResult(true);

        public Task LoggedOut(string sessionId, string reason) => Task.CompletedTask;
    }
}
