using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;

namespace Tests.Transports;

/// <summary>
/// One gateway for the transport-neutral behaviour tests: client sends and the online list allowed, a small login
/// page so that a short queue is paged, and a request budget on a clock that stands still until a test moves it.
/// </summary>
public sealed class TransportFixture : IAsyncLifetime
{
    public const int Burst = 50;

    public TempDatabase Database { get; } = new();

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    public GatewayServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await GatewayServer.StartAsync(Database.Path, new Dictionary<string, string>
        {
            ["Protocol:ClientSend"] = "any",
            ["Protocol:ClientsMayListOnline"] = "true",
            ["Protocol:LoginPageBytes"] = "1024",
            ["Protocol:RequestsPerSecond"] = Burst.ToString(CultureInfo.InvariantCulture),
            ["Protocol:RequestBurst"] = Burst.ToString(CultureInfo.InvariantCulture),
        }, Clock);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Database.Dispose();
    }
}

/// <summary>The same behaviour over raw <c>/ws</c>, Socket.IO over WebSocket (events and acknowledgements) and Socket.IO over long-polling.</summary>
public sealed class SameBehaviourOverEveryTransportTests(TransportFixture fixture) : IClassFixture<TransportFixture>
{
    public static TheoryData<string> Transports => ProtocolClient.All;

    public static TheoryData<string, string> TakeoverPairs => new()
    {
        { ProtocolClient.Ws, ProtocolClient.SocketIoWebSocket },
        { ProtocolClient.SocketIoWebSocket, ProtocolClient.Ws },
        { ProtocolClient.SocketIoPolling, ProtocolClient.Ws },
        { ProtocolClient.Ws, ProtocolClient.SocketIoPolling },
        { ProtocolClient.SocketIoAcks, ProtocolClient.SocketIoPolling },
    };

    private Task<ProtocolClient> ConnectAsync(string transport) => ProtocolClient.ConnectAsync(transport, fixture.Server);

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task RegisterLoginAndUpdateWorkAndTheNextLoginSeesTheNewInformation(string transport)
    {
        await using var client = await ConnectAsync(transport);
        var (token, id) = await client.RegisterAsync(new { name = "probe", location = "Turin" });

        var logged = await client.RequestAsync("login", new { token });
        Assert.Equal("logged", logged.Action());
        Assert.Equal(id, logged.Parameters().GetProperty("id").GetInt32());
        Assert.Empty(logged.Parameters().GetProperty("queue").EnumerateArray());
        Assert.Equal("Turin", logged.Parameters().GetProperty("information").GetProperty("location").GetString());

        Assert.Equal("updated", (await client.RequestAsync("update", new { token, information = new { name = "probe", location = "Milan" } })).Action());

        await using var again = await ConnectAsync(transport);
        var next = await again.RequestAsync("login", new { token });
        Assert.Equal("Milan", next.Parameters().GetProperty("information").GetProperty("location").GetString());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task AResponseQueuedWhileOfflineComesWithTheLoginAndALiveOneIsPushed(string transport)
    {
        await using var sender = await ConnectAsync(ProtocolClient.Ws);
        var (senderToken, senderId) = await sender.RegisterAsync(new { name = "sender" });
        var (token, id) = await sender.RegisterAsync(new { name = "recipient" });
        var queued = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = new { n = 1 } });
        Assert.Equal("queued", queued.Parameters().GetProperty("delivered").GetString());

        await using var recipient = await ConnectAsync(transport);
        var queue = (await recipient.RequestAsync("login", new { token })).Parameters().GetProperty("queue").EnumerateArray().ToArray();
        Assert.Equal(queued.Parameters().GetProperty("seq").GetInt64(), Assert.Single(queue).GetProperty("seq").GetInt64());
        Assert.Equal(senderId, queue[0].GetProperty("from").GetInt32());

