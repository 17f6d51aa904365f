using System.Net;
using System.Text.Json;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

/// <summary>A gateway with the default settings: client sends limited to contacts, presence private.</summary>
public sealed class DefaultGatewayFixture : IAsyncLifetime
{
    public TempDatabase Database { get; } = new();

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await GatewayServer.StartAsync(Database.Path);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class DefaultGatewayCollection : ICollectionFixture<DefaultGatewayFixture>
{
    public const string Name = "default gateway";
}

/// <summary>Who may do what, over real sockets: sends, presence, contacts, tokens.</summary>
[Collection(DefaultGatewayCollection.Name)]
public sealed class PermissionTests(DefaultGatewayFixture fixture)
{
    private Uri Ws => fixture.Server.WebSocketUri;

    [Fact]
    public async Task TheSpecificationsRegisterLoginAndUpdateWorkWithTheDefaults()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "spec", location = "Turin" });

        var logged = await client.RequestAsync("login", new { token });
        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
        Assert.Equal("updated", (await client.RequestAsync("update", new { token, information = new { name = "spec", location = "Milan" } })).Action());

        await using var again = await WsClient.ConnectAsync(Ws);
        var relogged = await again.RequestAsync("login", new { token });
        Assert.Equal("Milan", relogged.Parameters().GetProperty("information").GetProperty("location").GetString());
    }

    [Fact]
    public async Task AClientCannotListWhoIsOnlineButTheAdminCan()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "curious" });
        await client.RequestAsync("login", new { token });

        var refused = await client.RequestAsync("online");

        Assert.Equal("forbidden", refused.ErrorCode());
        Assert.Equal("online", refused.Parameters().GetProperty("request").GetString());
        using var api = new ApiClient(fixture.Server.HttpUri);
        var (status, body) = await api.GetAsync("/api/online");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(id, body.GetProperty("clients").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
    }

    [Fact]
    public async Task ProbingIdsWithSendTellsNothingAboutWhichExist()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, self) = await client.RegisterAsync(new { name = "prober" });
        var others = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            others.Add((await client.RegisterAsync(new { name = $"target-{i}" })).Id);
        }

        var highest = others.Max() + 5;
        var replies = new List<JsonElement>();
        for (var to = 1; to <= highest; to++)
        {
            replies.Add(await client.RequestAsync("send", new { token, to, payload = "x" }));
        }

        // Existing ids (including the prober's own and the three just made) answer exactly as missing ones do.
        Assert.All(replies.Select((r, i) => (Reply: r, To: i + 1)), x =>
        {
            Assert.Equal("not_found", x.Reply.ErrorCode());
            Assert.Equal($"No client has id {x.To}.", x.Reply.Parameters().GetProperty("message").GetString());
        });
        Assert.Contains(self, Enumerable.Range(1, highest));
        using var api = new ApiClient(fixture.Server.HttpUri);
        foreach (var id in others)
        {
            Assert.Equal(0, (await api.GetAsync($"/api/clients/{id}")).Body.GetProperty("queueLength").GetInt32());
        }
    }

    [Fact]
    public async Task LinkedContactsMaySendBothWaysUntilUnlinked()
    {
        await using var a = await WsClient.ConnectAsync(Ws);
        var (tokenA, idA) = await a.RegisterAsync(new { name = "a" });
        var (tokenB, idB) = await a.RegisterAsync(new { name = "b" });
        using var api = new ApiClient(fixture.Server.HttpUri);

        Assert.Equal(HttpStatusCode.NoContent, (await api.SendAsync(HttpMethod.Put, $"/api/clients/{idA}/contacts/{idB}")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await api.SendAsync(HttpMethod.Put, $"/api/clients/{idA}/contacts/{idB}")).Status);

        Assert.Equal("sent", (await a.RequestAsync("send", new { token = tokenA, to = idB, payload = "a to b" })).Action());
        Assert.Equal("sent", (await a.RequestAsync("send", new { token = tokenB, to = idA, payload = "b to a" })).Action());
        var (_, contacts) = await api.GetAsync($"/api/clients/{idB}/contacts");
        Assert.Equal([idA], contacts.GetProperty("contacts").EnumerateArray().Select(e => e.GetInt32()));

        Assert.Equal(HttpStatusCode.NoContent, (await api.SendAsync(HttpMethod.Delete, $"/api/clients/{idB}/contacts/{idA}")).Status);
        Assert.Equal("not_found", (await a.RequestAsync("send", new { token = tokenA, to = idB, payload = "after" })).ErrorCode());
        Assert.Equal("not_found", (await a.RequestAsync("send", new { token = tokenB, to = idA, payload = "after" })).ErrorCode());
        Assert.Empty((await api.GetAsync($"/api/clients/{idA}/contacts")).Body.GetProperty("contacts").EnumerateArray());
    }

    [Fact]
    public async Task LinkingAnIdThatDoesNotExistIsNotFoundAndLinksNothing()
    {
        await using var a = await WsClient.ConnectAsync(Ws);
        var (_, id) = await a.RegisterAsync(new { name = "alone" });
        using var api = new ApiClient(fixture.Server.HttpUri);

        Assert.Equal(HttpStatusCode.NotFound, (await api.SendAsync(HttpMethod.Put, $"/api/clients/{id}/contacts/{int.MaxValue}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await api.SendAsync(HttpMethod.Put, $"/api/clients/{int.MaxValue}/contacts/{id}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/api/clients/{int.MaxValue}/contacts")).Status);
        Assert.Empty((await api.GetAsync($"/api/clients/{id}/contacts")).Body.GetProperty("contacts").EnumerateArray());
        using var anonymous = new ApiClient(fixture.Server.HttpUri, adminKey: null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(HttpMethod.Put, $"/api/clients/{id}/contacts/{id}")).Status);
    }

    [Fact]
    public async Task RotateKillsTheOldTokenAtOnceAndTheSessionGoesOnWithTheNewOne()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (oldToken, id) = await client.RegisterAsync(new { name = "rotating" });
        var (peerToken, peer) = await client.RegisterAsync(new { name = "peer" });
        using var api = new ApiClient(fixture.Server.HttpUri);
        await api.SendAsync(HttpMethod.Put, $"/api/clients/{id}/contacts/{peer}");
        await client.RequestAsync("login", new { token = oldToken });

        var rotated = await client.RequestAsync("rotate", new { token = oldToken });

        Assert.Equal("rotated", rotated.Action());
        var newToken = rotated.Parameters().GetProperty("token").GetString()!;
        Assert.NotEqual(oldToken, newToken);
        Assert.Equal(43, newToken.Length);
        Assert.Equal("invalid_token", (await client.RequestAsync("send", new { token = oldToken, to = peer, payload = 1 })).ErrorCode());
        Assert.Equal("invalid_token", (await client.RequestAsync("update", new { token = oldToken, information = new { } })).ErrorCode());
        Assert.Equal("invalid_token", (await client.RequestAsync("rotate", new { token = oldToken })).ErrorCode());
        Assert.Equal("sent", (await client.RequestAsync("send", new { token = newToken, to = peer, payload = 2 })).Action());

        // Still logged in: a response from the back end is pushed to this socket.
        var (status, _) = await api.PostResponseAsync(id, """{"still":"here"}""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        var push = await client.NextPushAsync();
        Assert.Equal("response", push.Action());
        Assert.Equal("here", push.Parameters().GetProperty("payload").GetProperty("still").GetString());

        await using var other = await WsClient.ConnectAsync(Ws);
        Assert.Equal("invalid_token", (await other.RequestAsync("login", new { token = oldToken })).ErrorCode());
        Assert.Equal(id, (await other.RequestAsync("login", new { token = newToken })).Parameters().GetProperty("id").GetInt32());
        Assert.Equal("sent", (await other.RequestAsync("send", new { token = peerToken, to = id, payload = 3 })).Action());
    }

    [Fact]
    public async Task ASocketThatKeepsSendingWithOneTokenIsRefusedOnceTheTokenDiesOrItsClientIsDeleted()
    {
        await using var sender = await WsClient.ConnectAsync(Ws);
        var (oldToken, id) = await sender.RegisterAsync(new { name = "sending, never logged in" });
        var (_, peer) = await sender.RegisterAsync(new { name = "listener" });
        using var api = new ApiClient(fixture.Server.HttpUri);
        await api.SendAsync(HttpMethod.Put, $"/api/clients/{id}/contacts/{peer}");
        Assert.Equal("sent", (await sender.RequestAsync("send", new { token = oldToken, to = peer, payload = 1 })).Action());
        Assert.Equal("sent", (await sender.RequestAsync("send", new { token = oldToken, to = peer, payload = 2 })).Action());

        await using var owner = await WsClient.ConnectAsync(Ws);
        var newToken = (await owner.RequestAsync("rotate", new { token = oldToken })).Parameters().GetProperty("token").GetString()!;

        Assert.Equal("invalid_token", (await sender.RequestAsync("send", new { token = oldToken, to = peer, payload = 3 })).ErrorCode());
        Assert.Equal("sent", (await sender.RequestAsync("send", new { token = newToken, to = peer, payload = 4 })).Action());
        Assert.Equal("sent", (await sender.RequestAsync("send", new { token = newToken, to = peer, payload = 5 })).Action());
        Assert.Equal("invalid_token", (await sender.RequestAsync("send", new { token = oldToken, to = peer, payload = 6 })).ErrorCode());

        Assert.Equal("deleted", (await owner.RequestAsync("delete", new { token = newToken })).Action());

        Assert.Equal("invalid_token", (await sender.RequestAsync("send", new { token = newToken, to = peer, payload = 7 })).ErrorCode());
    }

    [Fact]
    public async Task RotatingFromAnotherSocketEndsTheSessionThatUsedTheOldToken()
    {
        await using var device = await WsClient.ConnectAsync(Ws);
        var (oldToken, id) = await device.RegisterAsync(new { name = "leaked" });
        await device.RequestAsync("login", new { token = oldToken });

        await using var owner = await WsClient.ConnectAsync(Ws);
        var newToken = (await owner.RequestAsync("rotate", new { token = oldToken })).Parameters().GetProperty("token").GetString()!;

        var told = await device.NextPushAsync();
        Assert.Equal("loggedOut", told.Action());
        Assert.Equal("revoked", told.Parameters().GetProperty("reason").GetString());
        Assert.Equal("not_logged_in", (await device.RequestAsync("logout")).ErrorCode());
        Assert.Equal(id, (await owner.RequestAsync("login", new { token = newToken })).Parameters().GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task RevokeLogsTheSessionOutAndIssuingGivesAWorkingTokenOnce()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "revoked" });
        await client.RequestAsync("login", new { token });
        using var api = new ApiClient(fixture.Server.HttpUri);
        await api.PostResponseAsync(id, "1");
        Assert.Equal("response", (await client.NextPushAsync()).Action());

        Assert.Equal(HttpStatusCode.NoContent, (await api.SendAsync(HttpMethod.Post, $"/api/clients/{id}/revoke")).Status);

        var told = await client.NextPushAsync();
        Assert.Equal("loggedOut", told.Action());
        Assert.Equal("revoked", told.Parameters().GetProperty("reason").GetString());
        Assert.Equal("invalid_token", (await client.RequestAsync("login", new { token })).ErrorCode());

        // The client keeps its id and what waits for it.
        var (queued, _) = await api.PostResponseAsync(id, """{"kept":true}""");
        Assert.Equal(HttpStatusCode.Accepted, queued);
        var (issued, body) = await api.SendAsync(HttpMethod.Post, $"/api/clients/{id}/token");
        Assert.Equal(HttpStatusCode.OK, issued);
        var fresh = body.GetProperty("token").GetString()!;
        var logged = await client.RequestAsync("login", new { token = fresh });
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
        Assert.True(logged.Parameters().GetProperty("queue")[0].GetProperty("payload").GetProperty("kept").GetBoolean());

        var (again, second) = await api.SendAsync(HttpMethod.Post, $"/api/clients/{id}/token");
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.NotEqual(fresh, second.GetProperty("token").GetString());
        Assert.Equal("invalid_token", (await client.RequestAsync("update", new { token = fresh, information = new { } })).ErrorCode());
        Assert.Equal(HttpStatusCode.NotFound, (await api.SendAsync(HttpMethod.Post, $"/api/clients/{int.MaxValue}/revoke")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await api.SendAsync(HttpMethod.Post, "/api/clients/0/token")).Status);
    }
}

/// <summary>Settings that change who may send, each on a gateway of its own.</summary>
public sealed class SendPolicyTests
{
    [Fact]
    public async Task WithClientSendNoneASendIsForbiddenAndTheBackEndStillDelivers()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string> { ["Protocol:ClientSend"] = "none" });
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "quiet" });
        await client.RequestAsync("login", new { token });

        var refused = await client.RequestAsync("send", new { token, to = id, payload = 1 });

        Assert.Equal("forbidden", refused.ErrorCode());
        using var api = new ApiClient(server.HttpUri);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(id, "2")).Status);
        Assert.Equal(2, (await client.NextPushAsync()).Parameters().GetProperty("payload").GetInt32());
    }

    [Fact]
    public async Task DuringAnAdminKeyRolloverTheNewAndThePreviousKeyWorkAndNoOther()
    {
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Api:AdminKey"] = "the-new-admin-key",
            ["Api:PreviousAdminKey"] = GatewayServer.AdminKey,
        });

        using var previous = new ApiClient(server.HttpUri);
        using var current = new ApiClient(server.HttpUri, adminKey: "the-new-admin-key");
        using var other = new ApiClient(server.HttpUri, adminKey: "the-new-admin-kez");
        Assert.Equal(HttpStatusCode.OK, (await previous.GetAsync("/api/online")).Status);
        Assert.Equal(HttpStatusCode.OK, (await current.GetAsync("/api/online")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await other.GetAsync("/api/online")).Status);
    }

    [Fact]
    public async Task ClientsFillingAQueueLeaveRoomForTheBackEnd()
    {
        using var database = new TempDatabase();

        // A bound of 20: each sender may queue 2, and clients together 18, leaving 2 for back ends.
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:ClientSend"] = "any",
            ["ClientStore:MaxQueuedResponses"] = "20",
        });
        await using var socket = await WsClient.ConnectAsync(server.WebSocketUri);
        var (_, victim) = await socket.RegisterAsync(new { name = "offline victim" });
        var accepted = 0;
        for (var attacker = 0; attacker < 12; attacker++)
        {
            var (token, _) = await socket.RegisterAsync(new { name = $"attacker-{attacker}" });
            for (var i = 0; i < 5; i++)
            {
                var reply = await socket.RequestAsync("send", new { token, to = victim, payload = 1 });
                if (reply.Action() == "sent")
                {
                    accepted++;
                }
                else
                {
                    Assert.Equal("queue_full", reply.ErrorCode());
                }
            }
        }

        Assert.Equal(18, accepted);
        using var api = new ApiClient(server.HttpUri);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(victim, """{"from":"the back end"}""")).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(victim, """{"from":"the back end"}""")).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await api.PostResponseAsync(victim, "3")).Status);
    }
}
