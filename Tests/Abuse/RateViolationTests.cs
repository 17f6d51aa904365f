using System.Globalization;
using System.Net.WebSockets;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// A socket that keeps going past its request budget is closed with 1008, and ping frames cost requests too.
/// The sockets' clock is fake and stands still, so no token comes back while a test runs: the counts are exact.
/// </summary>
public sealed class RateViolationTests
{
    /// <summary>The defaults: a burst of 2,000 requests, then 100 <c>rate_limited</c> answers in 10 s are tolerated.</summary>
    private const int Burst = 2000;
    private const int Tolerated = 100;

    [Fact]
    public async Task ASocketThatKeepsGoingPastItsBudgetIsClosedWithPolicyViolation()
    {
        await using var server = await AbuseServer.StartAsync();
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);
        var stored = server.Snapshot();

        // The attack: requests without end, never slowing down for rate_limited.
        const int flood = Burst + Tolerated + 400;
        var sending = Task.Run(
            async () =>
            {
                for (var i = 0; i < flood; i++)
                {
                    try
                    {
                        await client.SendTextAsync(WsClient.Envelope("ping", requestId: i));
                    }
                    catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        return i;
                    }
                }

                return flood;
            },
            TestContext.Current.CancellationToken);

        var (pinged, limited) = (0, 0);
        for (var i = 0; i < flood + 1; i++)
        {
            if (await client.ReceiveTextAsync() is not { } text)
            {
                break;
            }

            var reply = StrictJson.Envelope(text);
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), reply.GetProperty("requestId").GetRawText());
            if (reply.ErrorCode() == "rate_limited")
            {
                limited++;
            }
            else
            {
                Assert.Equal("pinged", reply.Action());
                pinged++;
            }
        }

        await sending;
        Assert.Equal(Burst, pinged);
        Assert.Equal(Tolerated + 1, limited);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.Socket.CloseStatus);
        Assert.Equal(stored, server.Snapshot());
    }

    [Fact]
    public async Task PingFramesCostRequestsAndAFloodOfThemClosesTheSocket()
    {
        await using var server = await AbuseServer.StartAsync();
        await using var socket = await RawWebSocket.ConnectAsync(server.WebSocketUri);

        // The whole burst but one goes to ping frames: one request is left, the next is over the budget.
        for (var i = 0; i < Burst - 1; i++)
        {
            await socket.SendFrameAsync(RawWebSocket.Ping, "p"u8.ToArray());
        }

        await socket.SendTextAsync(WsClient.Envelope("ping", requestId: 1));
        await socket.SendTextAsync(WsClient.Envelope("ping", requestId: 2));
        var replies = new List<System.Text.Json.JsonElement>();
        var pongs = 0;
        using (var bound = new CancellationTokenSource(WsClient.Timeout))
        {
            while (replies.Count < 2 && await socket.ReceiveFrameAsync(bound.Token) is { } frame)
            {
                if (frame.Opcode == RawWebSocket.Pong)
                {
                    pongs++;
                }
                else
                {
                    replies.Add(StrictJson.Envelope(System.Text.Encoding.UTF8.GetString(frame.Payload)));
                }
            }
        }

        Assert.Equal(Burst - 1, pongs);
        Assert.Equal("pinged", replies[0].Action());
        Assert.Equal("rate_limited", replies[1].ErrorCode());

        // Pings go on past the budget: the tolerance left is 99, and one more closes the socket.
        for (var i = 0; i < Tolerated; i++)
        {
            await socket.SendFrameAsync(RawWebSocket.Ping, ReadOnlyMemory<byte>.Empty);
        }

        Assert.Equal(1008, await socket.ReceiveUntilCloseAsync());
    }

    [Fact]
    public async Task RateLimitedAnswersAreCountedPerWindowAndAPoliteSocketStaysOpen()
    {
        await using var server = await AbuseServer.StartAsync(new Dictionary<string, string>
        {
            ["Protocol:RequestsPerSecond"] = "1",
            ["Protocol:RequestBurst"] = "1",
            ["Protocol:MaxRateLimitedBeforeClose"] = "3",
            ["Protocol:RateLimitedWindow"] = "00:00:10",

            // The socket only pings while the clock moves past 30 s: the authentication deadline is not under test.
            ["Protocol:AuthenticationTimeout"] = "01:00:00",
        });
        await using var client = await WsClient.ConnectAsync(server.WebSocketUri);

        for (var round = 0; round < 3; round++)
        {
            Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal("rate_limited", (await client.RequestAsync("ping")).ErrorCode());
            }

            // A new window: what was counted is forgotten, and the budget has its token back.
            server.Clock.Advance(TimeSpan.FromSeconds(11));
        }

        Assert.Equal("pinged", (await client.RequestAsync("ping")).Action());
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("rate_limited", (await client.RequestAsync("ping")).ErrorCode());
        }

        Assert.Equal("rate_limited", (await client.RequestAsync("ping")).ErrorCode());
        Assert.Null(await client.ReceiveTextAsync());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.Socket.CloseStatus);
    }
}
