using Grains.Interfaces;
using Tests.Infrastructure;

namespace Tests.Grains;

public sealed class RestartTests
{
    [Fact]
    public async Task IdsNeverRepeatAcrossAClusterRestart()
    {
        using var database = new TempDatabase();
        int[] before;
        string digest = TokenDigest.Of(TokenDigest.NewToken());
        await using (var first = await SqliteTestCluster.StartAsync(database.Path, silos: 1))
        {
            var registered = await first.Grains.GetGrain<IClientGrain>(digest).Register(new ClientInformation("""{"name":"x"}""", "x", null));
            before = [registered, .. await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
                first.Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(new ClientInformation("{}", null, null))))];
        }

        await using var second = await SqliteTestCluster.StartAsync(database.Path, silos: 1);
        var after = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
            second.Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(new ClientInformation("{}", null, null))));

        Assert.Empty(before.Intersect(after));
        Assert.True(after.Min() > before.Max());
        var kept = await second.Grains.GetGrain<IClientGrain>(digest).Get();
        Assert.Equal("""{"name":"x"}""", kept?.Information.Json);
    }
}
