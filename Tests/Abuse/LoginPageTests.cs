using System.Net;
using System.Text.Json;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// A long queue is delivered in pages: <c>logged</c> carries at most <c>Protocol:LoginPageBytes</c> (64 KiB) of the
/// oldest responses, and the rest follows at once as <c>response</c> pushes, in order, before any live push.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class LoginPageTests(GatewayFixture fixture)
{
    private const int Queued = 63;

    [Fact]
    public async Task AClientThatKnowsOnlyTheSpecificationGetsALongQueueInOrderAndThenItIsGone()
    {
        var (token, id, seqs) = await QueueAsync();
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);

        var logged = await client.RequestAsync("login", new { token });
        var page = logged.Parameters().GetProperty("queue").EnumerateArray().ToArray();
        Assert.InRange(page.Length, 1, 4);
        Assert.True(logged.GetRawText().Length < 70 * 1024, $"'logged' is {logged.GetRawText().Length} characters");

        // A response sent now is pushed behind the whole queue, never among it.
        using var api = new ApiClient(fixture.Server.HttpUri);
        var live = await api.PostResponseAsync(id, "\"live\"");
        Assert.Equal(HttpStatusCode.Accepted, live.Status);
        var received = page.Select(r => r.GetProperty("seq").GetInt64()).ToList();
        while (received.Count < Queued + 1)
        {
            var push = await client.NextPushAsync();
            Assert.Equal("response", push.Action());
            received.Add(push.Parameters().GetProperty("seq").GetInt64());
        }

        Assert.Equal([.. seqs, live.Body.GetProperty("seq").GetInt64()], received);
        await api.WaitForQueueLengthAsync(id, 0);
    }

    [Fact]
    public async Task InAckModeThePagesStayQueuedUntilAcknowledged()
    {
        var (token, id, seqs) = await QueueAsync();
        await using var client = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);

        var received = (await client.RequestAsync("login", new { token, ack = true })).Parameters().GetProperty("queue")
            .EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()).ToList();
        while (received.Count < Queued)
        {
            received.Add((await client.NextPushAsync()).Parameters().GetProperty("seq").GetInt64());
        }

        Assert.Equal(seqs, received);
        using var api = new ApiClient(fixture.Server.HttpUri);
        Assert.Equal(Queued, (await api.GetAsync($"/api/clients/{id}")).Body.GetProperty("queueLength").GetInt32());
        Assert.Equal("acked", (await client.RequestAsync("ack", new { upTo = seqs[^1] })).Action());
        await api.WaitForQueueLengthAsync(id, 0);
    }

    [Fact]
    public async Task OneResponseLargerThanAPageStillGoesInTheLoggedReply()
    {
        await using var server = await AbuseServer.StartAsync(new Dictionary<string, string> { ["Protocol:LoginPageBytes"] = "1024" });
        using var api = new ApiClient(server.Server.HttpUri);
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var (token, id) = await client.RegisterAsync(new { name = "big" });
        var big = JsonSerializer.Serialize(new string('b', 4000));
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(id, big)).Status);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(id, "2")).Status);

        var page = (await client.RequestAsync("login", new { token })).Parameters().GetProperty("queue");

        Assert.Equal(big, page[0].GetProperty("payload").GetRawText());
        Assert.Equal(1, page.GetArrayLength());
        Assert.Equal("2", (await client.NextPushAsync()).Parameters().GetProperty("payload").GetRawText());
    }

    /// <summary>A fresh client with a queue of about 1 MiB: 63 responses of 16 KB, and their seqs in order.</summary>
    private async Task<(string Token, int Id, List<long> Seqs)> QueueAsync()
    {
        await using var setup = await WsClient.ConnectAsync(fixture.Server.WebSocketUri);
        var (token, id) = await setup.RegisterAsync(new { name = "long queue" });
        using var api = new ApiClient(fixture.Server.HttpUri);
        var seqs = new List<long>();
        for (var i = 0; i < Queued; i++)
        {
            var (status, body) = await api.PostResponseAsync(id, JsonSerializer.Serialize(new { i, pad = new string('p', 16_000) }));
            Assert.Equal(HttpStatusCode.Accepted, status);
            seqs.Add(body.GetProperty("seq").GetInt64());
        }

        return (token, id, seqs);
    }
}
