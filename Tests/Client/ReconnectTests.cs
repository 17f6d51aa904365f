using ClientManagement.Client;
using Microsoft.Extensions.Time.Testing;
using Tests.Infrastructure;

namespace Tests.ClientLibrary;

/// <summary>Connections cut under the library (by a relay on 127.0.0.1), the back-off, timeouts and the rate budget.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ReconnectTests(GatewayFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Uri Ws => fixture.Server.WebSocketUri;

    [Fact]
    public async Task AfterACutTheClientLogsInAgainAndResumesPushesInOrderWithoutDuplicates()
    {
        await using var relay = new TcpRelay(Ws);
        await using var sender = await Clients.ConnectAsync(Ws);
        var from = await sender.RegisterAsync(new { name = "sender" }, Ct);
        var to = await sender.RegisterAsync(new { name = "recipient" }, Ct);

        await using var recipient = await Clients.ConnectAsync(relay.WebSocketUri);
        await recipient.LoginAsync(to.Token, ack: true, Ct);
        var seqs = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            seqs.Add((await sender.SendAsync(from.Token, to.Id, new { n = i }, Ct)).Seq);
        }

        Assert.Equal(seqs, (await recipient.TakeAsync(3)).Select(r => r.Seq));

        // Nothing is acknowledged: the login after the cut gets all of it again, and the library hands out only what is new.
        var reconnected = recipient.NextStateAsync(GatewayConnectionState.Connected);
        relay.DropAll();
        for (var i = 3; i < 6; i++)
        {
            seqs.Add((await sender.SendAsync(from.Token, to.Id, new { n = i }, Ct)).Seq);
        }

        await reconnected;
        for (var i = 6; i < 8; i++)
        {
            seqs.Add((await sender.SendAsync(from.Token, to.Id, new { n = i }, Ct)).Seq);
        }

        var resumed = await recipient.TakeAsync(5);
        Assert.Equal(seqs[3..], resumed.Select(r => r.Seq));
        Assert.Equal(Enumerable.Range(3, 5), resumed.Select(r => r.Payload.GetProperty("n").GetInt32()));
        Assert.True(relay.Accepted >= 2);
        Assert.Equal(to.Id, recipient.ClientId);

        // The new session is the live one: acknowledging on it empties the queue.
        await recipient.AckAsync(seqs[^1], Ct);
        using var api = new ApiClient(fixture.Server.HttpUri);
        await api.WaitForQueueLengthAsync(to.Id, 0);
    }

    [Fact]
    public async Task ARequestInFlightWhenTheConnectionDropsFailsAndTheNextOneGoesThrough()
    {
        await using var relay = new TcpRelay(Ws);
        await using var client = await Clients.ConnectAsync(relay.WebSocketUri);
        var me = await client.RegisterAsync(new { name = "cut" }, Ct);
        await client.LoginAsync(me.Token, cancellationToken: Ct);

        var reconnected = client.NextStateAsync(GatewayConnectionState.Connected);
        relay.DropAll();
        await reconnected;

        // A rotated token after the cut is the one a later reconnection uses.
        var fresh = await client.RotateAsync(me.Token, Ct);
        var again = client.NextStateAsync(GatewayConnectionState.Connected);
        relay.DropAll();
        await again;
        var page = await client.OnlineAsync(cancellationToken: Ct);
        Assert.Contains(me.Id, page.Clients);
        await client.UpdateAsync(fresh, new { name = "still me" }, Ct);
    }

    [Fact]
    public async Task TheBackOffWaitsOnTheInjectedClockBeforeReconnecting()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromSeconds(4), MaxDelay = TimeSpan.FromSeconds(60), Jitter = 0.5 };
        await using var relay = new TcpRelay(Ws);
        await using var client = await Clients.ConnectAsync(relay.WebSocketUri, o =>
        {
            o.TimeProvider = time;
            o.Random = new Random(7);
            o.Reconnect = policy;
        });
        var me = await client.RegisterAsync(new { name = "backing off" }, Ct);
        await client.LoginAsync(me.Token, cancellationToken: Ct);

        var reconnecting = client.NextStateAsync(GatewayConnectionState.Reconnecting);
        relay.DropAll();
        var backOff = await reconnecting;
        Assert.Equal(0, backOff.Attempt);
        Assert.InRange(backOff.Delay, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4));
        Assert.Equal(policy.DelayFor(0, new Random(7).NextDouble()), backOff.Delay);

        // Short of the back-off, the timer has not fired: no new connection, whatever the real clock does.
        time.Advance(backOff.Delay - TimeSpan.FromMilliseconds(1));
        Assert.Equal(GatewayConnectionState.Reconnecting, client.State);
        Assert.Equal(1, relay.Accepted);

        var connected = client.NextStateAsync(GatewayConnectionState.Connected);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await connected;
        Assert.Equal(2, relay.Accepted);
        Assert.Contains(me.Id, (await client.OnlineAsync(cancellationToken: Ct)).Clients);
    }

    [Fact]
    public void TheBackOffGrowsUpToItsCapAndItsJitterStaysInBounds()
    {
        var policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(10), Multiplier = 2, Jitter = 0.25 };
        Assert.Equal(TimeSpan.FromSeconds(1), policy.DelayFor(0, 0));
        Assert.Equal(TimeSpan.FromSeconds(2), policy.DelayFor(1, 0));
        Assert.Equal(TimeSpan.FromSeconds(8), policy.DelayFor(3, 0));
        Assert.Equal(TimeSpan.FromSeconds(10), policy.DelayFor(4, 0));
        Assert.Equal(TimeSpan.FromSeconds(10), policy.DelayFor(1000, 0));
        Assert.Equal(TimeSpan.FromSeconds(6), policy.DelayFor(3, 1));

        var random = new Random(11);
        var delays = Enumerable.Range(0, 200).Select(_ => policy.DelayFor(2, random.NextDouble())).ToArray();
        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(4)));
        Assert.True(delays.Distinct().Count() > 100, "jitter spreads the delays");

        Assert.Throws<ArgumentOutOfRangeException>(() => new ReconnectPolicy { Jitter = 1.5 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReconnectPolicy { MaxDelay = TimeSpan.FromMilliseconds(1) }.Validate());
        Assert.Throws<ArgumentException>(() => new GatewayClient(new GatewayClientOptions { Uri = new Uri("http://127.0.0.1/ws") }));
    }

    [Fact]
    public async Task WhileReconnectingARequestTimesOutOnTheInjectedClockOrEndsWhenCancelled()
    {
        var time = new FakeTimeProvider();
        await using var relay = new TcpRelay(Ws);
        await using var client = await Clients.ConnectAsync(relay.WebSocketUri, o =>
        {
            o.TimeProvider = time;
            o.RequestTimeout = TimeSpan.FromSeconds(5);
            o.Reconnect = new ReconnectPolicy { InitialDelay = TimeSpan.FromHours(1), MaxDelay = TimeSpan.FromHours(1) };
        });

        var reconnecting = client.NextStateAsync(GatewayConnectionState.Reconnecting);
        relay.DropAll();
        await reconnecting;

        // The request waits for the connection; the injected clock, not the real one, ends the wait.
        var ping = client.PingAsync(Ct);
        Assert.False(ping.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<TimeoutException>(() => ping.WaitAsync(Clients.Timeout, Ct));

        using var cancelled = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var waiting = client.PingAsync(cancelled.Token);
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Clients.Timeout, Ct));
    }

    [Fact]
    public async Task AGatewayThatCannotBeReachedFailsTheClientAfterItsAttempts()
    {
        var relay = new TcpRelay(Ws);
        var client = await Clients.ConnectAsync(relay.WebSocketUri, o => o.Reconnect = new ReconnectPolicy
        {
            InitialDelay = TimeSpan.FromMilliseconds(10),
            MaxDelay = TimeSpan.FromMilliseconds(20),
            MaxAttempts = 2,
        });
        await using (client)
        {
            var failed = client.NextStateAsync(GatewayConnectionState.Failed);
            await relay.DisposeAsync();
            await failed;
            await Assert.ThrowsAsync<GatewayConnectionException>(() => client.PingAsync(Ct));
            await Assert.ThrowsAsync<GatewayConnectionException>(() => client.TakeAsync(1));
        }
    }

    [Fact]
    public async Task OverTheRequestBudgetACallThrowsRateLimited()
    {
        // The gateway's clock stands still, so its budget of 3 requests never refills during the test.
        using var database = new TempDatabase();
        await using var server = await GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "1",
            ["Protocol:RequestBurst"] = "3",
        }, new FakeTimeProvider());
        await using var client = await Clients.ConnectAsync(server.WebSocketUri);
        for (var i = 0; i < 3; i++)
        {
            await client.PingAsync(Ct);
        }

        var limited = await Assert.ThrowsAsync<RateLimitedException>(() => client.RegisterAsync(new { name = "over" }, Ct));
        Assert.Equal(GatewayErrorCode.RateLimited, limited.Code);
        Assert.Equal(GatewayConnectionState.Connected, client.State);
    }
}
