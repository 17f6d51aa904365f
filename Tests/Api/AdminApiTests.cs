using System.Net;
using System.Text.Json;
using Tests.Infrastructure;

namespace Tests.Api;

[Collection(OperatorsCollection.Name)]
public sealed class AdminApiTests(OperatorsFixture fixture)
{
    private Uri Ws => fixture.Server.WebSocketUri;

    [Fact]
    public async Task ListingPagesRegisteredClientsByIdAndSkipsDeletedOnes()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (_, first) = await client.RegisterAsync(new { name = "listed-1" });
        var (_, second) = await client.RegisterAsync(new { name = "listed-2" });
        var (_, third) = await client.RegisterAsync(new { name = "listed-3" });
        using var http = fixture.Http();
        Assert.Equal(HttpStatusCode.NoContent, (await OperatorsFixture.CallAsync(http, HttpMethod.Delete, $"/api/clients/{second}")).Status);

        var (status, _, page) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients?after={first - 1}&limit=1");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal([first], Ids(page));
        Assert.Equal(first, page.GetProperty("next").GetInt32());

        // Follow the pages (bounded) until the third client shows up.
        var seen = new List<int>();
        var after = first;
        for (var pages = 0; pages < 50 && !seen.Contains(third); pages++)
        {
            (status, _, page) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients?after={after}&limit=2");
            Assert.Equal(HttpStatusCode.OK, status);
            seen.AddRange(Ids(page));
            if (page.GetProperty("next").ValueKind == JsonValueKind.Null)
            {
                break;
            }

            after = page.GetProperty("next").GetInt32();
        }

