using System.Collections.Concurrent;
using Grains.Interfaces;
using Orleans.Runtime;
using Tests.Infrastructure;

namespace Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class ClientGrainTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Silos.Grains;

    private static ClientInformation Info(string json, string? name = null, string? location = null) => new(json, name, location);

    [Fact]
    public async Task RegisterStoresTheClientUnderTheDigestOfItsToken()
    {
        var token = TokenDigest.NewToken();
        var info = Info("""{"name":"probe","location":"Turin","n":1.50,"z":[1,2]}""", "probe", "Turin");

        var id = await Grains.GetGrain<IClientGrain>(TokenDigest.Of(token)).Register(info);

        var snapshot = await Grains.GetGrain<IClientGrain>(TokenDigest.Of(token)).Get();
        Assert.NotNull(snapshot);
        Assert.Equal(id, snapshot.Id);
        Assert.Equal(info, snapshot.Information);
        Assert.Equal(TokenDigest.Of(token), await Grains.GetGrain<IClientIdGrain>(id).GetDigest());
        Assert.DoesNotContain(token, fixture.Database.Snapshot(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DigestIsSha256OfTheTokenInBase64Url()
    {
        Assert.Equal("LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", TokenDigest.Of("foo"));
        var token = TokenDigest.NewToken();
        Assert.Equal(43, token.Length);
        Assert.DoesNotContain('=', token);
        Assert.NotEqual(token, TokenDigest.NewToken());
    }

    [Fact]
    public async Task UnknownTokenIsNotRegisteredAndWritesNothing()
    {
        var before = fixture.Database.Snapshot();

        var grain = Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken()));
        Assert.Null(await grain.Get());
        Assert.Null(await grain.Update(Info("{}")));

        Assert.Equal(before, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task RegisteringTheSameDigestTwiceIsRefused()
    {
        var grain = Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken()));
        await grain.Register(Info("{}"));

        await Assert.ThrowsAsync<InvalidOperationException>(() => grain.Register(Info("{}")));
    }

    [Fact]
    public async Task UpdateReplacesTheInformationAndKeepsIdAndCreationTime()
    {
        var grain = Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken()));
        var id = await grain.Register(Info("""{"name":"a"}""", "a"));
        var created = (await grain.Get())!.CreatedAt;

        var updated = await grain.Update(Info("""{"location":"Oslo","extra":{"k":true}}""", null, "Oslo"));

        Assert.NotNull(updated);
        Assert.Equal(id, updated.Id);
        Assert.Equal(created, updated.CreatedAt);
        Assert.True(updated.UpdatedAt >= created);
        Assert.Equal(Info("""{"location":"Oslo","extra":{"k":true}}""", null, "Oslo"), updated.Information);
    }

    [Fact]
    public async Task StateSurvivesDeactivation()
    {
        var digest = TokenDigest.Of(TokenDigest.NewToken());
        var info = Info("""{ "name" : "kept",  "big": 12345678901234567890, "order": {"b":1,"a":2} }""", "kept");
        var id = await Grains.GetGrain<IClientGrain>(digest).Register(info);

        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var snapshot = await Grains.GetGrain<IClientGrain>(digest).Get();
        Assert.NotNull(snapshot);
        Assert.Equal(id, snapshot.Id);
        Assert.Equal(info.Json, snapshot.Information.Json);
    }

    [Fact]
    public async Task FiveHundredConcurrentRegistrationsOverTwoSilosNeverShareAnId()
    {
        var digests = Enumerable.Range(0, 500).Select(_ => TokenDigest.Of(TokenDigest.NewToken())).ToArray();

        var ids = await Task.WhenAll(digests.Select(d => Grains.GetGrain<IClientGrain>(d).Register(Info("{}"))));

        Assert.Equal(500, ids.Distinct().Count());
        Assert.All(ids, id => Assert.True(id > 0));
        var owners = await Task.WhenAll(ids.Select(id => Grains.GetGrain<IClientIdGrain>(id).GetDigest()));
        Assert.Equal(digests, owners);
    }

    [Fact]
    public async Task IdsIssuedOnBothSilosComeFromDisjointBlocks()
    {
        // Many calls spread over both silos' issuers; the blocks they draw on never overlap.
        var seen = new ConcurrentBag<int>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 300), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = TestContext.Current.CancellationToken }, async (_, _) =>
            seen.Add(await Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(Info("{}"))));

        Assert.Equal(seen.Count, seen.Distinct().Count());
    }

    [Fact]
    public async Task IdIndexRefusesToPointAnIdAtASecondDigest()
    {
        var index = Grains.GetGrain<IClientIdGrain>(int.MaxValue - 7);
        await index.Assign("first");
        await index.Assign("first");

        await Assert.ThrowsAsync<InvalidOperationException>(() => index.Assign("second"));
        await index.Release("second");
        Assert.Equal("first", await index.GetDigest());
        await index.Release("first");
        Assert.Null(await index.GetDigest());
    }
}
