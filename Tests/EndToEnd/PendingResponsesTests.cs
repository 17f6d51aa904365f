using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using ClientManagement.Client;
using Tests.ClientLibrary;
using Tests.Infrastructure;

namespace Tests.EndToEnd;

[Collection(GatewayCollection.Name)]
public sealed class PendingResponsesTests(GatewayFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Uri Ws => fixture.Server.WebSocketUri;

    [Fact]
    public async Task AnOfflineClientGetsItsQueueInOrderAtLoginAndThenItIsGone()
    {
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        var to = await sender.RegisterAsync(new { name = "recipient" }, Ct);

        var seqs = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            var sent = await sender.SendAsync(from.Token, to.Id, new { n = i, text = "hello" }, Ct);
            Assert.Equal(DeliveryStatus.Queued, sent.Delivered);
            seqs.Add(sent.Seq);
        }

        await using var recipient = await Clients.ConnectAsync(Ws);
        await recipient.LoginAsync(to.Token, cancellationToken: Ct);
        var queue = await recipient.TakeAsync(5);

        Assert.Equal(seqs, queue.Select(r => r.Seq));
        Assert.Equal(Enumerable.Range(0, 5), queue.Select(r => r.Payload.GetProperty("n").GetInt32()));
        Assert.All(queue, r => Assert.Equal(from.Id, r.From));
        Assert.All(queue, r => Assert.NotEqual(default, r.At));

        // Written to the socket means delivered: the queue empties and the next login finds nothing.
        using var api = new ApiClient(fixture.Server.HttpUri);
        await api.WaitForQueueLengthAsync(to.Id, 0);
        await using var again = await WsClient.ConnectAsync(Ws);
        Assert.Empty((await again.RequestAsync("login", new { token = to.Token })).Parameters().GetProperty("queue").EnumerateArray());
    }

    [Fact]
    public async Task AnOnlineClientGetsAResponsePushedAtOnce()
    {
        await using var sender = await WsClient.ConnectAsync(Ws);
        var (senderToken, senderId) = await sender.RegisterAsync(new { name = "sender" });
        await using var recipient = await WsClient.ConnectAsync(Ws);
        var (token, id) = await recipient.RegisterAsync(new { name = "recipient" });
        await recipient.RequestAsync("login", new { token });

        var sent = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = new[] { 1, 2, 3 } });
        Assert.Equal("online", sent.Parameters().GetProperty("delivered").GetString());

        var push = await recipient.NextPushAsync();
        Assert.Equal("response", push.Action());
        Assert.Equal(sent.Parameters().GetProperty("seq").GetInt64(), push.Parameters().GetProperty("seq").GetInt64());
        Assert.Equal(senderId, push.Parameters().GetProperty("from").GetInt32());
        Assert.Equal("[1,2,3]", push.Parameters().GetProperty("payload").GetRawText());
    }

    [Fact]
    public async Task PushesKeepTheSendersOrder()
    {
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        await using var recipient = await Clients.ConnectAsync(Ws);
        var to = await recipient.RegisterAsync(new { name = "recipient" }, Ct);
        await recipient.LoginAsync(to.Token, cancellationToken: Ct);

        // Pipelined: 50 sends written one after another, their replies awaited together.
        var sends = new List<Task<SendResult>>();
        for (var i = 0; i < 50; i++)
        {
            sends.Add(sender.SendAsync(from.Token, to.Id, i, Ct));
        }

        await Task.WhenAll(sends);
        var received = await recipient.TakeAsync(50);
        Assert.Equal(Enumerable.Range(0, 50), received.Select(r => r.Payload.GetInt32()));
    }

    [Fact]
    public async Task AckModeRedeliversWhatWasNotAcknowledgedAfterADroppedConnection()
    {
        await using var sender = await WsClient.ConnectAsync(Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        var (token, id) = await sender.RegisterAsync(new { name = "careful" });

        var first = await WsClient.ConnectAsync(Ws);
        Assert.Equal("logged", (await first.RequestAsync("login", new { token, ack = true })).Action());
        var seqs = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            var sent = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = i });
            Assert.Equal("online", sent.Parameters().GetProperty("delivered").GetString());
            seqs.Add((await first.NextPushAsync()).Parameters().GetProperty("seq").GetInt64());
        }

        var acked = await first.RequestAsync("ack", new { upTo = seqs[0] });
        Assert.Equal("acked", acked.Action());
        Assert.Equal(seqs[0], acked.Parameters().GetProperty("upTo").GetInt64());
        first.Socket.Abort();
        first.Socket.Dispose();

        await using var second = await WsClient.ConnectAsync(Ws);
        var queue = (await second.RequestAsync("login", new { token, ack = true })).Parameters().GetProperty("queue");
        Assert.Equal(seqs.Skip(1), queue.EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()));
    }

    [Fact]
    public async Task ASecondLoginTakesOverAndTheFirstSocketIsToldAndClosed()
    {
        await using var sender = await WsClient.ConnectAsync(Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        await using var first = await WsClient.ConnectAsync(Ws);
        var (token, id) = await first.RegisterAsync(new { name = "roaming" });
        await first.RequestAsync("login", new { token });

        await using var second = await WsClient.ConnectAsync(Ws);
        Assert.Equal("logged", (await second.RequestAsync("login", new { token })).Action());

        var told = await first.NextPushAsync();
        Assert.Equal("loggedOut", told.Action());
        Assert.Equal("takeover", told.Parameters().GetProperty("reason").GetString());
        Assert.Null(await first.ReceiveTextAsync());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, first.Socket.CloseStatus);

        await sender.RequestAsync("send", new { token = senderToken, to = id, payload = "to the new socket" });
        Assert.Equal("\"to the new socket\"", (await second.NextPushAsync()).Parameters().GetProperty("payload").GetRawText());
    }

    [Fact]
    public async Task AfterLogoutOrCloseResponsesAreQueued()
    {
        await using var sender = await WsClient.ConnectAsync(Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        var (token, id) = await sender.RegisterAsync(new { name = "leaving" });

        await using (var recipient = await WsClient.ConnectAsync(Ws))
        {
            await recipient.RequestAsync("login", new { token });
            Assert.Equal("loggedOut", (await recipient.RequestAsync("logout")).Action());
            var afterLogout = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = 1 });
            Assert.Equal("queued", afterLogout.Parameters().GetProperty("delivered").GetString());
            await recipient.RequestAsync("login", new { token });
        }

        // The server sees the close on its own schedule; until then a push may still reach the
        // closing socket's frontend and fail, which queues the response too.
        var afterClose = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = 2 });
        Assert.Equal("sent", afterClose.Action());
        using var api = new ApiClient(fixture.Server.HttpUri);
        var (_, status) = await api.GetAsync($"/api/clients/{id}");
        Assert.False(status.GetProperty("online").GetBoolean() && afterClose.Parameters().GetProperty("delivered").GetString() == "queued");
    }

    [Fact]
    public async Task DeleteRemovesTheClientItsQueueAndItsToken()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var sender = await client.RegisterAsync(new { name = "sender" }, Ct);
        var doomed = await client.RegisterAsync(new { name = "doomed" }, Ct);
        await client.SendAsync(sender.Token, doomed.Id, "x", Ct);

        Assert.Equal(doomed.Id, await client.DeleteAsync(doomed.Token, Ct));

        await Assert.ThrowsAsync<InvalidTokenException>(() => client.LoginAsync(doomed.Token, cancellationToken: Ct));
        await Assert.ThrowsAsync<InvalidTokenException>(() => client.DeleteAsync(doomed.Token, Ct));
        await Assert.ThrowsAsync<NotFoundException>(() => client.SendAsync(sender.Token, doomed.Id, "y", Ct));
        using var api = new ApiClient(fixture.Server.HttpUri);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/api/clients/{doomed.Id}")).Status);
    }

    [Fact]
    public async Task ADeletedClientCannotSendFromTheSocketItWasLoggedInOn()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var me = await client.RegisterAsync(new { name = "short-lived" }, Ct);
        await client.LoginAsync(me.Token, cancellationToken: Ct);
        Assert.Equal(DeliveryStatus.Online, (await client.SendAsync(me.Token, me.Id, "self", Ct)).Delivered);

        Assert.Equal(me.Id, await client.DeleteAsync(me.Token, Ct));

        // The response to itself may come first; then the login ends.
        var told = await Assert.ThrowsAsync<LoggedOutException>(() => client.TakeAsync(2));
        Assert.Equal(LogoutReason.Deleted, told.Reason);
        await Assert.ThrowsAsync<InvalidTokenException>(() => client.SendAsync(me.Token, me.Id, "again", Ct));
        await Assert.ThrowsAsync<NotLoggedInException>(() => client.OnlineAsync(cancellationToken: Ct));
    }

    [Fact]
    public async Task OnlineListsLoggedInClientsInPages()
    {
        await using var a = await WsClient.ConnectAsync(Ws);
        var (tokenA, idA) = await a.RegisterAsync(new { name = "a" });
        await using var b = await WsClient.ConnectAsync(Ws);
        var (tokenB, idB) = await b.RegisterAsync(new { name = "b" });

        Assert.Equal("not_logged_in", (await a.RequestAsync("online")).ErrorCode());
        await a.RequestAsync("login", new { token = tokenA });
        await b.RequestAsync("login", new { token = tokenB });

        var all = (await a.RequestAsync("online")).Parameters().GetProperty("clients").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Contains(idA, all);
        Assert.Contains(idB, all);
        Assert.Equal(all.Order(), all);

        var page = (await a.RequestAsync("online", new { after = idA - 1, limit = 1 })).Parameters();
        Assert.Equal([idA], page.GetProperty("clients").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(idA, page.GetProperty("next").GetInt32());
        Assert.Equal("bad_request", (await a.RequestAsync("online", new { limit = 0 })).ErrorCode());
    }

    [Fact]
    public async Task BadInputToTheNewActionsGetsItsDocumentedError()
    {
        await using var client = await WsClient.ConnectAsync(Ws);
        var (token, id) = await client.RegisterAsync(new { name = "strict" });
        var stored = fixture.Database.Snapshot();
        var big = new string('x', 16 * 1024);

        (string Action, object Parameters, string Code)[] cases =
        [
            ("send", new { token, to = "1", payload = 1 }, "bad_request"),
            ("send", new { token, to = 1.5, payload = 1 }, "bad_request"),
            ("send", new { token, payload = 1 }, "bad_request"),
            ("send", new { token, to = id }, "bad_request"),
            ("send", new { token, to = int.MaxValue, payload = 1 }, "not_found"),
            ("send", new { token, to = -3, payload = 1 }, "not_found"),
            ("send", new { token, to = id, payload = big }, "too_large"),
            ("send", new { token = TokenDigest(), to = id, payload = 1 }, "invalid_token"),
            ("ack", new { upTo = 1 }, "not_logged_in"),
            ("login", new { token, ack = "yes" }, "bad_request"),
            ("delete", new { token = 42 }, "bad_request"),
            ("delete", new { token = TokenDigest() }, "invalid_token"),
            ("online", new { }, "not_logged_in"),
        ];
        foreach (var (action, parameters, code) in cases)
        {
            var reply = await client.RequestAsync(action, parameters);
            Assert.True(code == reply.ErrorCode(), $"{action} {JsonSerializer.Serialize(parameters)[..Math.Min(80, JsonSerializer.Serialize(parameters).Length)]}: expected {code}, got {reply.GetRawText()[..Math.Min(200, reply.GetRawText().Length)]}");
            Assert.Equal(action, reply.Parameters().GetProperty("request").GetString());
        }

        await client.RequestAsync("login", new { token });
        Assert.Equal("bad_request", (await client.RequestAsync("ack", new { upTo = 1 })).ErrorCode());
        await client.RequestAsync("logout");
        await client.RequestAsync("login", new { token, ack = true });
        Assert.Equal("bad_request", (await client.RequestAsync("ack", new { upTo = "1" })).ErrorCode());
        Assert.Equal("bad_request", (await client.RequestAsync("ack", new { })).ErrorCode());
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        Assert.Equal(stored, fixture.Database.Snapshot());
    }

    [Fact]
    public async Task BackEndsPostResponsesOverHttpWithTheAdminKey()
    {
        await using var recipient = await WsClient.ConnectAsync(Ws);
        var (token, id) = await recipient.RegisterAsync(new { name = "device", location = "Turin" });
        using var api = new ApiClient(fixture.Server.HttpUri);
        using var anonymous = new ApiClient(fixture.Server.HttpUri, adminKey: null);
        using var wrongKey = new ApiClient(fixture.Server.HttpUri, adminKey: "not-the-key");

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostResponseAsync(id, "{}")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrongKey.GetAsync("/api/online")).Status);

        var queued = await api.PostResponseAsync(id, """{"command":"reboot"}""");
        Assert.Equal(HttpStatusCode.Accepted, queued.Status);
        Assert.Equal("queued", queued.Body.GetProperty("delivered").GetString());

        var (status, client) = await api.GetAsync($"/api/clients/{id}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"name":"device","location":"Turin"}""", client.GetProperty("information").GetRawText());
        Assert.Equal(1, client.GetProperty("queueLength").GetInt32());
        Assert.False(client.GetProperty("online").GetBoolean());

        var logged = await recipient.RequestAsync("login", new { token });
        var item = Assert.Single(logged.Parameters().GetProperty("queue").EnumerateArray());
        Assert.False(item.TryGetProperty("from", out _));
        Assert.Equal("""{"command":"reboot"}""", item.GetProperty("payload").GetRawText());

        var online = await api.PostResponseAsync(id, "[1]");
        Assert.Equal("online", online.Body.GetProperty("delivered").GetString());
        Assert.Equal("[1]", (await recipient.NextPushAsync()).Parameters().GetProperty("payload").GetRawText());
        Assert.Contains(id, (await api.GetAsync("/api/online")).Body.GetProperty("clients").EnumerateArray().Select(e => e.GetInt32()));

        Assert.Equal(HttpStatusCode.BadRequest, (await api.PostResponseAsync(id, "{not json")).Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await api.PostResponseAsync(id, "\"" + new string('x', 20_000) + "\"")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await api.PostResponseAsync(int.MaxValue - 1, "{}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/api/clients/{int.MaxValue - 1}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await api.GetAsync("/api/online?limit=0")).Status);
    }

    private static string TokenDigest() => global::Grains.Interfaces.TokenDigest.NewToken();
}
