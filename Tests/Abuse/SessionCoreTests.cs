using System.Buffers;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;
using WebSocketFrontend.Protocol;
using WebSocketFrontend.Sessions;

namespace Tests.Abuse;

/// <summary>
/// The session core behind a transport other than <c>/ws</c>: requests handed over as parsed bodies, replies written
/// in the transport's own frame format and routed by the request's transport context, pushes written as events.
/// </summary>
public sealed class SessionCoreTests
{
    [Fact]
    public async Task AReplyIsWrittenInTheTransportsFormatWithItsRequestsContextAndAPushWithout()
    {
        var (transport, session, running) = Start();

        transport.Hand(Body("""{"action":"ping","requestId":7}"""), context: 42L);
        var reply = await transport.NextFrameAsync();
        Assert.Equal("""ack 42:{"action":"pinged","requestId":7,"parameters":{}}.""", reply);

        Assert.True(session.TryPush(session.Replies.Write("response", null, 3, static (w, s) => w.WriteNumber("seq"u8, s))));
        Assert.Equal("""event:{"action":"response","parameters":{"seq":3}}.""", await transport.NextFrameAsync());

        transport.Hand(InboundMessage.Closed);
        await running.WaitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(CloseReason.Normal, transport.ClosedWith);
    }

    [Fact]
    public async Task ABodyTheTransportParsedIsCheckedAsAnEnvelopesBodyIs()
    {
        var (transport, _, running) = Start();

        transport.Hand(Body("""{"action":"ping","requestId":true}"""), context: 1L);
        var (route, error) = Split(await transport.NextFrameAsync());
        Assert.Equal("ack 1", route);
        Assert.Equal("error", error.GetProperty("action").GetString());
        Assert.False(error.TryGetProperty("requestId", out _));
        Assert.Equal("bad_request", error.GetProperty("parameters").GetProperty("code").GetString());
        Assert.Equal("'requestId' must be a string or a number.", error.GetProperty("parameters").GetProperty("message").GetString());
        Assert.Equal("ping", error.GetProperty("parameters").GetProperty("request").GetString());

        transport.Hand(Body("""[1]"""), context: null);
        (route, error) = Split(await transport.NextFrameAsync());
        Assert.Equal("event", route);
        Assert.Equal("bad_request", error.GetProperty("parameters").GetProperty("code").GetString());
        Assert.False(error.GetProperty("parameters").TryGetProperty("request", out _));

        transport.Hand(Body("""{"action":"nope","requestId":"r","parameters":{}}"""), context: 2L);
        (route, error) = Split(await transport.NextFrameAsync());
        Assert.Equal("ack 2", route);
        Assert.Equal("r", error.GetProperty("requestId").GetString());
        Assert.Equal("unknown_action", error.GetProperty("parameters").GetProperty("code").GetString());

        transport.Hand(InboundMessage.Closed);
        await running.WaitAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task AMessageOverTheCapIsAnsweredTooLargeAndClosesTheConnection()
    {
        var (transport, _, running) = Start();

        transport.Hand(InboundMessage.TooLarge(5L));
        var (route, error) = Split(await transport.NextFrameAsync());
        Assert.Equal("ack 5", route);
        Assert.Equal("too_large", error.GetProperty("parameters").GetProperty("code").GetString());
        await running.WaitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(CloseReason.TooBig, transport.ClosedWith);
    }

    [Fact]
    public async Task PushesWrittenInTimeLeaveNoDeadlineBehindThatClosesTheConnectionLater()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        var (transport, session, running) = Start(time);
        using var owned = session;

        for (var i = 0; i < 3; i++)
        {
            Assert.True(await session.DeliverAsync([Encoding.UTF8.GetBytes($"push {i}")], TimeSpan.FromSeconds(5)));
            Assert.Equal($"push {i}", await transport.NextFrameAsync());
        }

        // Past every push's deadline, within the authentication timeout.
        time.Advance(TimeSpan.FromSeconds(10));
        await AssertServesThenClosesNormallyAsync(transport, running, context: 9L, ct);
    }

