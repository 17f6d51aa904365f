using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Tests.Infrastructure;
using WebSocketFrontend.Sessions;

namespace Tests.Abuse;

/// <summary>
/// The outbox of a socket is bounded in bytes (<c>Protocol:OutboxBytes</c>, default 4 MiB): a peer that asks for
/// more than it reads is closed with 1008 instead of making the server hold gigabytes, and what it did not
/// receive stays queued.
/// </summary>
public sealed class OutboxTests
{
    /// <summary>A payload of about 16 KB: 63 of them fill the default 1 MiB queue.</summary>
    private static readonly string Payload = $"\"{new string('q', 16_000)}\"";

    private const int Queued = 63;

    private const int Logins = 400;

    [Fact]
    public async Task SocketsThatLogInOverAndOverWithoutReadingAreClosedAndTheQueuesStay()
    {
        // The attack: 3 sockets, 400 logins each with ack, queues of about 1 MiB, nothing read.
        await using var server = await AbuseServer.StartAsync();
        using var api = new ApiClient(server.Server.HttpUri);
        var tokens = new List<(string Token, int Id)>();
        await using (var setup = await WsClient.ConnectAsync(server.WebSocketUri))
        {
            for (var c = 0; c < 3; c++)
            {
                var client = await setup.RegisterAsync(new { name = $"hoarder-{c}" });
                for (var i = 0; i < Queued; i++)
                {
                    Assert.Equal(HttpStatusCode.Accepted, (await api.PostResponseAsync(client.Id, Payload)).Status);
                }

                tokens.Add(client);
            }
        }

        var sockets = new List<RawWebSocket>();
        try
        {
            foreach (var (token, _) in tokens)
            {
                var socket = await RawWebSocket.ConnectAsync(server.WebSocketUri, receiveBufferBytes: 4096);
                sockets.Add(socket);
                var login = Encoding.UTF8.GetBytes(WsClient.Envelope("login", new { token, ack = true }));
                for (var i = 0; i < Logins; i++)
                {
                    await socket.SendFrameAsync(RawWebSocket.Text, login);
                }
            }

            // Only now does anyone read: each socket holds what was written before its close, then the close.
            var registry = server.Server.Services.GetRequiredService<SessionRegistry>();
            Assert.All(registry.Sessions, s => Assert.True(s.OutboxBytes <= 4 * 1024 * 1024, $"{s.OutboxBytes} bytes waiting"));
            foreach (var socket in sockets)
            {
                var logged = 0;
                var status = await socket.ReceiveUntilCloseAsync(text =>
                {
                    if (StrictJson.Envelope(text).Action() == "logged")
                    {
                        logged++;
                    }
                });

                Assert.Equal(1008, status);

                // Each login costs about 1 MiB of frames: the socket was closed after a few, not after 400.
                Assert.InRange(logged, 1, Logins / 10);
            }
        }
        finally
        {
            foreach (var socket in sockets)
            {
                await socket.DisposeAsync();
            }
        }

        // Nothing was acknowledged: every queue is whole, and the server still serves.
        foreach (var (_, id) in tokens)
        {
            var (status, body) = await api.GetAsync($"/api/clients/{id}");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(Queued, body.GetProperty("queueLength").GetInt32());
        }

        await using var bystander = await WsClient.ConnectAsync(server.WebSocketUri);
        Assert.Equal("pinged", (await bystander.RequestAsync("ping")).Action());
    }

