using System.Net;
using System.Text.Json;
using ClientManagement.Client;
using Tests.Infrastructure;

namespace Tests.ClientLibrary;

/// <summary>The client library against the real gateway (Kestrel on 127.0.0.1, SQLite).</summary>
[Collection(GatewayCollection.Name)]
public sealed class GatewayClientTests(GatewayFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Uri Ws => fixture.Server.WebSocketUri;

    [Fact]
    public async Task RegisterLoginUpdateAndDeleteDoWhatTheProtocolSays()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var me = await client.RegisterAsync(new { name = "probe-7", location = "Turin" }, Ct);
        Assert.Equal(43, me.Token.Length);

        var login = await client.LoginAsync(me.Token, cancellationToken: Ct);
        Assert.Equal(me.Id, login.Id);
        Assert.Equal(me.Id, client.ClientId);
        Assert.Equal("Turin", login.Information.GetProperty("location").GetString());

        await client.UpdateAsync(me.Token, new { name = "probe-7", location = "Milan" }, Ct);
        await using var other = await Clients.ConnectAsync(Ws);
        Assert.Equal("Milan", (await other.LoginAsync(me.Token, cancellationToken: Ct)).Information.GetProperty("location").GetString());

        Assert.Equal(me.Id, await other.DeleteAsync(me.Token, Ct));
        await Assert.ThrowsAsync<InvalidTokenException>(() => client.UpdateAsync(me.Token, new { name = "gone" }, Ct));
    }

    [Fact]
    public async Task PipelinedRequestsEachGetTheirOwnReply()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var registrations = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => client.RegisterAsync(new { name = $"pipelined-{i}" }, Ct)));
        Assert.Equal(20, registrations.Select(r => r.Id).Distinct().Count());

        // Each reply went to its own request: logging in with each token in parallel gives back that token's client.
        await using var checker = await Clients.ConnectAsync(Ws);
        var updates = registrations.Select((r, i) => checker.UpdateAsync(r.Token, new { name = $"renamed-{i}" }, Ct));
        var pings = Enumerable.Range(0, 5).Select(_ => checker.PingAsync(Ct));
        await Task.WhenAll(updates.Concat(pings));
        for (var i = 0; i < registrations.Length; i++)
        {
            await using var each = await Clients.ConnectAsync(Ws);
            var login = await each.LoginAsync(registrations[i].Token, cancellationToken: Ct);
            Assert.Equal(registrations[i].Id, login.Id);
            Assert.Equal($"renamed-{i}", login.Information.GetProperty("name").GetString());
        }
    }

    [Fact]
    public async Task QueuedResponsesComeFirstThenLiveOnesInSeqOrder()
    {
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        var to = await sender.RegisterAsync(new { name = "recipient" }, Ct);
        var seqs = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            var sent = await sender.SendAsync(from.Token, to.Id, new { n = i }, Ct);
            Assert.Equal(DeliveryStatus.Queued, sent.Delivered);
            seqs.Add(sent.Seq);
        }

        await using var recipient = await Clients.ConnectAsync(Ws);
        await recipient.LoginAsync(to.Token, cancellationToken: Ct);
        for (var i = 3; i < 5; i++)
        {
            var sent = await sender.SendAsync(from.Token, to.Id, new { n = i }, Ct);
            Assert.Equal(DeliveryStatus.Online, sent.Delivered);
            seqs.Add(sent.Seq);
        }

        var received = await recipient.TakeAsync(5);
        Assert.Equal(seqs, received.Select(r => r.Seq));
        Assert.Equal(Enumerable.Range(0, 5), received.Select(r => r.Payload.GetProperty("n").GetInt32()));
        Assert.All(received, r => Assert.Equal(from.Id, r.From));
    }

    [Fact]
    public async Task AQueueLongerThanOneLoginPageArrivesWholeAndInOrder()
    {
        // 6 payloads of 15 KB (under a sender's share of the queue) and a back end's are over the default 64 KiB page:
        // the rest follows as response pushes.
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        var to = await sender.RegisterAsync(new { name = "recipient" }, Ct);
        var filler = new string('x', 15_000);
        var seqs = new List<long>();
        for (var i = 0; i < 6; i++)
        {
            seqs.Add((await sender.SendAsync(from.Token, to.Id, new { n = i, filler }, Ct)).Seq);
        }

        using var api = new ApiClient(fixture.Server.HttpUri);
        var (status, backEnd) = await api.PostResponseAsync(to.Id, $$"""{"from":"back end","filler":"{{filler}}"}""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        seqs.Add(backEnd.GetProperty("seq").GetInt64());

        await using var recipient = await Clients.ConnectAsync(Ws);
        await recipient.LoginAsync(to.Token, cancellationToken: Ct);
        var received = await recipient.TakeAsync(7);
        Assert.Equal(seqs, received.Select(r => r.Seq));
        Assert.Null(received[^1].From);
        Assert.Equal("back end", received[^1].Payload.GetProperty("from").GetString());
    }

    [Fact]
    public async Task InAckModeWhatIsNotAcknowledgedComesAgainAtTheNextLogin()
    {
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        var to = await sender.RegisterAsync(new { name = "recipient" }, Ct);
        var seqs = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            seqs.Add((await sender.SendAsync(from.Token, to.Id, new { n = i }, Ct)).Seq);
        }

        await using (var first = await Clients.ConnectAsync(Ws))
        {
            await first.LoginAsync(to.Token, ack: true, Ct);
            Assert.Equal(seqs, (await first.TakeAsync(3)).Select(r => r.Seq));
            await first.AckAsync(seqs[1], Ct);
        }

        await using var second = await Clients.ConnectAsync(Ws);
        await second.LoginAsync(to.Token, ack: true, Ct);
        Assert.Equal([seqs[2]], (await second.TakeAsync(1)).Select(r => r.Seq));
        await second.AckAsync(seqs[2], Ct);
        await second.LogoutAsync(Ct);

        // Without ack mode there is nothing to acknowledge.
        await second.LoginAsync(to.Token, cancellationToken: Ct);
        var refused = await Assert.ThrowsAsync<BadRequestException>(() => second.AckAsync(seqs[2], Ct));
        Assert.Equal(GatewayErrorCode.BadRequest, refused.Code);
        Assert.Equal("ack", refused.Request);
    }

    [Fact]
    public async Task RotateGivesANewTokenAndTheOldOneStopsWorking()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var me = await client.RegisterAsync(new { name = "rotating" }, Ct);
        await client.LoginAsync(me.Token, cancellationToken: Ct);
        var fresh = await client.RotateAsync(me.Token, Ct);
        Assert.NotEqual(me.Token, fresh);

        await Assert.ThrowsAsync<InvalidTokenException>(() => client.UpdateAsync(me.Token, new { name = "old" }, Ct));
        await client.UpdateAsync(fresh, new { name = "new" }, Ct);

        // The session survived the rotation: it still lists who is online, itself included.
        var page = await client.OnlineAsync(cancellationToken: Ct);
        Assert.Contains(me.Id, page.Clients);
    }

    [Fact]
    public async Task OnlinePagesFollowTheCursor()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var ids = new List<int>();
        var sessions = new List<GatewayClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var session = await Clients.ConnectAsync(Ws);
                sessions.Add(session);
                var r = await session.RegisterAsync(new { name = $"online-{i}" }, Ct);
                await session.LoginAsync(r.Token, cancellationToken: Ct);
                ids.Add(r.Id);
            }

            var after = ids[0] - 1;
            var first = await sessions[0].OnlineAsync(after, 2, Ct);
            Assert.Equal(ids.Take(2), first.Clients);
            Assert.Equal(ids[1], first.Next);
            var second = await sessions[0].OnlineAsync(first.Next, 2, Ct);
            Assert.Equal(ids[2], second.Clients[0]);
        }
        finally
        {
            foreach (var session in sessions)
            {
                await session.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task EveryErrorCodeComesAsItsOwnExceptionType()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var me = await client.RegisterAsync(new { name = "errors" }, Ct);

        var invalid = await Assert.ThrowsAsync<InvalidTokenException>(() => client.LoginAsync(new string('A', 43), cancellationToken: Ct));
        Assert.Equal(GatewayErrorCode.InvalidToken, invalid.Code);
        Assert.Equal("invalid_token", invalid.WireCode);
        Assert.Equal("login", invalid.Request);

        Assert.Equal(GatewayErrorCode.NotLoggedIn, (await Assert.ThrowsAsync<NotLoggedInException>(() => client.AckAsync(1, Ct))).Code);
        await Assert.ThrowsAsync<NotLoggedInException>(() => client.LogoutAsync(Ct));
        await Assert.ThrowsAsync<NotLoggedInException>(() => client.OnlineAsync(cancellationToken: Ct));

        // A 'name' that is no string is ill-typed; a payload over 16 KiB is too large; an id no one has is not found.
        await Assert.ThrowsAsync<BadRequestException>(() => client.RegisterAsync(new { name = 7 }, Ct));
        await Assert.ThrowsAsync<TooLargeException>(() => client.SendAsync(me.Token, me.Id, new { filler = new string('x', 20_000) }, Ct));
        Assert.Equal(GatewayErrorCode.NotFound, (await Assert.ThrowsAsync<NotFoundException>(() => client.SendAsync(me.Token, int.MaxValue, new { }, Ct))).Code);

        // Errors leave the connection working.
        await client.LoginAsync(me.Token, cancellationToken: Ct);
        await client.PingAsync(Ct);
    }

    [Fact]
    public async Task ATakeoverEndsTheReaderWithLoggedOutAndTheClientDoesNotLogInAgain()
    {
        await using var first = await Clients.ConnectAsync(Ws);
        var me = await first.RegisterAsync(new { name = "taken over" }, Ct);
        await first.LoginAsync(me.Token, cancellationToken: Ct);

        await using var second = await Clients.ConnectAsync(Ws);
        await second.LoginAsync(me.Token, cancellationToken: Ct);

        var loggedOut = await Assert.ThrowsAsync<LoggedOutException>(() => first.TakeAsync(1));
        Assert.Equal(LogoutReason.Takeover, loggedOut.Reason);
        Assert.Null(first.ClientId);

        // Had the first client logged in again after the gateway closed it, the second would now be taken over.
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        await sender.SendAsync(from.Token, me.Id, new { still = "here" }, Ct);
        Assert.Equal("here", (await second.TakeAsync(1))[0].Payload.GetProperty("still").GetString());
    }

    [Fact]
    public async Task AnOperatorsRevokeSurfacesAsLoggedOutRevoked()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        var me = await client.RegisterAsync(new { name = "revoked" }, Ct);
        await client.LoginAsync(me.Token, cancellationToken: Ct);

        using var api = new ApiClient(fixture.Server.HttpUri);
        var (status, _) = await api.SendAsync(HttpMethod.Post, $"/api/clients/{me.Id}/revoke");
        Assert.Equal(HttpStatusCode.NoContent, status);

        Assert.Equal(LogoutReason.Revoked, (await Assert.ThrowsAsync<LoggedOutException>(() => client.TakeAsync(1))).Reason);
        await Assert.ThrowsAsync<InvalidTokenException>(() => client.LoginAsync(me.Token, cancellationToken: Ct));
    }

    [Fact]
    public async Task CancellingACallOrTheReaderStopsIt()
    {
        await using var client = await Clients.ConnectAsync(Ws);
        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.RegisterAsync(new { name = "never" }, cancelled.Token));
        }

        var me = await client.RegisterAsync(new { name = "reader" }, Ct);
        await client.LoginAsync(me.Token, cancellationToken: Ct);
        using (var reading = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var reader = client.ReadResponsesAsync(reading.Token).GetAsyncEnumerator(reading.Token);
            var waiting = reader.MoveNextAsync().AsTask();
            Assert.False(waiting.IsCompleted);
            await reading.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Clients.Timeout, Ct));
            await reader.DisposeAsync();
        }

        // The connection is none the worse, and the next reader still gets what comes.
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        var sent = await sender.SendAsync(from.Token, me.Id, new { after = "cancel" }, Ct);
        Assert.Equal(sent.Seq, (await client.TakeAsync(1))[0].Seq);
    }

    [Fact]
    public void TheLibraryStaysFreeOfTheServerAssemblies()
    {
        var references = typeof(GatewayClient).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.DoesNotContain(references, n => n.StartsWith("Orleans", StringComparison.Ordinal) || n.StartsWith("Microsoft.Orleans", StringComparison.Ordinal));
        Assert.DoesNotContain(references, n => n is "Grains" or "Grains.Interfaces" or "WebSocketFrontend" || n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
    }
}
