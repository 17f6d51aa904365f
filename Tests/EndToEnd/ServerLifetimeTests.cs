using System.Net.WebSockets;
using Grains.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

public sealed class ServerLifetimeTests
{
    [Fact]
    public async Task LoginAfterAWholeServerRestartReturnsTheUpdatedInformation()
    {
        using var database = new TempDatabase();
        string token;
        int id;
        await using (var first = await GatewayServer.StartAsync(database.Path))
        {
            await using var client = await WsClient.ConnectAsync(first.WebSocketUri);
            (token, id) = await client.RegisterAsync(new { name = "first", location = "Turin" });
            Assert.Equal("updated", (await client.RequestAsync("update", new { token, information = new { name = "second", location = "Milan" } })).Action());
        }

        await using var second = await GatewayServer.StartAsync(database.Path);
        await using var again = await WsClient.ConnectAsync(second.WebSocketUri);
        var logged = await again.RequestAsync("login", new { token });

        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
        Assert.Equal("""{"name":"second","location":"Milan"}""", logged.Parameters().GetProperty("information").GetRawText());
        var (_, next) = await again.RegisterAsync(new { name = "third" });
        Assert.NotEqual(id, next);
    }

    [Fact]
    public async Task ShutdownClosesEverySocketWithGoingAway()
    {
        using var database = new TempDatabase();
        var server = await GatewayServer.StartAsync(database.Path);
        var clients = new List<WsClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var client = await WsClient.ConnectAsync(server.WebSocketUri);
                var (token, _) = await client.RegisterAsync(new { name = $"c{i}" });
                Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());
                clients.Add(client);
            }

            var receiving = clients.Select(c => c.ReceiveTextAsync()).ToArray();
            await server.StopAsync();

            Assert.All(await Task.WhenAll(receiving), Assert.Null);
            Assert.All(clients, c => Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, c.Socket.CloseStatus));
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task ClosingTheSocketRemovesItsDirectoryEntry()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        var grains = server.Services.GetRequiredService<IGrainFactory>();
        int id;
        await using (var client = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            string token;
            (token, id) = await client.RegisterAsync(new { name = "online" });
            await client.RequestAsync("login", new { token });
            Assert.Contains(id, await OnlineIdsAsync(grains));
        }

        // The server notices the close on its own schedule; poll, bounded.
        for (var attempt = 0; attempt < 100 && (await OnlineIdsAsync(grains)).Contains(id); attempt++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.DoesNotContain(id, await OnlineIdsAsync(grains));
    }

    [Fact]
    public async Task LogoutRemovesTheDirectoryEntryAndKeepsTheSocketOpen()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path);
        var grains = server.Services.GetRequiredService<IGrainFactory>();
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "leaving" });

        Assert.Equal("not_logged_in", (await client.RequestAsync("logout")).ErrorCode());
        await client.RequestAsync("login", new { token });
        var loggedOut = await client.RequestAsync("logout");

        Assert.Equal("loggedOut", loggedOut.Action());
        Assert.Equal("logout", loggedOut.Parameters().GetProperty("reason").GetString());
        Assert.DoesNotContain(id, await OnlineIdsAsync(grains));
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
    }

    private static async Task<int[]> OnlineIdsAsync(IGrainFactory grains)
    {
        var shards = await Task.WhenAll(Enumerable.Range(0, OnlineDirectory.ShardCount)
            .Select(s => grains.GetGrain<IOnlineDirectoryGrain>(s).List()));
        return [.. shards.SelectMany(s => s).Select(e => e.ClientId)];
    }
}