        Assert.Contains(third, seen);
        Assert.DoesNotContain(second, seen);
        Assert.Equal(seen.Order(), seen);
        Assert.All(seen, id => Assert.True(id > first));
    }

    [Fact]
    public async Task ListingRefusesALimitOutOfRangeWithAProblem()
    {
        using var http = fixture.Http();

        var (status, type, body) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, "/api/clients?limit=0");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("application/problem+json", type);
        Assert.Equal("bad_request", body.GetProperty("code").GetString());
        Assert.Equal(400, body.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task DeletingAClientLogsItsSessionOutAndForgetsIt()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "doomed" });
        await client.RequestAsync("login", new { token });
        using var http = fixture.Http();

        Assert.Equal(HttpStatusCode.NoContent, (await OperatorsFixture.CallAsync(http, HttpMethod.Delete, $"/api/clients/{id}")).Status);

        var told = await client.NextPushAsync();
        Assert.Equal("loggedOut", told.Action());
        Assert.Equal("deleted", told.Parameters().GetProperty("reason").GetString());
        Assert.Equal("invalid_token", (await client.RequestAsync("login", new { token })).ErrorCode());
        var (status, type, body) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients/{id}");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("application/problem+json", type);
        Assert.Equal("not_found", body.GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await OperatorsFixture.CallAsync(http, HttpMethod.Delete, $"/api/clients/{id}")).Status);
    }

    [Fact]
    public async Task EndingASessionTellsTheClientItWasKickedAndKeepsItsToken()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "kicked" });
        await client.RequestAsync("login", new { token });
        using var http = fixture.Http();

        var (status, _, body) = await OperatorsFixture.CallAsync(http, HttpMethod.Delete, $"/api/clients/{id}/session");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("ended").GetBoolean());
        var told = await client.NextPushAsync();
        Assert.Equal("loggedOut", told.Action());
        Assert.Equal("kicked", told.Parameters().GetProperty("reason").GetString());
        Assert.Equal("not_logged_in", (await client.RequestAsync("logout")).ErrorCode());

        // Nothing live any more: nothing to end. The token still logs in.
        (status, _, body) = await OperatorsFixture.CallAsync(http, HttpMethod.Delete, $"/api/clients/{id}/session");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.GetProperty("ended").GetBoolean());
        Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());
        Assert.Equal(HttpStatusCode.NotFound, (await OperatorsFixture.CallAsync(http, HttpMethod.Delete, "/api/clients/999999/session")).Status);
    }

    [Fact]
    public async Task ReadingTheQueuePagesItWithoutRemovingAndPurgingEmptiesIt()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "queued" });
        using var http = fixture.Http();
        for (var i = 1; i <= 3; i++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await OperatorsFixture.CallAsync(http, HttpMethod.Post, $"/api/clients/{id}/responses", $$"""{"n":{{i}}}""")).Status);
        }

        var (status, _, first) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients/{id}/queue?limit=2");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal([1, 2], Payloads(first));
        Assert.False(first.GetProperty("responses")[0].TryGetProperty("from", out _), "A back end's response has no 'from', as in the protocol.");
        var next = first.GetProperty("next").GetInt64();
        var (_, _, second) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients/{id}/queue?after={next}&limit=2");
        Assert.Equal([3], Payloads(second));
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next").ValueKind);
        Assert.Equal(3, (await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients/{id}")).Body.GetProperty("queueLength").GetInt32());

        var (purged, _, removed) = await OperatorsFixture.CallAsync(http, HttpMethod.Delete, $"/api/clients/{id}/queue");

        Assert.Equal(HttpStatusCode.OK, purged);
        Assert.Equal(3, removed.GetProperty("removed").GetInt32());
        Assert.Empty(Payloads((await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients/{id}/queue")).Body));
        Assert.Equal(0, (await OperatorsFixture.CallAsync(http, HttpMethod.Get, $"/api/clients/{id}")).Body.GetProperty("queueLength").GetInt32());

        // What was purged never reaches the client; what comes after does.
        Assert.Empty((await client.RequestAsync("login", new { token })).Parameters().GetProperty("queue").EnumerateArray());
        await OperatorsFixture.CallAsync(http, HttpMethod.Post, $"/api/clients/{id}/responses", """{"n":4}""");
        var push = await client.NextPushAsync();
        Assert.Equal(4, push.Parameters().GetProperty("payload").GetProperty("n").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, (await OperatorsFixture.CallAsync(http, HttpMethod.Get, "/api/clients/999999/queue")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await OperatorsFixture.CallAsync(http, HttpMethod.Delete, "/api/clients/999999/queue")).Status);
    }

    [Fact]
    public async Task StatsCountTheSiloTheFrontendAndItsSessions()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, _) = await client.RegisterAsync(new { name = "counted" });
        await client.RequestAsync("login", new { token });
        using var http = fixture.Http();

        var (status, _, stats) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, "/api/stats");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, stats.GetProperty("silos").GetInt32());
        Assert.Equal(1, stats.GetProperty("frontends").GetInt32());
        Assert.True(stats.GetProperty("sessions").GetInt32() >= 1);
        Assert.True(stats.GetProperty("activations").GetInt32() >= 1);
        var frontend = stats.GetProperty("frontend");
        Assert.True(frontend.GetProperty("connections").GetInt32() >= 1);
        Assert.True(frontend.GetProperty("sessions").GetInt32() >= 1);
    }

    [Fact]
    public async Task ErrorsTheFrameworkAnswersAreProblemsToo()
    {
        using var http = fixture.Http();
        using var anonymous = fixture.Http(adminKey: null);

        var (unauthorized, type, body) = await OperatorsFixture.CallAsync(anonymous, HttpMethod.Get, "/api/stats");
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized);
        Assert.Equal("application/problem+json", type);
        Assert.Equal("unauthorized", body.GetProperty("code").GetString());

        var (badQuery, badType, badBody) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, "/api/clients?after=x");
        Assert.Equal(HttpStatusCode.BadRequest, badQuery);
        Assert.Equal("application/problem+json", badType);
        Assert.Equal("bad_request", badBody.GetProperty("code").GetString());

        var (noRoute, noType, noBody) = await OperatorsFixture.CallAsync(http, HttpMethod.Get, "/api/clients/not-a-number");
        Assert.Equal(HttpStatusCode.NotFound, noRoute);
        Assert.Equal("application/problem+json", noType);
        Assert.Equal("not_found", noBody.GetProperty("code").GetString());
    }

    private static int[] Ids(JsonElement page) =>
        [.. page.GetProperty("clients").EnumerateArray().Select(c => c.GetProperty("id").GetInt32())];

    private static int[] Payloads(JsonElement page) =>
        [.. page.GetProperty("responses").EnumerateArray().Select(r => r.GetProperty("payload").GetProperty("n").GetInt32())];
}