    /// <summary>
    /// A push the byte bound refuses is reported as not written: the mailbox keeps its responses. The session's
    /// send loop is not running here, so nothing leaves the outbox.
    /// </summary>
    [Fact]
    public async Task APushOverTheByteBoundIsReportedAsNotWrittenAndClosesTheSocket()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new WebSocketFrontend.Protocol.ProtocolOptions());
        var grains = new FakeGrains();
        var (_, services, _) = grains.Frontend(options, new Microsoft.Extensions.Time.Testing.FakeTimeProvider());
        using var socket = System.Net.WebSockets.WebSocket.CreateFromStream(Stream.Null, new System.Net.WebSockets.WebSocketCreationOptions { IsServer = true });
        using var session = new ClientSession(new WebSocketTransport(socket, services), services);
        var megabyte = new byte[1024 * 1024];

        for (var i = 0; i < 4; i++)
        {
            Assert.True(session.TryPush(megabyte));
        }

        Assert.False(await session.DeliverAsync([new byte[1]], TimeSpan.FromSeconds(5)));
        Assert.Equal(4L * 1024 * 1024, session.OutboxBytes);
        Assert.False(session.TryPush(new byte[1]));
    }

    /// <summary>
    /// Pushes the socket does not take within their timeouts are reported as not written, each at its own deadline,
    /// and the socket is closed as too slow: the one the session's deadline timer watches and one that came while
    /// the timer was taken. The send loop is not running here, so nothing leaves the outbox.
    /// </summary>
    [Fact]
    public async Task PushesNotTakenWithinTheirTimeoutsAreReportedAsNotWrittenEachAtItsDeadline()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var unread = UnreadSession(time);
        var session = unread.Session;

        var watched = session.DeliverAsync([new byte[10]], TimeSpan.FromSeconds(5)).AsTask();
        var other = session.DeliverAsync([new byte[10]], TimeSpan.FromSeconds(2)).AsTask();
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.False(watched.IsCompleted);
        Assert.False(other.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.False(await other.WaitAsync(TimeSpan.FromMinutes(1), ct));
        Assert.False(watched.IsCompleted);
        Assert.False(session.TryPush(new byte[1]));

        time.Advance(TimeSpan.FromSeconds(3));
        Assert.False(await watched.WaitAsync(TimeSpan.FromMinutes(1), ct));
    }

    /// <summary>
    /// Within one login a seq reaches the socket once: a push overlapping one that still waits in the outbox (a
    /// restarted mailbox pushing again what its old activation pushed) is reported as not written and adds
    /// nothing, since the waiting one may yet be withdrawn. The send loop is not running here, so nothing leaves
    /// the outbox.
    /// </summary>
    [Fact]
    public async Task APushOverlappingOneStillWaitingInTheOutboxIsReportedAsNotWrittenAndQueuesNothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var unread = UnreadSession(time);
        var session = unread.Session;

        var waiting = session.DeliverResponsesAsync([Response(1), Response(2)], TimeSpan.FromSeconds(5)).AsTask();
        Assert.False(waiting.IsCompleted);
        var queued = session.OutboxBytes;
        Assert.True(queued > 0);

        Assert.False(await session.DeliverResponsesAsync([Response(2), Response(3)], TimeSpan.FromSeconds(5)));
        Assert.Equal(queued, session.OutboxBytes);
        Assert.Equal(0, session.DeliveredUpTo);

        time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(await waiting.WaitAsync(TimeSpan.FromMinutes(1), ct));
        Assert.Equal(0, session.DeliveredUpTo);

        static global::Grains.Interfaces.PendingResponse Response(long seq) => new(seq, null, DateTimeOffset.UnixEpoch, "{}");
    }

    [Fact]
    public async Task AnOutboxTooSmallForAFullQueueIsRefusedAtStart()
    {
        using var database = new TempDatabase();
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => GatewayServer.StartAsync(database.Path, new Dictionary<string, string>
        {
            ["Protocol:OutboxBytes"] = (512 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
        }));

        Assert.Contains("OutboxBytes", refused.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A session on a socket nobody reads, with no send loop running: nothing leaves its outbox.</summary>
    private static UnreadSessionScope UnreadSession(TimeProvider time)
    {
        var options = Microsoft.Extensions.Options.Options.Create(new WebSocketFrontend.Protocol.ProtocolOptions());
        var (_, services, _) = new FakeGrains().Frontend(options, time);
        var socket = System.Net.WebSockets.WebSocket.CreateFromStream(Stream.Null, new System.Net.WebSockets.WebSocketCreationOptions { IsServer = true });
        return new UnreadSessionScope(socket, new ClientSession(new WebSocketTransport(socket, services), services));
    }

    private sealed record UnreadSessionScope(System.Net.WebSockets.WebSocket Socket, ClientSession Session) : IDisposable
    {
        public void Dispose()
        {
            Session.Dispose();
            Socket.Dispose();
        }
    }
}
