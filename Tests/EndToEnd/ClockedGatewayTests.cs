using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

/// <summary>Token lifetimes and the expiry of clients that never log in, over real sockets, on a gateway whose clock is a <see cref="FakeTimeProvider"/>.</summary>
public sealed class ClockedGatewayTests
{
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["ClientStore:TokenLifetime"] = "01:00:00",
        ["ClientStore:ExpireNeverLoggedInAfter"] = "02:00:00",
        ["ClientStore:ExpirySweepInterval"] = "00:01:00",
    };

    [Fact]
    public async Task ATokenPastItsLifetimeIsRefusedAndRotatingOrIssuingGivesAFreshOne()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, Settings, clock);
        using var api = new ApiClient(server.HttpUri);
        string first;
        int id;
        await using (var client = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            (first, id) = await client.RegisterAsync(new { name = "short-lived" });
            Assert.Equal("logged", (await client.RequestAsync("login", new { token = first })).Action());
        }

        // Each step opens a new socket: an hour on the fake clock is past the idle timeout of the last one.
        clock.Advance(TimeSpan.FromMinutes(50));
        string second;
        await using (var client = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            second = (await client.RequestAsync("rotate", new { token = first })).Parameters().GetProperty("token").GetString()!;
        }

        clock.Advance(TimeSpan.FromMinutes(20));
        await using (var client = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            Assert.Equal("logged", (await client.RequestAsync("login", new { token = second })).Action());
        }

        clock.Advance(TimeSpan.FromMinutes(50));
        await using (var client = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            Assert.Equal("invalid_token", (await client.RequestAsync("login", new { token = second })).ErrorCode());
            Assert.Equal("invalid_token", (await client.RequestAsync("update", new { token = second, information = new { } })).ErrorCode());
            Assert.Equal("invalid_token", (await client.RequestAsync("rotate", new { token = second })).ErrorCode());
            Assert.Equal(HttpStatusCode.OK, (await api.GetAsync($"/api/clients/{id}")).Status);

            var (status, issued) = await api.SendAsync(HttpMethod.Post, $"/api/clients/{id}/token");
            Assert.Equal(HttpStatusCode.OK, status);
            var third = issued.GetProperty("token").GetString()!;
            Assert.Equal(id, (await client.RequestAsync("login", new { token = third })).Parameters().GetProperty("id").GetInt32());
        }
    }

    [Fact]
    public async Task AClientThatNeverLoggedInIsSweptAwayAndOneThatDidStays()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, Settings, clock);
        using var api = new ApiClient(server.HttpUri);
        string idleToken;
        int idle, active;
        await using (var client = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            (idleToken, idle) = await client.RegisterAsync(new { name = "never logs in" });
            string activeToken;
            (activeToken, active) = await client.RegisterAsync(new { name = "logs in once" });
            Assert.Equal("logged", (await client.RequestAsync("login", new { token = activeToken })).Action());
        }

        // Every silo's sweep ticks on the fake clock; a tick may come before its timer is armed, so tick until done.
        clock.Advance(TimeSpan.FromHours(2));
        for (var tick = 0; tick < 100 && (await api.GetAsync($"/api/clients/{idle}")).Status == HttpStatusCode.OK; tick++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/api/clients/{idle}")).Status);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync($"/api/clients/{active}")).Status);
        await using var late = await WsClient.ConnectAsync(server.WebSocketUri);
        Assert.Equal("invalid_token", (await late.RequestAsync("login", new { token = idleToken })).ErrorCode());
    }
}