    /// <summary>
    /// The deadline timer stays armed after a push written in time; a later push with a shorter timeout still ends at
    /// its own deadline, not at the one the timer was armed for.
    /// </summary>
    [Fact]
    public async Task APushWithAShorterTimeoutThanTheOneBeforeEndsAtItsOwnDeadline()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        var (transport, session, running) = Start(time);
        using var owned = session;

        Assert.True(await session.DeliverAsync([Encoding.UTF8.GetBytes("in time")], TimeSpan.FromSeconds(10)));
        Assert.Equal("in time", await transport.NextFrameAsync());

        // The socket stops taking frames once the send loop has begun on the next push: that push's only way to end
        // is its 2-second deadline, and begun, it counts as written.
        var (held, waiting) = transport.HoldSends();
        var late = session.DeliverAsync([Encoding.UTF8.GetBytes("held")], TimeSpan.FromSeconds(2)).AsTask();
        await waiting.WaitAsync(TimeSpan.FromMinutes(1), ct);
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.False(late.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.True(await late.WaitAsync(TimeSpan.FromMinutes(1), ct));

        held.SetResult();
        Assert.Equal("held", await transport.NextFrameAsync());
        await AssertServesThenClosesNormallyAsync(transport, running, context: 4L, ct);
    }

    [Fact]
    public async Task AnAuthenticatedSessionKeepsNoAuthenticationTimerAndStaysOpenPastTheDeadline()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new TimerCountingTimeProvider(new FakeTimeProvider());
        var options = new ProtocolOptions();
        var (_, services, _) = new FakeGrains().Frontend(Microsoft.Extensions.Options.Options.Create(options), time);
        var transport = new MemoryTransport();
        using var session = new ClientSession(transport, services);
        var running = session.RunAsync(ct);
        Assert.Equal(1, time.LiveTimers);

        session.Authenticated();
        Assert.Equal(0, time.LiveTimers);
        session.Authenticated();
        Assert.Equal(0, time.LiveTimers);