        var live = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = new { n = 2 } });
        Assert.Equal("online", live.Parameters().GetProperty("delivered").GetString());
        var push = await recipient.NextPushAsync();
        Assert.Equal("response", push.Action());
        Assert.Equal(live.Parameters().GetProperty("seq").GetInt64(), push.Parameters().GetProperty("seq").GetInt64());
        Assert.Equal(2, push.Parameters().GetProperty("payload").GetProperty("n").GetInt32());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ALongQueueComesInPagesAndTheRestFollowsAsPushesInOrder(string transport)
    {
        const int count = 8;
        await using var sender = await ConnectAsync(ProtocolClient.Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        var (token, id) = await sender.RegisterAsync(new { name = "recipient" });
        var seqs = new List<long>();
        for (var i = 0; i < count; i++)
        {
            var sent = await sender.RequestAsync("send", new { token = senderToken, to = id, payload = new { n = i, text = new string('x', 300) } });
            seqs.Add(sent.Parameters().GetProperty("seq").GetInt64());
        }

        await using var recipient = await ConnectAsync(transport);
        var page = (await recipient.RequestAsync("login", new { token })).Parameters().GetProperty("queue").EnumerateArray().Select(r => r.GetProperty("seq").GetInt64()).ToList();
        Assert.InRange(page.Count, 1, count - 1);

        var received = new List<long>(page);
        for (var i = page.Count; i < count; i++)
        {
            var push = await recipient.NextPushAsync();
            Assert.Equal("response", push.Action());
            received.Add(push.Parameters().GetProperty("seq").GetInt64());
        }

        Assert.Equal(seqs, received);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task InAckModeResponsesStayQueuedUntilAcknowledged(string transport)
    {
        await using var sender = await ConnectAsync(ProtocolClient.Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        var (token, id) = await sender.RegisterAsync(new { name = "careful" });

        long last;
        await using (var first = await ConnectAsync(transport))
        {
            await first.RequestAsync("login", new { token, ack = true });
            await sender.RequestAsync("send", new { token = senderToken, to = id, payload = 1 });
            last = (await sender.RequestAsync("send", new { token = senderToken, to = id, payload = 2 })).Parameters().GetProperty("seq").GetInt64();
            Assert.Equal("response", (await first.NextPushAsync()).Action());
            Assert.Equal(last, (await first.NextPushAsync()).Parameters().GetProperty("seq").GetInt64());
        }

        await using var second = await ConnectAsync(transport);
        var queue = (await second.RequestAsync("login", new { token, ack = true })).Parameters().GetProperty("queue");
        Assert.Equal(2, queue.GetArrayLength());
        var acked = await second.RequestAsync("ack", new { upTo = last });
        Assert.Equal("acked", acked.Action());
        Assert.Equal(last, acked.Parameters().GetProperty("upTo").GetInt64());

        await using var third = await ConnectAsync(transport);
        Assert.Empty((await third.RequestAsync("login", new { token, ack = true })).Parameters().GetProperty("queue").EnumerateArray());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task AfterLogoutResponsesAreQueuedAndDeleteRemovesTheClient(string transport)
    {
        await using var sender = await ConnectAsync(ProtocolClient.Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        await using var client = await ConnectAsync(transport);
        var (token, id) = await client.RegisterAsync(new { name = "leaving" });
        await client.RequestAsync("login", new { token });

        var loggedOut = await client.RequestAsync("logout");
        Assert.Equal("loggedOut", loggedOut.Action());
        Assert.Equal("logout", loggedOut.Parameters().GetProperty("reason").GetString());
        Assert.Equal("queued", (await sender.RequestAsync("send", new { token = senderToken, to = id, payload = "later" })).Parameters().GetProperty("delivered").GetString());

        var deleted = await client.RequestAsync("delete", new { token });
        Assert.Equal("deleted", deleted.Action());
        Assert.Equal(id, deleted.Parameters().GetProperty("id").GetInt32());
        Assert.Equal("invalid_token", (await client.RequestAsync("login", new { token })).Parameters().GetProperty("code").GetString());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task TheOnlineListShowsALoggedInClientAndNeedsALogin(string transport)
    {
        await using var client = await ConnectAsync(transport);
        var (token, id) = await client.RegisterAsync(new { name = "present" });
        Assert.Equal("not_logged_in", (await client.RequestAsync("online")).Parameters().GetProperty("code").GetString());

        await client.RequestAsync("login", new { token });
        var page = await client.RequestAsync("online", new { after = id - 1, limit = 1 });
        Assert.Equal("online", page.Action());
        Assert.Equal(id, Assert.Single(page.Parameters().GetProperty("clients").EnumerateArray()).GetInt32());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ErrorsGetTheirCodesAndTheConnectionGoesOn(string transport)
    {
        await using var client = await ConnectAsync(transport);
        var (token, _) = await client.RegisterAsync(new { name = "clumsy" });

        Assert.Equal("unknown_action", Code(await client.RequestAsync("fly")));
        Assert.Equal("bad_request", Code(await client.RequestAsync("login")));
        Assert.Equal("invalid_token", Code(await client.RequestAsync("login", new { token = "not-a-token" })));
        Assert.Equal("too_large", Code(await client.RequestAsync("update", new { token, information = new { name = new string('n', 9000) } })));

        await client.SendMalformedAsync();
        var refusal = await client.NextPushAsync();
        Assert.Equal("error", refusal.Action());
        Assert.Equal("bad_request", Code(refusal));

        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        Assert.Equal("logged", (await client.RequestAsync("login", new { token })).Action());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task AFloodOverTheBudgetIsRateLimitedAndTheConnectionWorksOnceTheBudgetRefills(string transport)
    {
        const int flood = TransportFixture.Burst + 20;
        await using var client = await ConnectAsync(transport);

        var replies = await client.PipelineAsync([.. Enumerable.Range(0, flood).Select(_ => ("ping", (object?)null))]);

        // The clock stands still: the burst and nothing more gets through, in order.
        Assert.All(replies.Take(TransportFixture.Burst), r => Assert.Equal("pinged", r.Action()));
        Assert.All(replies.Skip(TransportFixture.Burst), r => Assert.Equal("rate_limited", Code(r)));

        fixture.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
    }

    [Theory]
    [MemberData(nameof(TakeoverPairs))]
    public async Task ALoginOverOneTransportTakesOverASessionOnAnother(string firstTransport, string secondTransport)
    {
        await using var sender = await ConnectAsync(ProtocolClient.Ws);
        var (senderToken, _) = await sender.RegisterAsync(new { name = "sender" });
        await using var first = await ConnectAsync(firstTransport);
        var (token, id) = await first.RegisterAsync(new { name = "roaming" });
        await first.RequestAsync("login", new { token });

        await using var second = await ConnectAsync(secondTransport);
        Assert.Equal("logged", (await second.RequestAsync("login", new { token })).Action());

        var told = await first.NextPushAsync();
        Assert.Equal("loggedOut", told.Action());
        Assert.Equal("takeover", told.Parameters().GetProperty("reason").GetString());
        Assert.True(await first.ClosedByServerAsync());

        await sender.RequestAsync("send", new { token = senderToken, to = id, payload = "to the new session" });
        Assert.Equal("\"to the new session\"", (await second.NextPushAsync()).Parameters().GetProperty("payload").GetRawText());
    }

    private static string? Code(System.Text.Json.JsonElement reply)
    {
        Assert.Equal("error", reply.Action());
        return reply.Parameters().GetProperty("code").GetString();
    }
}

/// <summary>A gateway with the defaults.</summary>
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

/// <summary>With the defaults, the online list is closed to clients over every transport alike.</summary>
public sealed class DefaultsOverEveryTransportTests(DefaultGatewayFixture fixture) : IClassFixture<DefaultGatewayFixture>
{
    public static TheoryData<string> Transports => ProtocolClient.All;

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task TheOnlineListIsForbiddenToClientsByDefault(string transport)
    {
        await using var client = await ProtocolClient.ConnectAsync(transport, fixture.Server);
        var (token, _) = await client.RegisterAsync(new { name = "curious" });
        await client.RequestAsync("login", new { token });
        var refusal = await client.RequestAsync("online");
        Assert.Equal("error", refusal.Action());
        Assert.Equal("forbidden", refusal.Parameters().GetProperty("code").GetString());
        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
    }
}
