using System.Text;
using Tests.Infrastructure;

namespace Tests.Abuse;

/// <summary>
/// A message that has started must finish within <c>Protocol:FrameTimeout</c> (default 10 s) or the socket is
/// closed with 1008, instead of holding its buffer until the idle close. The sockets' clock is fake.
/// </summary>
public sealed class FrameDeadlineTests
{
    private static readonly TimeSpan FrameTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AFrameLeftHalfSentIsClosedWithPolicyViolationAtTheDeadline()
    {
        await using var server = await AbuseServer.StartAsync();
        await using var bystander = await WsClient.ConnectAsync(server.WebSocketUri);
        await using var socket = await RawWebSocket.ConnectAsync(server.WebSocketUri);

        // The attack: a frame that declares 1 MiB, of which a part under the size cap is sent.
        var part = Encoding.UTF8.GetBytes(new string(' ', 32 * 1024));
        await socket.SendFrameAsync(RawWebSocket.Text, part, declaredLength: 1024 * 1024);
        var closing = socket.ReceiveUntilCloseAsync();

        // The server arms the deadline once it has read the part; the clock moves a second at a time until the
        // close comes. 100 s stays below the 120 s idle close, which would close with another status.
        var advanced = TimeSpan.Zero;
        for (var step = 0; step < 100 && !closing.IsCompleted; step++)
        {
            await Task.WhenAny(closing, Task.Delay(50, TestContext.Current.CancellationToken));
            if (!closing.IsCompleted)
            {
                server.Clock.Advance(TimeSpan.FromSeconds(1));
                advanced += TimeSpan.FromSeconds(1);
            }
        }

        Assert.Equal(1008, await closing);
        Assert.True(advanced >= FrameTimeout, $"Closed after {advanced} of the {FrameTimeout} deadline.");
        Assert.Equal("pinged", (await bystander.RequestAsync("ping")).Action());
    }

    [Fact]
    public async Task AMessageSentInFragmentsWithinTheDeadlineIsAnswered()
    {
        await using var server = await AbuseServer.StartAsync();
        await using var socket = await RawWebSocket.ConnectAsync(server.WebSocketUri);
        var frame = Encoding.UTF8.GetBytes(WsClient.Envelope("ping", requestId: 7));
        var third = frame.Length / 3;

        await socket.SendFrameAsync(RawWebSocket.Text, frame[..third], fin: false);
        server.Clock.Advance(TimeSpan.FromSeconds(5));
        await socket.SendFrameAsync(0x0, frame[third..(2 * third)], fin: false);
        server.Clock.Advance(TimeSpan.FromSeconds(4));
        await socket.SendFrameAsync(0x0, frame[(2 * third)..]);

        using var bound = new CancellationTokenSource(WsClient.Timeout);
        var reply = await socket.ReceiveFrameAsync(bound.Token);
        Assert.NotNull(reply);
        var body = StrictJson.Envelope(Encoding.UTF8.GetString(reply.Value.Payload));
        Assert.Equal("pinged", body.Action());

        // The next message has a deadline of its own: the 9 s the first one took are not held against it.
        await socket.SendFrameAsync(RawWebSocket.Text, frame[..third], fin: false);
        server.Clock.Advance(TimeSpan.FromSeconds(9));
        await socket.SendFrameAsync(0x0, frame[third..]);
        var second = await socket.ReceiveFrameAsync(bound.Token);
        Assert.Equal("pinged", StrictJson.Envelope(Encoding.UTF8.GetString(second!.Value.Payload)).Action());
    }
}