        time.Inner.Advance(options.AuthenticationTimeout * 2);
        await AssertServesThenClosesNormallyAsync(transport, running, context: 3L, ct);
    }

    /// <summary>The session, still open, answers a ping; then the peer's close ends it with a normal close.</summary>
    private static async Task AssertServesThenClosesNormallyAsync(MemoryTransport transport, Task running, long context, CancellationToken ct)
    {
        transport.Hand(Body("""{"action":"ping","requestId":1}"""), context: context);
        Assert.Equal($$$"""ack {{{context}}}:{"action":"pinged","requestId":1,"parameters":{}}.""", await transport.NextFrameAsync());
        Assert.Null(transport.ClosedWith);

        transport.Hand(InboundMessage.Closed);
        await running.WaitAsync(TimeSpan.FromMinutes(1), ct);
        Assert.Equal(CloseReason.Normal, transport.ClosedWith);
    }

    private static (MemoryTransport Transport, ClientSession Session, Task Running) Start(TimeProvider? time = null)
    {
        var options = Microsoft.Extensions.Options.Options.Create(new ProtocolOptions());
        var (_, services, _) = new FakeGrains().Frontend(options, time ?? new FakeTimeProvider());
        var transport = new MemoryTransport();
        var session = new ClientSession(transport, services);
        return (transport, session, session.RunAsync(TestContext.Current.CancellationToken));
    }

    /// <summary>A frame of <see cref="TaggedFormat"/>: its route (<c>ack N</c> or <c>event</c>) and its body.</summary>
    private static (string Route, JsonElement Body) Split(string frame)
    {
        var colon = frame.IndexOf(':', StringComparison.Ordinal);
        Assert.EndsWith(".", frame, StringComparison.Ordinal);
        using var body = JsonDocument.Parse(frame[(colon + 1)..^1]);
        return (frame[..colon], body.RootElement.Clone());
    }

    /// <summary>What a transport that parsed its own framing hands over: the body, checked by the shared parser.</summary>
    private static Func<object?, InboundMessage> Body(string json) => context =>
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var document = JsonDocument.Parse(bytes);
        return RequestParser.TryParseBody(document, document.RootElement, stringsValid: true, out var request, out var error)
            ? InboundMessage.FromRequest(request!, context)
            : InboundMessage.FromError(error!, context);
    };

    /// <summary>A format that routes a reply by its context: <c>ack N:</c> before the body, or <c>event:</c> without one.</summary>
    private sealed class TaggedFormat : FrameFormat
    {
        public override void WriteStart(IBufferWriter<byte> buffer, object? context) =>
            buffer.Write(Encoding.UTF8.GetBytes(context is long ack ? $"ack {ack}:" : "event:"));

        public override void WriteEnd(IBufferWriter<byte> buffer, object? context) => buffer.Write("."u8);
    }

    /// <summary>A fake clock that counts the timers made from it and not yet disposed.</summary>
    private sealed class TimerCountingTimeProvider(FakeTimeProvider inner) : TimeProvider
    {
        private int _live;

        public FakeTimeProvider Inner => inner;

        public int LiveTimers => Volatile.Read(ref _live);

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _live);
            return new CountedTimer(inner.CreateTimer(callback, state, dueTime, period), this);
        }

        private sealed class CountedTimer(ITimer timer, TimerCountingTimeProvider owner) : ITimer
        {
            private int _disposed;

            public bool Change(TimeSpan dueTime, TimeSpan period) => timer.Change(dueTime, period);

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0)
                {
                    Interlocked.Decrement(ref owner._live);
                }

                timer.Dispose();
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return default;
            }
        }
    }

    /// <summary>A transport in memory: the test hands messages in and reads the frames written.</summary>
    private sealed class MemoryTransport : IClientTransport
    {
        private readonly Channel<InboundMessage> _inbound = Channel.CreateUnbounded<InboundMessage>();
        private readonly Channel<string> _written = Channel.CreateUnbounded<string>();

        public ReplyWriter Replies { get; } = new(new TaggedFormat());

        public IPAddress? RemoteAddress => IPAddress.Loopback;

        public CloseReason? ClosedWith { get; private set; }

        public void Hand(InboundMessage message) => _inbound.Writer.TryWrite(message);

        public void Hand(Func<object?, InboundMessage> make, object? context) => Hand(make(context));

        public async Task<string> NextFrameAsync() =>
            await _written.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        public void Bind(ClientSession session)
        {
        }

        public async ValueTask<InboundMessage> ReceiveAsync(CancellationToken cancellationToken) =>
            await _inbound.Reader.WaitToReadAsync(cancellationToken) && _inbound.Reader.TryRead(out var message) ? message : InboundMessage.Closed;

        private TaskCompletionSource? _sendGate;
        private TaskCompletionSource? _sendWaiting;

        /// <summary>
        /// Sends wait from now on until <c>Release</c> is completed (then the gate is gone); <c>Waiting</c> completes
        /// when a send has begun to wait.
        /// </summary>
        public (TaskCompletionSource Release, Task Waiting) HoldSends()
        {
            _sendWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _sendGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return (_sendGate, _sendWaiting.Task);
        }

        public async ValueTask SendAsync(byte[] frame, CancellationToken cancellationToken)
        {
            if (_sendGate is { } gate)
            {
                _sendWaiting!.TrySetResult();
                await gate.Task.WaitAsync(cancellationToken);
                _sendGate = null;
            }

            _written.Writer.TryWrite(Encoding.UTF8.GetString(frame));
        }

        public ValueTask CloseAsync(CloseReason reason, string description, CancellationToken cancellationToken)
        {
            ClosedWith = reason;
            _inbound.Writer.TryComplete();
            return default;
        }

        public ValueTask FinishAsync(CancellationToken cancellationToken) => default;

        public void Abort() => _inbound.Writer.TryComplete();

        public void Dispose()
        {
        }
    }
}
