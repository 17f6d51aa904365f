using System.IO.Pipelines;
using WebSocketFrontend.Sessions;

namespace Tests.Transports;

/// <summary>
/// What the monitor reads of a connection the WebSocket failed itself: the peer's bytes up to its close frame and
/// no further, or up to the end of the connection, or until the deadline.
/// </summary>
public sealed class ControlFrameMonitorTests
{
    // A client's frames are masked (RFC 6455, 5.3): FIN + opcode, mask bit + length, four mask bytes, the payload.
    private static readonly byte[] TextTail = [0x81, 0x83, 1, 2, 3, 4, 0x61, 0x62, 0x63];
    private static readonly byte[] Ping = [0x89, 0x80, 1, 2, 3, 4];
    private static readonly byte[] Close = [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2];

    [Fact]
    public async Task WaitingForThePeerEndsAtItsCloseFrameAndReadsNothingAfterIt()
    {
        var pipe = new Pipe();
        var monitor = new ControlFrameMonitor();
        var pings = 0;
        monitor.ControlFrameReceived = () => pings++;
        var connection = monitor.Monitor(pipe.Reader.AsStream());
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var waiting = monitor.AwaitPeerCloseAsync(deadline.Token).AsTask();
        await pipe.Writer.WriteAsync(TextTail, TestContext.Current.CancellationToken);
        await pipe.Writer.WriteAsync(Ping, TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted, "A text frame and a ping are not the peer's close.");

        await pipe.Writer.WriteAsync(Close, TestContext.Current.CancellationToken);
        await waiting;

        Assert.Equal(1, pings);
        await pipe.Writer.WriteAsync(new byte[] { 0x42 }, TestContext.Current.CancellationToken);
        var after = new byte[8];
        Assert.Equal(1, await connection.ReadAsync(after, deadline.Token));
        Assert.Equal(0x42, after[0]);
    }

    [Fact]
    public async Task WaitingForThePeerEndsWhenItEndsTheConnection()
    {
        var pipe = new Pipe();
        var monitor = new ControlFrameMonitor();
        monitor.Monitor(pipe.Reader.AsStream());
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var waiting = monitor.AwaitPeerCloseAsync(deadline.Token).AsTask();
        await pipe.Writer.WriteAsync(TextTail, TestContext.Current.CancellationToken);
        await pipe.Writer.CompleteAsync();

        await waiting;
        Assert.False(deadline.IsCancellationRequested);
    }

    [Fact]
    public async Task WaitingForASilentPeerEndsAtTheDeadline()
    {
        var pipe = new Pipe();
        var monitor = new ControlFrameMonitor();
        monitor.Monitor(pipe.Reader.AsStream());
        using var deadline = new CancellationTokenSource();

        var waiting = monitor.AwaitPeerCloseAsync(deadline.Token).AsTask();
        Assert.False(waiting.IsCompleted);

        await deadline.CancelAsync();
        await waiting;
    }

    [Fact]
    public async Task AMonitorWithoutAConnectionHasNothingToWaitFor()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        await new ControlFrameMonitor().AwaitPeerCloseAsync(deadline.Token);
    }
}
