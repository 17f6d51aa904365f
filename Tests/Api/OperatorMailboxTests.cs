using System.Collections.Concurrent;
using System.Collections.Immutable;
using Grains.Interfaces;
using Tests.Infrastructure;

namespace Tests.Api;

/// <summary>The mailbox calls behind the operator routes, on the shared 2-silo cluster over SQLite.</summary>
[Collection(ClusterCollection.Name)]
public sealed class OperatorMailboxTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Valid = TimeSpan.FromMinutes(5);

    private IGrainFactory Grains => fixture.Silos.Grains;

    [Fact]
    public async Task KickingTellsTheLiveSessionKickedAndItsRenewalDoesNotBringItBack()
    {
        var (_, mailbox) = await RegisterAsync();
        var observer = new RecordingObserver();
        var session = Session(observer);
        await mailbox.Attach(session, Valid);

        Assert.True(await mailbox.Kick());

        Assert.Equal([(session.SessionId, "kicked")], observer.LoggedOut);
        Assert.False((await mailbox.Status()).Online);

        // A renewal its frontend had already sent finds nothing to renew, and the client stays offline.
        await mailbox.Renew(session, Valid, 0);
        Assert.False((await mailbox.Status()).Online);
        Assert.False(await mailbox.Kick());
        Assert.Single(observer.LoggedOut);
        GC.KeepAlive(observer);
    }

    [Fact]
    public async Task PeekingReadsPagesInOrderAndRemovesNothing()
    {
        var (_, mailbox) = await RegisterAsync();
        var seqs = new List<long>();
        for (var i = 0; i < 20; i++)
        {
            seqs.Add((await mailbox.Send(null, $$"""{"n":{{i}}}""")).Seq);
        }

        var first = await mailbox.PeekQueue(0, 7);
        var rest = await mailbox.PeekQueue(first!.Value[^1].Seq, 100);

        Assert.Equal(seqs.Take(7), first.Value.Select(r => r.Seq));
        Assert.Equal(seqs.Skip(7), rest!.Value.Select(r => r.Seq));
        Assert.Equal("""{"n":19}""", rest.Value[^1].Payload);
        Assert.Equal(20, (await mailbox.Status()).QueueLength);
        Assert.Null(await Grains.GetGrain<IClientIdGrain>(int.MaxValue - 7).PeekQueue(0, 10));
    }

    [Fact]
    public async Task PurgingEmptiesTheQueueForGoodAndLaterResponsesStillArrive()
    {
        var (_, mailbox) = await RegisterAsync();
        long last = 0;
        for (var i = 0; i < 40; i++)
        {
            last = (await mailbox.Send(null, $"{i}")).Seq;
        }

        Assert.Equal(40, await mailbox.Purge());
        await Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal(0, (await mailbox.Status()).QueueLength);
        var after = await mailbox.Send(null, "\"after\"");
        Assert.True(after.Seq > last);
        var queue = await mailbox.Attach(Session(new RecordingObserver(), ackMode: true), Valid);
        Assert.Equal(["\"after\""], queue.Select(r => r.Payload));
        Assert.Equal(1, await mailbox.Purge());
        Assert.Equal(0, await mailbox.Purge());
        Assert.Null(await Grains.GetGrain<IClientIdGrain>(int.MaxValue - 8).Purge());
    }

    private async Task<(int Id, IClientIdGrain Mailbox)> RegisterAsync()
    {
        var id = await Grains.GetGrain<IClientGrain>(TokenDigest.Of(TokenDigest.NewToken())).Register(new ClientInformation("{}", null, null));
        return (id, Grains.GetGrain<IClientIdGrain>(id));
    }

    private SessionRegistration Session(RecordingObserver observer, bool ackMode = false) =>
        new(Guid.NewGuid().ToString("N"), "test-frontend", Grains.CreateObjectReference<ISessionObserver>(observer), ackMode);

    private sealed class RecordingObserver : ISessionObserver
    {
        private readonly ConcurrentQueue<(string, string)> _loggedOut = new();

        public IReadOnlyList<(string SessionId, string Reason)> LoggedOut => [.. _loggedOut];

        public Task<bool> Deliver(string sessionId, ImmutableArray<PendingResponse> responses, TimeSpan timeout) => Task.FromResult(true);

        Task ISessionObserver.LoggedOut(string sessionId, string reason)
        {
            _loggedOut.Enqueue((sessionId, reason));
            return Task.CompletedTask;
        }
    }
}
